"""`fraudwatch privacy export` and `erase` against real servers: raw and scored folders on
Ceph's S3 gateway, an Elasticsearch node and a MongoDB state store (FerretDB). The export holds
the customer's rows from every store; after erasure a search of every store finds nothing of
them, everyone else is still there, and `fraudwatch audit verify` passes."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.fs as pafs
from fraudwatch.elasticsearch.client import connect
from fraudwatch.elasticsearch.definitions import apply_definitions
from fraudwatch.intervention.stores.mongodb import MongoStore
from fraudwatch.locations import storage
from subject_records import CUSTOMER, OTHER, fraudwatch, generate_raw, held, populate, write_scored

REPO = Path(__file__).resolve().parents[3]
ALIASES = ("fraudwatch-transactions", "fraudwatch-users", "fraudwatch-audit")


def _upload(local: Path, fs: pafs.S3FileSystem, prefix: str) -> None:
    pafs.copy_files(str(local), prefix, destination_filesystem=fs)


def _rows_on_s3(fs: pafs.S3FileSystem, prefix: str, user_id: int) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    selector = pafs.FileSelector(prefix, recursive=True)
    found = 0
    for info in fs.get_file_info(selector):
        if info.path.endswith(".parquet") and "/models/" not in info.path:
            table = pq.read_table(info.path, filesystem=fs, columns=["user_id"])
            found += int(pc.sum(pc.equal(table.column("user_id"), user_id)).as_py() or 0)
    return found


def _es_documents(client, user_id: int) -> dict[str, int]:
    found = {}
    for alias in ALIASES:
        field = "subject_id" if alias.endswith("audit") else "user_id"
        answer = client.request(
            "POST", f"/{alias}/_count", {"query": {"term": {field: str(user_id)}}}
        )
        found[alias] = int(answer["count"])
    return found


def _index_customer_documents(client, user_id: int) -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    docs = {
        "fraudwatch-transactions": [
            {"tx_id": user_id * 100 + n, "user_id": user_id, "ts": now, "ip": "203.0.113.7"}
            for n in range(3)
        ],
        "fraudwatch-users": [{"user_id": user_id, "scored_at": now, "rank": user_id}],
        "fraudwatch-audit": [
            {
                "ts": now,
                "seq": user_id,
                "actor": "token:analyst",
                "action": "lock",
                "subject_kind": "account",
                "subject_id": str(user_id),
                "result": "applied",
            }
        ],
    }
    actions: list[dict] = []
    for alias, items in docs.items():
        for doc in items:
            actions += [{"index": {"_index": alias}}, doc]
    answer = client.bulk(actions)
    assert not answer["errors"], answer
    for alias in docs:
        client.request("POST", f"/{alias}/_refresh")


def test_export_and_erase_one_customer_across_ceph_elasticsearch_and_mongodb(
    ceph_s3, elasticsearch_server, mongo_url: str, tmp_path: Path
) -> None:
    # raw and scored folders on Ceph
    local_raw, local_scored = tmp_path / "raw", tmp_path / "scored"
    generate_raw(local_raw)
    write_scored(local_raw, local_scored)
    fs = storage.s3_filesystem()
    bucket = f"subject-{uuid.uuid4().hex[:8]}"
    fs.create_dir(bucket)
    _upload(local_raw, fs, f"{bucket}/raw")
    _upload(local_scored, fs, f"{bucket}/scored")
    raw, scored = f"s3://{bucket}/raw", f"s3://{bucket}/scored"
    theirs = _rows_on_s3(fs, f"{bucket}/raw", CUSTOMER)
    others = _rows_on_s3(fs, f"{bucket}/raw", OTHER) + _rows_on_s3(fs, f"{bucket}/scored", OTHER)
    assert theirs and others

    # Elasticsearch: the published copies and the audit copy
    es = connect(elasticsearch_server.url)
    apply_definitions(es, REPO / "dashboards" / "elasticsearch")
    for user in (CUSTOMER, OTHER):
        _index_customer_documents(es, user)
    assert all(_es_documents(es, CUSTOMER).values())

    # the state store on FerretDB
    database = f"subject_{uuid.uuid4().hex[:10]}"
    state_url = f"{mongo_url.rstrip('/')}/{database}"
    store = MongoStore(state_url)
    try:
        populate(store, CUSTOMER)
        populate(store, OTHER)
        stores = ["--raw", raw, "--scored", scored, "--es-url", elasticsearch_server.url]
        stores += ["--state-url", state_url]

        out = tmp_path / "export.json"
        result = fraudwatch(
            "privacy", "export", "--user-id", str(CUSTOMER), *stores, "--out", str(out)
        )
        assert result.returncode == 0, result.stdout + result.stderr
        document = json.loads(out.read_text())["stores"]
        raw_rows = [r for rows in document["raw"][raw].values() for r in rows]
        assert len(raw_rows) == theirs and {r["user_id"] for r in raw_rows} == {CUSTOMER}
        assert [r["user_id"] for r in document["scored"][scored]["users.parquet"]] == [CUSTOMER]
        assert document["scored"][scored]["transactions/part-0.parquet"]
        es_found = {
            index.rsplit("-", 1)[0]: docs for index, docs in document["elasticsearch"].items()
        }
        assert sorted(es_found) == sorted(ALIASES)
        assert len(es_found["fraudwatch-transactions"]) == 3
        assert document["state_store"]["profile"]["user_id"] == str(CUSTOMER)
        assert [d["id"] for d in document["state_store"]["dispositions"]] == [f"d-{CUSTOMER}"]
        assert document["state_store"]["decisions"] and document["state_store"]["approvals"]

        result = fraudwatch("privacy", "erase", "--user-id", str(CUSTOMER), *stores)
        assert result.returncode == 0, result.stdout + result.stderr

        # a search of every store finds nothing of the customer ...
        assert _rows_on_s3(fs, f"{bucket}/raw", CUSTOMER) == 0
        assert _rows_on_s3(fs, f"{bucket}/scored", CUSTOMER) == 0
        assert _es_documents(es, CUSTOMER) == dict.fromkeys(ALIASES, 0)
        assert held(store, CUSTOMER) == {
            "profile": False,
            "dispositions": 0,
            "decisions": 0,
            "approvals": 0,
        }
        # ... and everyone else is still there, with no staging left behind
        assert (
            _rows_on_s3(fs, f"{bucket}/raw", OTHER) + _rows_on_s3(fs, f"{bucket}/scored", OTHER)
            == others
        )
        assert all(_es_documents(es, OTHER).values())
        assert held(store, OTHER)["profile"] and held(store, OTHER)["dispositions"] == 1
        leftovers = fs.get_file_info(pafs.FileSelector(bucket, recursive=True))
        staged = [i.path for i in leftovers if "_staging" in i.path]
        assert [p for p in staged if p.endswith(".parquet")] == []  # no staged copy remains
        # a second export finds nothing in the folders or Elasticsearch
        result = fraudwatch(
            "privacy", "export", "--user-id", str(CUSTOMER), *stores, "--out", str(out)
        )
        assert result.returncode == 0, result.stdout + result.stderr
        again = json.loads(out.read_text())["stores"]
        assert again["raw"][raw] == {} and again["scored"][scored] == {}
        assert again["elasticsearch"] == {}

        verify = fraudwatch(
            "audit", "verify", env={**os.environ, "FRAUDWATCH_STATE_URL": state_url}
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "audit chain intact" in verify.stdout
    finally:
        store.client.drop_database(database)
        store.close()
