"""Secrets kept as files: `$FRAUDWATCH_SECRETS_DIR/<name>`, one secret per file (how a
Kubernetes Secret or a systemd credential is mounted). The one reader of that directory for
Elasticsearch's credentials, the intervention service's keys, Kafka's password and the Tableau
token."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def secret_file(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The file `$FRAUDWATCH_SECRETS_DIR/<name>` (of `environ`, default the process
    environment), stripped; "" when the variable is unset or the file absent."""
    env = os.environ if environ is None else environ
    folder = env.get("FRAUDWATCH_SECRETS_DIR")
    if folder and (Path(folder) / name).is_file():
        return (Path(folder) / name).read_text(encoding="utf-8").strip()
    return ""


def secret(variable: str, name: str, environ: Mapping[str, str] | None = None) -> str:
    """The environment variable `variable`, else the file `name` of the secrets directory;
    "" when neither is set."""
    env = os.environ if environ is None else environ
    return env.get(variable) or secret_file(name, env)
