"""Real servers for development and integration tests, started on 127.0.0.1 only.

Each server module (kafka, elasticsearch, ceph, ferretdb) exposes
`start(state_dir, port) -> pid`, `stop(state_dir)` and `url(port)`; `spark_connectors`
fetches the Spark connector jars. `python -m tests.servers up|down|fetch [names...]` drives
them (`make services-up` / `make services-down`), and the pytest fixtures of fixtures.py
(used by the integration and Airflow tiers) start only what a test needs through the same
functions.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Servers in start order; `down` stops them in reverse.
SERVER_NAMES: tuple[str, ...] = ("ceph", "kafka", "elasticsearch", "ferretdb")


def default_state_dir() -> Path:
    """Where PID files, configs, data and logs live (FRAUDWATCH_SERVICES_DIR overrides)."""
    return Path(os.environ.get("FRAUDWATCH_SERVICES_DIR", REPO_ROOT / ".cache" / "services"))


def cache_dir() -> Path:
    """Where fetched jars are kept between runs (FRAUDWATCH_ARTIFACT_CACHE overrides)."""
    return Path(os.environ.get("FRAUDWATCH_ARTIFACT_CACHE", REPO_ROOT / ".cache" / "artifacts"))


def port_from_env(name: str, default: int) -> int:
    """The port for server `name`: FRAUDWATCH_<NAME>_PORT when set, else `default`."""
    variable = f"FRAUDWATCH_{name.upper()}_PORT"
    raw = os.environ.get(variable)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(
            f"{variable}={raw!r} is not a port number; set it to e.g. {default}"
        ) from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{variable}={port} is out of range; use a port between 1 and 65535")
    return port


def server_module(name: str) -> ModuleType:
    """Import `tests.servers.<name>`; a clear error for an unknown name."""
    if name not in SERVER_NAMES:
        raise ValueError(f"unknown server {name!r}; choose from {', '.join(SERVER_NAMES)}")
    return importlib.import_module(f"tests.servers.{name}")
