"""Fixtures for the intervention integration tests: a real FerretDB (MongoDB wire protocol)
started once per session, and a state store of each kind for the contract suite."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fraudwatch.intervention.stores import StateStore
from fraudwatch.intervention.stores.mongodb import MongoStore
from fraudwatch.intervention.stores.sqlite import SqliteStore

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS / "unit" / "intervention"))  # the scored-Parquet fixture
sys.path.insert(0, str(Path(__file__).parent))  # live_service


def _load_ferretdb() -> ModuleType:
    # Loaded by path so this works whether or not tests/servers is importable as a package.
    spec = importlib.util.spec_from_file_location(
        "fraudwatch_tests_ferretdb", TESTS / "servers" / "ferretdb.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ferretdb = _load_ferretdb()
    port = int(os.environ.get("FRAUDWATCH_TEST_MONGO_PORT") or free_port())
    state_dir = tmp_path_factory.mktemp("ferretdb")
    ferretdb.start(state_dir, port)
    try:
        yield ferretdb.url(port)
    finally:
        ferretdb.stop(state_dir)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite3"


@pytest.fixture(params=["sqlite", "mongodb"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    """A factory of store clients sharing one backing database (each call: a new client)."""
    opened: list[StateStore] = []
    if request.param == "sqlite":
        path = tmp_path / "state.sqlite3"

        def make() -> StateStore:
            store = SqliteStore(path)
            opened.append(store)
            return store
    else:
        url = request.getfixturevalue("mongo_url")
        database = f"contract_{uuid.uuid4().hex[:12]}"

        def make() -> StateStore:
            store = MongoStore(url, database=database)
            opened.append(store)
            return store

    yield make
    for store in opened:
        store.close()  # closing twice is harmless (a test may close a client to "restart")
    if request.param == "mongodb" and opened:
        cleaner = MongoStore(url, database=database)
        cleaner.client.drop_database(database)
        cleaner.close()


@pytest.fixture
def store(store_factory) -> StateStore:
    return store_factory()
