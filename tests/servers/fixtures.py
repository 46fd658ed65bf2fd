"""The real servers as session-scoped pytest fixtures, shared by the integration and Airflow
tiers: their conftest.py files import the fixtures from here.

A server already started by `make services-up` (a live PID in FRAUDWATCH_SERVICES_DIR,
default .cache/services/) is reused and left running; otherwise the fixture starts its own
in a temporary state directory, on the port from FRAUDWATCH_<NAME>_PORT or the default, and
stops exactly that PID at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import default_state_dir, port_from_env, server_module
from tests.servers.process_control import is_running, read_pid


@dataclass(frozen=True)
class RunningServer:
    name: str
    url: str
    port: int
    #: Where the server keeps its state (Ceph: the S3 keys).
    state_dir: Path
    pid: int
    #: True when this test session started the server (so a test may stop and restart it).
    owned: bool


def running_server(name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Server `name` of tests/servers (kafka, elasticsearch, ceph, ferretdb), reused or started
    as the module docstring says; for a session-scoped fixture to `yield from`."""
    module = server_module(name)
    port = port_from_env(name, module.DEFAULT_PORT)
    shared = default_state_dir().resolve()
    pid = read_pid(shared, name)
    if pid is not None and is_running(pid):
        yield RunningServer(name, module.url(port), port, shared, pid, owned=False)
        return
    state_dir = tmp_path_factory.mktemp(f"{name}-state")
    pid = module.start(state_dir, port)
    try:
        yield RunningServer(name, module.url(port), port, state_dir, pid, owned=True)
    finally:
        module.stop(state_dir)


@pytest.fixture(scope="session")
def elasticsearch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real Elasticsearch node; `.url` is its HTTP address."""
    yield from running_server("elasticsearch", tmp_path_factory)
