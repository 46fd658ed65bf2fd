"""After `fraudwatch privacy erase --scored`, the intervention service loading the rewritten
scored folder answers 404 for the customer (its serving index is rebuilt: the folder's files
changed) and still serves everyone else."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fraudwatch.intervention.api import create_app
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.results import ScoredResults
from fraudwatch.intervention.stores.sqlite import SqliteStore
from subject_records import fraudwatch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "intervention"))
from scored_fixture import write_scored

CUSTOMER, OTHER = 7, 8


def _service(scored: Path, store: SqliteStore) -> tuple[TestClient, ScoredResults]:
    """The service as `fraudwatch serve` starts it: results loaded from the scored folder."""
    results = ScoredResults(scored)
    app = create_app(load_settings().with_scored(scored), store, results)
    return TestClient(app, raise_server_exceptions=False), results


def test_the_service_answers_404_for_an_erased_customer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDWATCH_HOOK_SECRET", "test-hook-secret-not-for-production")
    scored = write_scored(tmp_path / "scored")
    db = tmp_path / "state.sqlite3"
    store = SqliteStore(db)
    token, _ = create_token(store, "analyst")
    auth = {"Authorization": f"Bearer {token}"}

    client, before = _service(scored, store)
    with client:
        answer = client.get(f"/v1/users/{CUSTOMER}", headers=auth)
        assert answer.status_code == 200
        tx_id = answer.json()["transactions"][0]["tx_id"]
    before.close()

    result = fraudwatch(
        "privacy", "erase", "--user-id", str(CUSTOMER), "--scored", str(scored),
        "--state-url", f"sqlite:///{db}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    client, after = _service(scored, store)
    with client:
        gone = client.get(f"/v1/users/{CUSTOMER}", headers=auth)
        assert gone.status_code == 404
        assert f"unknown account {CUSTOMER}" in gone.text
        assert client.get(f"/v1/transactions/{tx_id}", headers=auth).status_code == 404
        assert client.get(f"/v1/users/{OTHER}", headers=auth).status_code == 200
        listed = client.get("/v1/anomalies", params={"page_size": 100}, headers=auth)
        assert listed.status_code == 200
        assert CUSTOMER not in [item["user_id"] for item in listed.json()["items"]]
    assert after.index_path != before.index_path  # re-indexed from the rewritten folder
    after.close()
