"""Fixtures for the intervention service's unit tests: scored Parquet, a SQLite store, an app."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from fraudwatch.intervention.api import create_app
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.results import ScoredResults
from fraudwatch.intervention.stores.sqlite import SqliteStore
from scored_fixture import write_scored

HOOK_SECRET = "test-hook-secret-not-for-production"
#: The fixture's user scores fall evenly from 1.0 (scored_fixture.py); the service's mechanics
#: are tested at these thresholds. The shipped defaults (scoring/thresholds.py) are asserted in
#: test_intervention_config.py.
FIXTURE_POLICY = {"FRAUDWATCH_POLICY_STEP_UP_AT": "0.8", "FRAUDWATCH_POLICY_LOCK_AT": "0.95"}


@pytest.fixture(scope="session")
def scored_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scored(tmp_path_factory.mktemp("scored"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path / "home"))
    for var in ("FRAUDWATCH_CONFIG", "FRAUDWATCH_STATE_URL", "FRAUDWATCH_DRY_RUN"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture
def make_client(
    home: Path, scored_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., TestClient]]:
    """Build a client for an app configured by environment overrides."""
    clients: list[TestClient] = []

    def make(**env: str) -> TestClient:
        monkeypatch.setenv("FRAUDWATCH_HOOK_SECRET", HOOK_SECRET)
        for key, value in {**FIXTURE_POLICY, **env}.items():
            monkeypatch.setenv(key, value)
        settings = load_settings().with_scored(scored_dir)
        store = SqliteStore(home / "state.sqlite3")
        app = create_app(settings, store, ScoredResults(scored_dir))
        client = TestClient(app, raise_server_exceptions=False)
        client.store = store  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def token_for(client: TestClient) -> Callable[[str], dict[str, str]]:
    """Authorization headers for a fresh token of a role."""

    def make(role: str) -> dict[str, str]:
        token, _ = create_token(client.store, role)  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {token}"}

    return make
