"""`fraudwatch_daily` with `source: kafka` against a real Kafka broker (tests/servers/kafka.py):
three days of generated events are produced to the topics (the `produced` fixture in
conftest.py), the DAG lands the middle day (`fraudwatch land`), checks, scores and alerts on
exactly that day's events, and a rerun of the date leaves the same landed and scored data.
A broker nobody listens on fails `land` with its reason in the notification."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
from conftest import load_dag, small_config
from test_daily_local import _run, snapshot

DAY = datetime(2026, 3, 2, tzinfo=UTC)
DAY_S = "2026-03-02"


@pytest.fixture(scope="module")
def daily(produced, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daily-kafka")
    home = tmp / "home"
    config = small_config(
        home,
        source="kafka",
        kafka={"bootstrap": produced["bootstrap"], "topic_prefix": produced["prefix"]},
    )
    with pytest.MonkeyPatch.context() as mp:
        dag = load_dag("fraudwatch_daily.py", config, tmp, mp)
        first = _run(dag, DAY)
        after_first = snapshot(home)
        second = _run(dag, DAY)
        after_second = snapshot(home)
    return {"home": home, "states": (first, second), "snapshots": (after_first, after_second)}


def test_kafka_day_is_landed_scored_and_checked(daily, produced):
    for states in daily["states"]:
        assert states["run"] == "success", states
        assert states["land"] == "success" and states["check_scores"] == "success"
    home = daily["home"]
    raw = home / "raw" / DAY_S
    manifest = json.loads((raw / "_landing" / f"date={DAY_S}" / "manifest.json").read_text())
    assert manifest["counts"] == produced["day"]
    assert manifest["dead_letters"] == 0
    landed = pq.read_table(raw / "transactions" / f"date={DAY_S}")
    assert landed.num_rows == produced["day"]["transactions"]
    assert {t.date().isoformat() for t in landed["ts"].to_pylist()} == {DAY_S}
    run = json.loads((home / "scored" / DAY_S / "run.json").read_text())
    assert run["counts"]["transactions"] == produced["day"]["transactions"]
    check = json.loads((home / "reports" / DAY_S / "check_raw.json").read_text())
    assert check["rows"] == produced["day"]["transactions"]


def test_rerunning_a_kafka_day_lands_and_scores_the_same_data(daily):
    after_first, after_second = daily["snapshots"]
    # The landing manifest records when it ran; everything else must be identical.
    keys = {k for k in after_first if not k.endswith("_landing/date=2026-03-02/manifest.json")}
    assert set(after_second) == set(after_first)
    changed = [k for k in keys if after_first[k] != after_second[k]]
    assert changed == [], changed


def test_an_unreachable_broker_fails_land_and_notifies(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path / "home"
    config = small_config(
        home,
        source="kafka",
        kafka={"bootstrap": f"127.0.0.1:{port}", "timeout_seconds": 3},
    )
    states = _run(load_dag("fraudwatch_daily.py", config, tmp_path, monkeypatch), DAY)
    assert states["run"] == "failed"
    assert states["land"] == "failed" and states["check_raw"] == "upstream_failed"
    assert not (home / "raw" / DAY_S).exists()
    messages = (home / "notifications.jsonl").read_text()
    assert f"task land failed: land: Kafka at 127.0.0.1:{port} did not answer" in messages
