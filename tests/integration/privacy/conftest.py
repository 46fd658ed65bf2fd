"""Fixtures for the retention job on real servers: the tier's Ceph, Elasticsearch and Kafka
(tests/integration/conftest.py) and a FerretDB of its own for the MongoDB state store."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS / "unit" / "privacy"))  # the state-store records helper


def _load_ferretdb() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fraudwatch_tests_ferretdb_privacy", TESTS / "servers" / "ferretdb.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def ferretdb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real FerretDB (MongoDB wire protocol) on a free port, stopped at the end."""
    ferretdb = _load_ferretdb()
    port = int(os.environ.get("FRAUDWATCH_TEST_MONGO_PORT") or _free_port())
    state_dir = tmp_path_factory.mktemp("ferretdb")
    ferretdb.start(state_dir, port)
    try:
        yield ferretdb.url(port)
    finally:
        ferretdb.stop(state_dir)


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job reads the intervention service's config from $FRAUDWATCH_HOME: each test has
    its own, so no developer's ~/.fraudwatch is ever touched."""
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path / "fraudwatch-home"))
    for name in ("FRAUDWATCH_CONFIG", "FRAUDWATCH_STATE_URL", "FRAUDWATCH_PIPELINE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
