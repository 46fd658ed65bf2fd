"""`fraudwatch_daily` with publishing ON: the day's scores go to a real Elasticsearch node
(tests/servers/elasticsearch.py) and to the Tableau extract; the index holds exactly one
document per scored transaction of the day, and a rerun of the date replaces them (the same
count, not twice as many) and rewrites the extract with the same rows."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime

import pytest
from conftest import REPO, load_dag, small_config
from test_daily_local import _run

DAY = datetime(2026, 3, 2, tzinfo=UTC)
DAY_S = "2026-03-02"


def _es(url: str, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _indexed_transactions(url: str, model_version: str) -> int:
    """Documents of the day's transactions scored with `model_version` (other data a shared
    node may hold is left out)."""
    _es(url, "POST", "/fraudwatch-transactions/_refresh")
    query = {
        "bool": {
            "filter": [
                {"term": {"model_version": model_version}},
                {"range": {"ts": {"gte": f"{DAY_S}T00:00:00Z", "lt": "2026-03-03T00:00:00Z"}}},
            ]
        }
    }
    return _es(url, "POST", "/fraudwatch-transactions/_count", {"query": query})["count"]


def _extract_rows(hyper_file) -> int:
    from tableauhyperapi import Connection, HyperProcess, Telemetry

    with (
        HyperProcess(  # no log file (it would land in the working directory, the repo)
            telemetry=Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}
        ) as hyper,
        Connection(hyper.endpoint, str(hyper_file)) as conn,
    ):
        return conn.execute_scalar_query('SELECT COUNT(*) FROM "Extract"."Extract"')


@pytest.fixture(scope="module")
def published(elasticsearch_server, tmp_path_factory):
    url = elasticsearch_server.url
    # The index templates and ILM policies first (what an operator runs once per cluster).
    applied = subprocess.run(
        [sys.executable, "-m", "fraudwatch.cli", "es", "apply", "--es-url", url],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert applied.returncode == 0, applied.stderr
    tmp = tmp_path_factory.mktemp("daily-publish")
    home = tmp / "home"
    config = small_config(home, publish={"elasticsearch": True, "tableau": True})
    results = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FRAUDWATCH_ELASTICSEARCH_URL", url)  # the publisher reads it (docs/airflow.md)
        mp.chdir(REPO)  # the publisher finds dashboards/elasticsearch from the working directory
        dag = load_dag("fraudwatch_daily.py", config, tmp, mp)
        for _ in range(2):
            states = _run(dag, DAY)
            run = json.loads((home / "scored" / DAY_S / "run.json").read_text())
            results.append(
                {
                    "states": states,
                    "scored": run["counts"]["transactions"],
                    "version": run["model_version"],
                    "indexed": _indexed_transactions(url, run["model_version"]),
                    "extract": _extract_rows(
                        home / "tableau" / DAY_S / "fraudwatch-transactions.hyper"
                    ),
                }
            )
    return results


def test_publishing_tasks_run_and_succeed(published):
    for result in published:
        states = result["states"]
        assert states["run"] == "success", states
        assert states["publish_elasticsearch"] == "success"
        assert states["publish_tableau"] == "success"
        assert states["evaluate_alerts"] == "success"


def test_the_index_holds_one_document_per_scored_transaction(published):
    first = published[0]
    assert first["scored"] == 10_000
    assert first["indexed"] == first["scored"]
    assert first["extract"] == first["scored"]


def test_a_rerun_of_the_date_leaves_the_same_count(published):
    first, second = published
    assert second["version"] == first["version"]  # the promoted model scored both runs
    assert second["indexed"] == first["indexed"] == second["scored"]
    assert second["extract"] == first["extract"]
