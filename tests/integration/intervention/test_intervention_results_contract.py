"""One contract for every results reader: the scored Parquet through DuckDB, and a real
Elasticsearch node holding the same run published with `fraudwatch publish --to
elasticsearch`. Both must give identical answers, and so must the API served on each."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from fraudwatch.intervention import elasticsearch_results
from fraudwatch.intervention.api import create_app
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.config import ElasticsearchSettings, load_settings
from fraudwatch.intervention.elasticsearch_results import ElasticsearchResults
from fraudwatch.intervention.results import (
    AnomalyFilter,
    ResultsReader,
    ResultsUnavailable,
    ScoredResults,
)
from fraudwatch.intervention.stores.sqlite import SqliteStore
from fraudwatch.publish.cli import es_app, publish
from scored_fixture import N_USERS, TX_PER_USER, write_scored
from typer.testing import CliRunner

DEFINITIONS = Path(__file__).resolve().parents[3] / "dashboards" / "elasticsearch"
SESSION = uuid.uuid4().hex[:10]
CURRENT_VERSION = f"contract-{SESSION}"
OLD_VERSION = f"contract-old-{SESSION}"


def scored_run(root: Path, version: str, created_at: str) -> Path:
    """The scored fixture plus the run.json `fraudwatch score` writes beside it."""
    write_scored(root)
    (root / "run.json").write_text(
        json.dumps({"model_version": version, "created_at": created_at, "engine": "fixture"})
    )
    return root


def run_publish(es_url: str, scored: Path) -> None:
    app = typer.Typer()
    app.command()(publish)
    args = ["--to", "elasticsearch", "--scored", str(scored), "--es-url", es_url]
    result = CliRunner().invoke(app, [*args, "--definitions", str(DEFINITIONS)])
    assert result.exit_code == 0, result.output
    assert f"indexed {N_USERS * TX_PER_USER} transactions" in result.output


@pytest.fixture(scope="module")
def scored_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return scored_run(tmp_path_factory.mktemp("scored-current"), CURRENT_VERSION, now)


@pytest.fixture(scope="module")
def es_url(
    elasticsearch_server: Any, scored_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The node with the templates applied, an older run and then the current run published."""
    url = elasticsearch_server.url
    applied = CliRunner().invoke(
        es_app, ["apply", "--es-url", url, "--definitions", str(DEFINITIONS)]
    )
    assert applied.exit_code == 0, applied.output
    # An older model version in the same indices: the reader must read only the newest run.
    old = scored_run(tmp_path_factory.mktemp("scored-old"), OLD_VERSION, "2020-01-01T00:00:00Z")
    run_publish(url, old)
    run_publish(url, scored_dir)
    return url


@pytest.fixture(scope="module")
def parquet(scored_dir: Path) -> ScoredResults:
    return ScoredResults(scored_dir)


@pytest.fixture(scope="module")
def elastic(es_url: str) -> Iterator[ElasticsearchResults]:
    reader = ElasticsearchResults.from_settings(ElasticsearchSettings(url=es_url))
    yield reader
    reader.close()


# (filter, level, offset, limit, include, exclude)
ANOMALY_CASES: list[tuple[AnomalyFilter, str, int, int, list[str] | None, list[str] | None]] = [
    (AnomalyFilter(), "users", 0, 50, None, None),
    (AnomalyFilter(), "users", 0, 7, None, None),
    (AnomalyFilter(), "users", 7, 7, None, None),
    (AnomalyFilter(), "users", 35, 7, None, None),
    (AnomalyFilter(), "users", 100, 7, None, None),
    (AnomalyFilter(), "transactions", 0, 50, None, None),
    (AnomalyFilter(), "transactions", 190, 25, None, None),
    (AnomalyFilter(score_min=0.5), "users", 0, 50, None, None),
    (AnomalyFilter(score_min=0.3, score_max=0.6), "users", 0, 5, None, None),
    (AnomalyFilter(score_max=0.2), "transactions", 0, 50, None, None),
    (AnomalyFilter(persona="tight-passive"), "users", 0, 50, None, None),
    (AnomalyFilter(persona="loose-aggressive"), "transactions", 10, 10, None, None),
    (AnomalyFilter(scenario="account_takeover"), "users", 0, 50, None, None),
    (AnomalyFilter(scenario="card_testing"), "transactions", 0, 50, None, None),
    (AnomalyFilter(flagged=True), "users", 0, 50, None, None),
    (AnomalyFilter(flagged=False), "users", 0, 10, None, None),
    (AnomalyFilter(flagged=True), "transactions", 0, 50, None, None),
    (AnomalyFilter(hour=2), "transactions", 0, 50, None, None),
    (AnomalyFilter(hour=2), "users", 0, 50, None, None),
    (AnomalyFilter(tx_type="transfer"), "users", 0, 50, None, None),
    (AnomalyFilter(tx_type="withdrawal", country="DE"), "transactions", 0, 50, None, None),
    (AnomalyFilter(country="NL"), "users", 0, 50, None, None),
    (AnomalyFilter(hour=23), "users", 0, 50, None, None),
    (AnomalyFilter(persona="nobody"), "users", 0, 50, None, None),
    (AnomalyFilter(), "users", 0, 50, ["3", "1", "17"], None),
    (AnomalyFilter(), "users", 0, 50, [], None),
    (AnomalyFilter(), "users", 0, 10, None, ["1", "2", "5"]),
    (AnomalyFilter(score_min=0.4), "transactions", 0, 50, ["100", "201", "4004"], None),
    (AnomalyFilter(flagged=True), "transactions", 0, 50, None, ["100", "200"]),
]


def anomaly_answers(reader: ResultsReader) -> list[tuple[list[dict[str, Any]], int]]:
    return [
        reader.anomalies(flt, level=level, offset=off, limit=lim, include_ids=inc, exclude_ids=exc)
        for flt, level, off, lim, inc, exc in ANOMALY_CASES
    ]


def test_the_data_set_is_not_trivial(parquet: ScoredResults) -> None:
    answers = anomaly_answers(parquet)
    assert answers[0][1] == N_USERS and answers[5][1] == N_USERS * TX_PER_USER
    assert sum(1 for items, total in answers if total and items) >= 20
    assert answers[18][1] > 0  # users with a flagged transaction at 02:00


def test_anomaly_pages_are_identical(parquet: ScoredResults, elastic: ElasticsearchResults) -> None:
    expected = anomaly_answers(parquet)
    got = anomaly_answers(elastic)
    for case, want, have in zip(ANOMALY_CASES, expected, got, strict=True):
        assert have == want, case


def test_deep_pages_walk_with_search_after(
    parquet: ScoredResults, elastic: ElasticsearchResults, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A result window of 7 makes every page past the 7th hit take the search_after path.
    monkeypatch.setattr(elasticsearch_results, "MAX_WINDOW", 7)
    for level, total in (("users", N_USERS), ("transactions", N_USERS * TX_PER_USER)):
        for offset in (0, 5, 7, 13, 21, total - 3, total, total + 9):
            want = parquet.anomalies(AnomalyFilter(), level=level, offset=offset, limit=6)
            have = elastic.anomalies(AnomalyFilter(), level=level, offset=offset, limit=6)
            assert have == want, (level, offset)
    flt = AnomalyFilter(score_max=0.7)
    want = parquet.anomalies(flt, level="transactions", offset=20, limit=15)
    assert elastic.anomalies(flt, level="transactions", offset=20, limit=15) == want


def test_details_are_identical(parquet: ScoredResults, elastic: ElasticsearchResults) -> None:
    for user_id in (1, 2, 5, 17, 40, 41, 0, -5, 10**20):  # ids past int64 cannot exist
        assert elastic.user(user_id) == parquet.user(user_id), user_id
        assert elastic.user_exists(user_id) == parquet.user_exists(user_id), user_id
        assert elastic.transactions_of(user_id) == parquet.transactions_of(user_id), user_id
        assert elastic.transactions_of(user_id, 2) == parquet.transactions_of(user_id, 2)
    assert parquet.user(1) is not None and parquet.user(41) is None
    for tx_id in (100, 101, 1704, 4004, 4099, 999999, 10**20):
        assert elastic.transaction(tx_id) == parquet.transaction(tx_id), tx_id
    assert parquet.transaction(100) is not None
    assert elastic.facets() == parquet.facets()
    assert parquet.facets()["persona"]


def test_the_newest_run_is_read_and_an_older_one_can_be_pinned(es_url: str) -> None:
    newest = ElasticsearchResults.from_settings(ElasticsearchSettings(url=es_url))
    pinned = ElasticsearchResults.from_settings(
        ElasticsearchSettings(url=es_url, model_version=OLD_VERSION)
    )
    absent = ElasticsearchResults.from_settings(
        ElasticsearchSettings(url=es_url, model_version="no-such-version")
    )
    try:
        assert newest.model_version() == CURRENT_VERSION
        assert newest.anomalies(AnomalyFilter())[1] == N_USERS  # not both runs: 80
        assert pinned.anomalies(AnomalyFilter())[1] == N_USERS
        assert pinned.user(1) == newest.user(1)  # the same fixture published twice
        assert absent.anomalies(AnomalyFilter())[1] == 0
        assert absent.user(1) is None
    finally:
        for reader in (newest, pinned, absent):
            reader.close()


def test_a_missing_index_is_unavailable_with_the_fix(es_url: str) -> None:
    reader = ElasticsearchResults.from_settings(
        ElasticsearchSettings(url=es_url, users_index=f"fraudwatch-missing-{SESSION}")
    )
    try:
        with pytest.raises(ResultsUnavailable) as err:
            reader.anomalies(AnomalyFilter())
    finally:
        reader.close()
    assert "fraudwatch publish" in str(err.value) and "\n" not in str(err.value)


# --- the API served on each backend -------------------------------------------------------
def api_client(tmp_path: Path, results: ResultsReader) -> tuple[TestClient, dict[str, str]]:
    store = SqliteStore(tmp_path / "state.sqlite3")
    settings = load_settings(tmp_path / "absent.toml", {})
    client = TestClient(create_app(settings, store, results), raise_server_exceptions=False)
    token, _ = create_token(store, "admin")
    return client, {"Authorization": f"Bearer {token}"}


def without_clock(value: Any) -> Any:
    """Drop the times the service itself stamps (they differ between two services)."""
    if isinstance(value, dict):
        return {
            k: without_clock(v) for k, v in value.items() if k not in ("updated_at", "ts_audit")
        }
    if isinstance(value, list):
        return [without_clock(v) for v in value]
    return value


def test_the_api_answers_alike_on_both_backends(
    tmp_path: Path, parquet: ScoredResults, elastic: ElasticsearchResults
) -> None:
    on_parquet, parquet_auth = api_client(tmp_path / "parquet", parquet)
    on_elastic, elastic_auth = api_client(tmp_path / "elastic", elastic)
    for user_id in ("2", "3"):
        for client, auth in ((on_parquet, parquet_auth), (on_elastic, elastic_auth)):
            locked = client.post(
                f"/v1/accounts/{user_id}/lock", json={"reason": "contract"}, headers=auth
            )
            assert locked.status_code == 200 and locked.json()["result"] == "applied"
    for client, auth in ((on_parquet, parquet_auth), (on_elastic, elastic_auth)):
        blocked = client.post("/v1/transactions/101/block", json={"reason": "x"}, headers=auth)
        assert blocked.status_code == 200
    paths = [
        "/v1/anomalies",
        "/v1/anomalies?page=2&page_size=9",
        "/v1/anomalies?level=transactions&page=3&page_size=20",
        "/v1/anomalies?status=locked",
        "/v1/anomalies?status=open&page_size=5&score_min=0.2",
        "/v1/anomalies?level=transactions&status=blocked",
        "/v1/anomalies?level=transactions&status=open&flagged=true",
        "/v1/anomalies?persona=tight-passive&hour=2",
        "/v1/anomalies?type=payment&country=FR&level=transactions",
        "/v1/anomalies?scenario=account_takeover&status=open",
        "/v1/users/2",
        "/v1/users/7",
        "/v1/users/99",
        "/v1/transactions/101",
        "/v1/transactions/4004",
        "/v1/transactions/7",
    ]
    for path in paths:
        want = on_parquet.get(path, headers=parquet_auth)
        have = on_elastic.get(path, headers=elastic_auth)
        assert have.status_code == want.status_code, path
        assert without_clock(have.json()) == without_clock(want.json()), path
    profile = on_elastic.get("/v1/users/2", headers=elastic_auth).json()["profile"]
    assert profile["state"] == {"locked": True, "step_up": False}
    assert profile["persona"] == parquet.user(2)["persona"]  # type: ignore[index]
    assert profile["last_seen"] == parquet.transactions_of(2)[0]["ts"]
    assert on_parquet.get("/v1/anomalies?status=locked", headers=parquet_auth).json()["total"] == 2
    missing = on_elastic.post("/v1/accounts/99/lock", json={"reason": "x"}, headers=elastic_auth)
    assert missing.status_code == 404


def test_fraudwatch_serve_reads_elasticsearch_when_configured(
    tmp_path: Path, es_url: str, parquet: ScoredResults
) -> None:
    """`fraudwatch serve` as an operator runs it: no Parquet anywhere, only the ES URL."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx
    from live_service import free_port
    from test_intervention_serve import WIRED_CLI, fraudwatch

    workloads = Path(__file__).resolve().parents[3] / "workloads"
    env = {
        **os.environ,
        "FRAUDWATCH_HOME": str(tmp_path / "home"),
        "FRAUDWATCH_ELASTICSEARCH_URL": es_url,
        "PYTHONPATH": os.pathsep.join([str(workloads), os.environ.get("PYTHONPATH", "")]),
    }
    for name in ("FRAUDWATCH_CONFIG", "FRAUDWATCH_STATE_URL", "FRAUDWATCH_SCORED"):
        env.pop(name, None)
    created = fraudwatch(env, "tokens", "create", "--role", "analyst")
    assert created.returncode == 0, created.stderr
    headers = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", WIRED_CLI, "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise AssertionError(log_path.read_text())
            top = httpx.get(f"{base}/v1/anomalies?page_size=5&page=2", headers=headers).json()
            items, total = parquet.anomalies(AnomalyFilter(), offset=5, limit=5)
            assert top["total"] == total == N_USERS
            assert [i["user_id"] for i in top["items"]] == [i["user_id"] for i in items]
            locked = httpx.post(
                f"{base}/v1/accounts/6/lock", json={"reason": "serve on ES"}, headers=headers
            )
            assert locked.status_code == 200 and locked.json()["result"] == "applied"
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
    assert f"results from Elasticsearch {es_url}" in log_path.read_text()
