"""`fraudwatch privacy retain` against real servers: Ceph's S3 gateway, an Elasticsearch node,
a Kafka broker and FerretDB. Each test checks what a user of that store finds afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs
from fraudwatch.elasticsearch.client import connect
from fraudwatch.elasticsearch.definitions import apply_definitions
from fraudwatch.intervention.stores.mongodb import MongoStore
from fraudwatch.locations import storage
from retention_store_records import backdate_approvals, populate, survivors
from subject_records import fraudwatch

REPO = Path(__file__).resolve().parents[3]
TODAY = datetime.now(UTC).date()
POLICY = {"raw_events": 10, "scored_results": 90, "alerts_and_interventions": 30, "audit": 365}


def retain(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "FRAUDWATCH_ELASTICSEARCH_URL",
            "FRAUDWATCH_KAFKA_BOOTSTRAP",
            "FRAUDWATCH_STATE_URL",
        )
    }
    return fraudwatch("privacy", "retain", *args, env={**clean, **(env or {})})


def config_file(tmp_path: Path, data_root: str | None = None, **retention: int) -> Path:
    path = tmp_path / f"pipeline-{uuid.uuid4().hex[:6]}.json"
    path.write_text(
        json.dumps(
            {
                "home": str(tmp_path / "home"),
                "data_root": data_root or str(tmp_path / "data"),
                "privacy": {"retention": {**POLICY, **retention}},
            }
        )
    )
    return path


def one_line(text: str) -> str:
    return " ".join(text.split())


# --- Ceph S3 ------------------------------------------------------------------------------
def _put(fs: pafs.S3FileSystem, path: str, body: bytes = b"{}") -> None:
    with fs.open_output_stream(path) as stream:
        stream.write(body)


def _days_on_s3(fs: pafs.S3FileSystem, prefix: str) -> list[str]:
    selector = pafs.FileSelector(prefix, allow_not_found=True)
    return sorted(i.base_name for i in fs.get_file_info(selector))


def _objects_on_s3(fs: pafs.S3FileSystem, prefix: str) -> list[str]:
    selector = pafs.FileSelector(prefix, allow_not_found=True, recursive=True)
    return [i.path for i in fs.get_file_info(selector) if i.type == pafs.FileType.File]


def test_old_days_go_whole_from_a_data_root_on_ceph(ceph_s3, tmp_path: Path) -> None:
    fs = storage.s3_filesystem()
    bucket = f"retain-{uuid.uuid4().hex[:8]}"
    fs.create_dir(bucket)
    days = [(TODAY - timedelta(days=n)).isoformat() for n in range(15)]
    for day in days:
        _put(fs, f"{bucket}/data/raw/{day}/transactions/date={day}/part-0.parquet", b"PAR1")
        _put(fs, f"{bucket}/data/raw/{day}/manifest.json")
        _put(fs, f"{bucket}/data/scored/{day}/transactions/part-0.parquet", b"PAR1")
        _put(fs, f"{bucket}/data/scored/{day}/run.json")
    config = config_file(tmp_path, f"s3://{bucket}/data")

    dry = retain("--config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: 4 change(s) listed, nothing removed" in dry.stderr
    assert _days_on_s3(fs, f"{bucket}/data/raw") == sorted(days)

    result = retain("--config", str(config))
    assert result.returncode == 0, result.stderr
    kept = sorted(d for d in days if d >= (TODAY - timedelta(days=10)).isoformat())
    assert _days_on_s3(fs, f"{bucket}/data/raw") == kept  # raw_events: 10 days
    assert _days_on_s3(fs, f"{bucket}/data/scored") == sorted(days)  # scored: 90 days
    for gone in sorted(set(days) - set(kept)):
        assert _objects_on_s3(fs, f"{bucket}/data/raw/{gone}") == []
        assert f"removed raw_events partition s3://{bucket}/data/raw/{gone}" in result.stderr


def test_generated_raw_data_on_ceph_loses_its_old_days(ceph_s3, tmp_path: Path) -> None:
    bucket = f"retain-{uuid.uuid4().hex[:8]}"
    raw = f"s3://{bucket}/raw"
    start = TODAY - timedelta(days=19)
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "fraudwatch.cli",
            "generate",
            "--out",
            raw,
            "--users",
            "100",
            "--transactions",
            "1500",
            "--start",
            start.isoformat(),
            "--days",
            "20",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert generated.returncode == 0, generated.stderr
    result = retain("--config", str(config_file(tmp_path)), "--raw", raw)
    assert result.returncode == 0, result.stderr
    fs = storage.s3_filesystem()
    cutoff = (TODAY - timedelta(days=10)).isoformat()
    for table in ("transactions", "logins", "api_calls"):
        days = [d.removeprefix("date=") for d in _days_on_s3(fs, f"{bucket}/raw/{table}")]
        assert days and min(days) == cutoff, table
    assert _objects_on_s3(fs, f"{bucket}/raw/users")  # not partitioned by date: kept


# --- Elasticsearch ------------------------------------------------------------------------
def _index(client, index: str, docs: list[dict]) -> None:
    actions: list[dict] = []
    for doc in docs:
        actions += [{"index": {"_index": index}}, doc]
    answer = client.bulk(actions)
    assert not answer["errors"], answer
    client.request("POST", f"/{index}/_refresh")


def _stamp(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")


def _fraudwatch_indices(client) -> list[str]:
    rows = client.request("GET", "/_cat/indices/fraudwatch-*", params={"format": "json"})
    return sorted(r["index"] for r in rows)


def test_elasticsearch_indices_older_than_the_policy_are_removed_whole(
    elasticsearch_server, tmp_path: Path
) -> None:
    url = elasticsearch_server.url
    client = connect(url)
    for name in _fraudwatch_indices(client):  # a clean node for this test
        client.request("DELETE", f"/{name}")
    apply_definitions(client, REPO / "dashboards" / "elasticsearch")
    tx = "fraudwatch-transactions"
    # 000001: every document 120 days old; 000002: 120 and 60 days old; 000003 writes today.
    _index(client, f"{tx}-000001", [{"tx_id": 1, "ts": _stamp(120)}])
    client.request("POST", f"/{tx}/_rollover")
    _index(
        client, f"{tx}-000002", [{"tx_id": 2, "ts": _stamp(120)}, {"tx_id": 3, "ts": _stamp(60)}]
    )
    client.request("POST", f"/{tx}/_rollover")
    _index(client, f"{tx}-000003", [{"tx_id": 4, "ts": _stamp(0)}])
    # Audit entries 200 days old: within the audit policy (365 days).
    _index(client, "fraudwatch-audit-000001", [{"seq": 1, "ts": _stamp(200), "action": "lock"}])
    client.request("POST", "/fraudwatch-audit/_rollover")
    before = _fraudwatch_indices(client)
    config = config_file(tmp_path)

    dry = retain("--config", str(config), "--es-url", url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: 1 change(s) listed" in dry.stderr
    assert _fraudwatch_indices(client) == before

    result = retain("--config", str(config), "--es-url", url)
    assert result.returncode == 0, result.stderr
    assert _fraudwatch_indices(client) == sorted(set(before) - {f"{tx}-000001"})
    assert f"removed scored_results index {tx}-000001 (1 documents" in result.stderr
    found = client.request("POST", f"/{tx}/_search", {"query": {"match_all": {}}})["hits"]
    assert sorted(h["_source"]["tx_id"] for h in found["hits"]) == [2, 3, 4]

    shorter = retain("--config", str(config_file(tmp_path, audit=100)), "--es-url", url)
    assert shorter.returncode == 0, shorter.stderr
    assert "fraudwatch-audit-000001" not in _fraudwatch_indices(client)
    assert "fraudwatch-audit-000002" in _fraudwatch_indices(client)  # the write index stays


def test_a_day_old_write_index_is_rolled_over_without_ilm(
    elasticsearch_server, tmp_path: Path
) -> None:
    """The test node has no ILM: the job rolls a write index holding a day's documents over,
    so that whole indices can age out later."""
    client = connect(elasticsearch_server.url)
    alias = "fraudwatch-users"
    for name in [i for i in _fraudwatch_indices(client) if i.startswith(alias)]:
        client.request("DELETE", f"/{name}")
    client.request("PUT", f"/{alias}-000001", {"aliases": {alias: {"is_write_index": True}}})
    _index(client, f"{alias}-000001", [{"user_id": 1, "scored_at": _stamp(2)}])
    result = retain("--config", str(config_file(tmp_path)), "--es-url", elasticsearch_server.url)
    assert result.returncode == 0, result.stderr
    assert f"rolled {alias} over: new write index {alias}-000002" in result.stderr
    writers = client.request("GET", f"/_alias/{alias}")
    assert writers[f"{alias}-000002"]["aliases"][alias]["is_write_index"] is True


# --- Kafka --------------------------------------------------------------------------------
def _retention_ms(bootstrap: str, topics: list[str]) -> dict[str, int]:
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, t) for t in topics])
    return {r.name: int(f.result(30)["retention.ms"].value) for r, f in futures.items()}


def test_kafka_topics_keep_raw_events_no_longer_than_the_policy(
    kafka_server, tmp_path: Path
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = kafka_server.url
    prefix = f"retain{uuid.uuid4().hex[:6]}."
    day_ms = 86_400_000
    kept = {"transactions": 30 * day_ms, "logins": day_ms, "dead-letter": -1}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    created = admin.create_topics(
        [NewTopic(f"{prefix}{t}", 1, 1, config={"retention.ms": str(ms)}) for t, ms in kept.items()]
    )
    for future in created.values():
        future.result(30)
    topics = [f"{prefix}{t}" for t in kept]
    config = tmp_path / "kafka.json"
    config.write_text(
        json.dumps(
            {
                "home": str(tmp_path / "home"),
                "kafka": {"bootstrap": bootstrap, "topic_prefix": prefix},
                "privacy": {"retention": POLICY},
            }
        )
    )
    dry = retain("--config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _retention_ms(bootstrap, topics) == {f"{prefix}{t}": ms for t, ms in kept.items()}

    result = retain("--config", str(config))
    assert result.returncode == 0, result.stderr
    assert _retention_ms(bootstrap, topics) == {
        f"{prefix}transactions": 10 * day_ms,  # lowered to raw_events (10 days)
        f"{prefix}logins": day_ms,  # already shorter: left alone
        f"{prefix}dead-letter": 10 * day_ms,  # kept forever before
    }
    assert f"set {prefix}transactions retention.ms {30 * day_ms} → {10 * day_ms}" in result.stderr


# --- the MongoDB state store (FerretDB) ---------------------------------------------------
def test_state_store_records_older_than_the_policy_go_on_mongodb(
    mongo_url: str, tmp_path: Path
) -> None:
    database = f"retain_{uuid.uuid4().hex[:10]}"
    url = f"{mongo_url.rstrip('/')}/{database}"
    store = MongoStore(url)
    try:
        populate(store)
        backdate_approvals(store)
        result = retain(
            "--config",
            str(config_file(tmp_path)),
            "--state-url",
            url,
            "--today",
            date(2026, 3, 31).isoformat(),
        )
        assert result.returncode == 0, result.stderr
        assert survivors(store) == {
            "dispositions": ["d2"],
            "decisions": ["9002"],
            "profiles": ["202", "203"],
            "approvals": ["204"],
            "sessions": ["live"],
        }
        assert "removed 1 decisions record(s) from the state store" in one_line(result.stderr)
    finally:
        store.client.drop_database(database)
        store.close()
