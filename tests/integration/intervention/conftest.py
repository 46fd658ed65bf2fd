"""Fixtures for the intervention integration tests: a state store of each kind for the
contract suite (the FerretDB behind the MongoDB one is the tier's `mongo_url`,
tests/integration/conftest.py)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fraudwatch.intervention.stores import StateStore
from fraudwatch.intervention.stores.mongodb import MongoStore
from fraudwatch.intervention.stores.sqlite import SqliteStore

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS / "unit" / "intervention"))  # the scored-Parquet fixture
sys.path.insert(0, str(Path(__file__).parent))  # live_service


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
