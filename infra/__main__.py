"""fraudwatch on Kubernetes: `pulumi up --stack dev|prod` (see docs/operations/kubernetes.md)."""

from __future__ import annotations

import sys

import pulumi
from fraudwatch_infra.config import (
    NAMESPACE,
    ConfigError,
    parse_config,
    raw_stack_config,
    unknown_stack_keys,
)
from fraudwatch_infra.platform import PlatformSecrets, build_platform


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
    except ConfigError as err:
        # One line, no traceback: the message says what is wrong and how to fix it.
        pulumi.log.error(str(err))
        sys.exit(1)
    outputs = build_platform(
        config,
        PlatformSecrets(
            tableau_pat_secret=tableau,
            intervention_api_token_hashes=stack_config.get_secret("interventionApiTokenHashes"),
        ),
    )
    for key, value in outputs.items():
        pulumi.export(key, value)


main()
