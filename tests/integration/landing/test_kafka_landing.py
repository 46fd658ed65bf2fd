"""`fraudwatch land`: one day of events from the real Kafka broker into the raw layout on the real
Ceph S3 gateway (tests/integration/conftest.py starts both).

A small data set is generated twice with the same seed: into Kafka (`generate --sink kafka`)
and into a local folder (`generate --out`), which says how many events each day holds. Two
malformed records are added to the transactions topic. Each day is then landed on Ceph and
checked against the local copy; one day is landed again (same counts, same files); the
malformed records are in a dead-letter file with their reasons; `score --input` reads the
landed days; bad configuration fails with one line and exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from fraudwatch.locations import storage

DAYS = ("2026-03-01", "2026-03-02", "2026-03-03")
TABLES = ("transactions", "logins", "api_calls")
GENERATE = [
    *("--users", "300", "--transactions", "4000", "--seed", "11"),
    *("--start", DAYS[0], "--days", str(len(DAYS)), "--fraud-rate", "0.02"),
]
SORT = {"transactions": "tx_id", "logins": "event_id", "api_calls": "event_id"}


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fraudwatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "FRAUDWATCH_KAFKA_BOOTSTRAP": ""},
    )


def _land(bootstrap: str, prefix: str, day: str, out: str, *extra: str):
    return cli("land", "--bootstrap", bootstrap, "--topic-prefix", prefix, "--date", day,
               "--out", out, *extra)  # fmt: skip


def _produce_malformed(bootstrap: str, topic: str) -> dict[str, str]:
    """Two bad records: a schema violation dated on DAYS[1] and a value that is not JSON.
    Returns reason fragment → the day each must be filed under."""
    from confluent_kafka import Producer

    good_shape = {
        "schema_version": 1,
        "event_type": "transaction",
        "event": {
            "user_id": 1, "ts": f"{DAYS[1]}T12:00:00Z", "tx_id": 99_999_999, "amount": -5.0,
            "currency": "EUR", "tx_type": "payment", "channel": "web", "ip": "10.0.0.1",
            "device_id": "d-1", "country": "DE", "counterparty": "c-1", "status": "ok",
        },
    }  # fmt: skip
    stamps: list[int] = []
    producer = Producer({"bootstrap.servers": bootstrap})
    on_delivery = lambda err, msg: stamps.append(msg.timestamp()[1])  # noqa: E731
    producer.produce(
        topic, key=b"1", value=json.dumps(good_shape).encode(), on_delivery=on_delivery
    )
    producer.produce(topic, key=b"2", value=b"\xff not json", on_delivery=on_delivery)
    assert producer.flush(30) == 0 and len(stamps) == 2
    # The record without a readable event time is filed by its broker timestamp.
    broker_day = datetime.fromtimestamp(stamps[1] / 1000, UTC).date().isoformat()
    return {"event.amount": DAYS[1], "not UTF-8 JSON": broker_day}


@pytest.fixture(scope="module")
def produced(kafka_server, ceph_s3, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("landing")
    prefix = f"landing-{uuid.uuid4().hex[:8]}."
    bootstrap = kafka_server.url
    done = cli("generate", "--sink", "kafka", "--kafka-bootstrap", bootstrap,
               "--topic-prefix", prefix, *GENERATE)  # fmt: skip
    assert done.returncode == 0, done.stderr
    local = tmp / "generated"
    done = cli("generate", "--out", str(local), "--workers", "1", *GENERATE)
    assert done.returncode == 0, done.stderr
    malformed = _produce_malformed(bootstrap, f"{prefix}transactions")
    out = f"s3://fraudwatch-landing-{uuid.uuid4().hex[:8]}/raw"
    runs = {day: _land(bootstrap, prefix, day, out) for day in DAYS}
    return {
        "bootstrap": bootstrap,
        "prefix": prefix,
        "local": local,
        "out": out,
        "runs": runs,
        "malformed": malformed,
        "tmp": tmp,
    }


def _s3_table(location: str):
    dataset = ds.dataset(
        storage.s3_path(location), filesystem=storage.s3_filesystem(), format="parquet"
    )
    return dataset.to_table()


def _manifest(out: str, day: str) -> dict:
    text = storage.read_text(f"{out}/_landing/date={day}/manifest.json")
    assert text is not None, f"no manifest for {day}"
    return json.loads(text)


def _dead_letters(out: str, day: str) -> list[dict]:
    text = storage.read_text(f"{out}/_landing/date={day}/dead-letter.jsonl") or ""
    return [json.loads(line) for line in text.splitlines()]


def test_every_day_lands_with_the_counts_that_were_produced(produced):
    out, local = produced["out"], produced["local"]
    for day, run in produced["runs"].items():
        assert run.returncode == 0, run.stderr
        assert "landed" in run.stderr
        manifest = _manifest(out, day)
        for table in TABLES:
            expected = pq.read_table(local / table / f"date={day}").num_rows
            assert expected > 0
            assert manifest["counts"][table] == expected, (day, table)
            landed = _s3_table(f"{out}/{table}/date={day}")
            assert landed.num_rows == expected, (day, table)
    topics = _manifest(out, DAYS[1])["topics"]
    # Every record read is accounted for: landed, dead-lettered, or of another day.
    for counts in topics.values():
        assert counts["read"] == counts["landed"] + counts["dead_letters"] + counts["other_days"]


def test_landed_rows_are_the_generated_rows_in_the_generator_schema(produced):
    day = DAYS[1]
    for table in TABLES:
        expected = pq.read_table(produced["local"] / table / f"date={day}")
        landed = _s3_table(f"{produced['out']}/{table}/date={day}")
        assert landed.schema.equals(expected.schema), table
        keys = [(c, "ascending") for c in ("user_id", "ts", SORT[table])]
        assert landed.sort_by(keys).to_pylist() == expected.sort_by(keys).to_pylist(), table


def test_rerunning_a_day_replaces_it_without_duplicates(produced):
    out, day = produced["out"], DAYS[1]
    before = _manifest(out, day)
    neighbour = _manifest(out, DAYS[0])
    files_before = storage.list_parquet(out)
    again = _land(produced["bootstrap"], produced["prefix"], day, out)
    assert again.returncode == 0, again.stderr
    after = _manifest(out, day)
    assert after["counts"] == before["counts"]
    assert after["dead_letters"] == before["dead_letters"]
    assert storage.list_parquet(out) == files_before  # the same files, none added
    # Staged under OUT/_staging/<token>/ and swapped in: nothing of the staging is left.
    assert [f for f in storage.list_parquet(out) if "/_staging/" in f] == []
    for table in TABLES:
        assert _s3_table(f"{out}/{table}/date={day}").num_rows == before["counts"][table]
    # The other days were not touched by the rerun.
    assert _manifest(out, DAYS[0]) == neighbour


def test_malformed_records_land_in_the_dead_letter_file_with_their_reason(produced):
    out = produced["out"]
    by_day: dict[str, list[str]] = {}
    for fragment, day in produced["malformed"].items():
        by_day.setdefault(day, []).append(fragment)
    for day, fragments in by_day.items():
        if day not in DAYS:
            run = _land(produced["bootstrap"], produced["prefix"], day, out)
            assert run.returncode == 0, run.stderr
        letters = _dead_letters(out, day)
        assert _manifest(out, day)["dead_letters"] == len(letters)
        for fragment in fragments:
            matching = [x for x in letters if fragment in x["reason"]]
            assert len(matching) == 1, (fragment, letters)
            letter = matching[0]
            assert letter["topic"] == f"{produced['prefix']}transactions"
            assert letter["offset"] >= 0 and letter["value"] is not None
    # The schema violation is not among the landed transactions.
    landed = _s3_table(f"{out}/transactions/date={DAYS[1]}")
    assert 99_999_999 not in landed["tx_id"].to_pylist()


def test_score_reads_the_landed_days(produced, tmp_path):
    out = tmp_path / "scored"
    done = cli("score", "--input", produced["out"], "--out", str(out), "--models", "iforest",
               "--fit-users", "100")  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads((out / "run.json").read_text())
    expected = sum(_manifest(produced["out"], d)["counts"]["transactions"] for d in DAYS)
    assert run["counts"]["transactions"] == expected


def test_a_local_landing_is_replaced_whole_and_a_failed_one_leaves_it_alone(produced, tmp_path):
    raw, day = tmp_path / "raw", DAYS[2]
    first = _land(produced["bootstrap"], produced["prefix"], day, str(raw))
    assert first.returncode == 0, first.stderr
    files = sorted(p.relative_to(raw) for p in raw.rglob("*") if p.is_file())
    rows = pq.read_table(raw / "transactions" / f"date={day}").to_pylist()
    second = _land(produced["bootstrap"], produced["prefix"], day, str(raw))
    assert second.returncode == 0, second.stderr
    assert sorted(p.relative_to(raw) for p in raw.rglob("*") if p.is_file()) == files
    assert pq.read_table(raw / "transactions" / f"date={day}").to_pylist() == rows
    assert not [p for p in tmp_path.iterdir() if p.name != "raw"]  # no staging left behind
    # A landing that fails (topics that do not exist) leaves the landed day as it was.
    failed = _land(produced["bootstrap"], "no-such-prefix.", day, str(raw))
    assert failed.returncode == 2
    assert "topic no-such-prefix.transactions does not exist" in failed.stderr
    assert sorted(p.relative_to(raw) for p in raw.rglob("*") if p.is_file()) == files
    assert (raw / "_landing" / f"date={day}" / "manifest.json").is_file()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-02-30"], "--date '2026-02-30' is not a date; use YYYY-MM-DD"),
        (["--date", DAYS[0], "--max-lateness", "soon"], "duration 'soon' is not understood"),
        (["--date", DAYS[0], "--out", "s3://only-a-bucket"], "use s3://BUCKET/PREFIX"),
    ],
)
def test_bad_arguments_fail_with_one_line(args, message, tmp_path):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "raw")]
    done = cli("land", "--bootstrap", "127.0.0.1:9", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "raw").exists()


def test_an_unreachable_broker_fails_with_one_line(tmp_path):
    bootstrap = f"127.0.0.1:{_free_port()}"
    done = cli("land", "--bootstrap", bootstrap, "--date", DAYS[0], "--out",
               str(tmp_path / "raw"), "--timeout", "3")  # fmt: skip
    assert done.returncode == 2
    assert f"Kafka at {bootstrap} did not answer" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "raw").exists()
