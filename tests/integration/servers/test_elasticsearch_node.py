"""The Elasticsearch node indexes documents with an explicit mapping and answers searches.

The project talks to Elasticsearch over its REST API with httpx: elasticsearch-py 7.13 (the
last client without the product check) does not import beside numpy 2, and 7.14+ refuses the
node built from Maven Central artifacts (docs/operations/dev-services.md)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

MAPPING = {
    "properties": {
        "user_id": {"type": "keyword"},
        "amount": {"type": "float"},
        "anomaly_score": {"type": "float"},
        "ts": {"type": "date"},
    }
}


@pytest.fixture
def client(elasticsearch_server):
    with httpx.Client(base_url=elasticsearch_server.url, timeout=30) as es:
        yield es


@pytest.fixture
def index(client):
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    body = {"settings": {"number_of_replicas": 0}, "mappings": MAPPING}
    client.put(f"/{name}", json=body).raise_for_status()
    yield name
    client.delete(f"/{name}")


def test_bulk_index_then_search_and_aggregate(client, index):
    lines = []
    for i in range(100):
        lines.append(json.dumps({"index": {"_index": index, "_id": f"tx-{i}"}}))
        source = {
            "user_id": f"user-{i % 4}",
            "amount": float(i),
            "anomaly_score": i / 100,
            "ts": f"2026-01-01T{i % 24:02d}:00:00Z",
        }
        lines.append(json.dumps(source))
    response = client.post(
        "/_bulk?refresh=wait_for",
        content="\n".join(lines) + "\n",
        headers={"Content-Type": "application/x-ndjson"},
    ).json()
    assert response["errors"] is False and len(response["items"]) == 100

    query = {"query": {"term": {"user_id": "user-1"}}, "size": 100}
    hits = client.post(f"/{index}/_search", json=query).json()
    assert hits["hits"]["total"]["value"] == 25
    assert {h["_source"]["user_id"] for h in hits["hits"]["hits"]} == {"user-1"}

    aggs = {
        "size": 0,
        "aggs": {
            "users": {
                "terms": {"field": "user_id", "order": {"max": "desc"}},
                "aggs": {"max": {"max": {"field": "anomaly_score"}}},
            }
        },
    }
    buckets = client.post(f"/{index}/_search", json=aggs).json()["aggregations"]["users"]["buckets"]
    assert [b["key"] for b in buckets] == ["user-3", "user-2", "user-1", "user-0"]
    assert buckets[0]["max"]["value"] == pytest.approx(0.99)


def test_same_id_twice_keeps_one_document(client, index):
    """Replays rely on deterministic document ids: indexing the same id again overwrites."""
    for _ in range(2):
        doc = {"user_id": "user-1", "amount": 1.0}
        client.put(f"/{index}/_doc/tx-1?refresh=wait_for", json=doc).raise_for_status()
    assert client.get(f"/{index}/_count").json()["count"] == 1


def test_explicit_mapping_is_kept(client, index):
    properties = client.get(f"/{index}/_mapping").json()[index]["mappings"]["properties"]
    assert properties["user_id"] == {"type": "keyword"}
    assert properties["ts"] == {"type": "date"}
