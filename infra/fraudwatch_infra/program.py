"""The program's entry point: `main()` reads and validates the stack configuration, then
registers the platform. infra/__main__.py calls it for `pulumi up`; an Automation API inline
program (tests/k8s/test_k8s_pulumi.py) calls the same function."""

from __future__ import annotations

import sys

import pulumi

from .config import (
    NAMESPACE,
    ConfigError,
    parse_config,
    raw_stack_config,
    unknown_stack_keys,
)
from .credentials import MIN_SEED_LENGTH, SEED_KEY
from .platform import PlatformSecrets, build_platform


def _check_seed() -> None:
    # Read raw (no "use get_secret" warning): only its presence and length are looked at.
    seed = pulumi.runtime.config.get_config(f"{NAMESPACE}:{SEED_KEY}")
    fix = (
        f"Fix: pulumi config set --secret {NAMESPACE}:{SEED_KEY} "
        '"$(openssl rand -base64 48)" (keep it: changing it rotates every generated credential)'
    )
    if not seed:
        raise ConfigError(
            f"{NAMESPACE}:{SEED_KEY} is not set (every generated credential is derived from "
            f"it). {fix}"
        )
    if len(seed) < MIN_SEED_LENGTH:
        raise ConfigError(
            f"{NAMESPACE}:{SEED_KEY} is shorter than {MIN_SEED_LENGTH} characters. {fix}"
        )


def main() -> None:
    stack_config = pulumi.Config(NAMESPACE)
    try:
        unknown = unknown_stack_keys(pulumi.runtime.config.CONFIG.get())
        if unknown:
            raise ConfigError(
                f"{NAMESPACE}:{unknown[0]} is not a known key. "
                f"Fix: pulumi config rm '{NAMESPACE}:{unknown[0]}' or correct its spelling."
            )
        config = parse_config(raw_stack_config(stack_config))
        tableau = stack_config.get_secret("tableauPatSecret")
        if config.bi.enabled and tableau is None:
            raise ConfigError(
                f"{NAMESPACE}:tableauPatSecret is not set (bi.enabled is true). Fix: "
                f"pulumi config set --secret {NAMESPACE}:tableauPatSecret <token-secret>"
            )
        _check_seed()
    except ConfigError as err:
        # One line, no traceback: the message says what is wrong and how to fix it.
        pulumi.log.error(str(err))
        sys.exit(1)
    outputs = build_platform(
        config,
        PlatformSecrets(
            tableau_pat_secret=tableau,
            intervention_api_token_hashes=stack_config.get_secret("interventionApiTokenHashes"),
            credentials_seed=stack_config.require_secret(SEED_KEY),
        ),
    )
    for key, value in outputs.items():
        pulumi.export(key, value)
