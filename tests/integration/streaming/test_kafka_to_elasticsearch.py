"""Kafka → `fraudwatch stream` → Elasticsearch against the real broker and node."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fraudwatch.streaming.job import MicroBatchProcessor, run_stream
from fraudwatch.streaming.produce import EventProducer, ensure_topics, produce_raw
from fraudwatch.streaming.schemas import envelope
from fraudwatch.streaming.spark_source import start_query
from fraudwatch.streaming.stream_settings import StreamSettings

from tests.servers import elasticsearch, kafka

pytestmark = pytest.mark.spark
confluent_kafka = pytest.importorskip("confluent_kafka")


def _settings(
    kafka_broker, elasticsearch_node, data, checkpoint: Path, prefix: str, index: str, **kw
):
    return StreamSettings(
        bootstrap_servers=kafka_broker.url,
        models_dir=data.models_dir,
        es_url=elasticsearch_node.url,
        checkpoint=checkpoint,
        topic_prefix=prefix,
        es_index=index,
        **kw,
    )


def _names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"t{tag}.", f"stream-{tag}"


def _indexed_ids(es_url: str, index: str) -> list[str]:
    httpx.post(f"{es_url}/{index}/_refresh").raise_for_status()
    response = httpx.post(
        f"{es_url}/{index}/_search",
        json={"size": 10_000, "_source": False, "query": {"match_all": {}}},
    )
    response.raise_for_status()
    return [hit["_id"] for hit in response.json()["hits"]["hits"]]


def _consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60) -> list:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages, deadline = [], time.monotonic() + timeout_s
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and not message.error():
                messages.append(message)
        # Anything beyond `expected` would be a duplicate: give it a moment to show up.
        extra = consumer.poll(2.0)
        if extra is not None and not extra.error():
            messages.append(extra)
    finally:
        consumer.close()
    return messages


def test_every_transaction_is_indexed_once_and_a_replay_changes_nothing(
    kafka_broker, elasticsearch_node, tiny_data_set, spark, tmp_path
):
    prefix, index = _names()
    counts = produce_raw(tiny_data_set.raw, kafka_broker.url, prefix)
    assert counts["transactions"] == tiny_data_set.transactions

    settings = _settings(
        kafka_broker,
        elasticsearch_node,
        tiny_data_set,
        tmp_path / "ckpt-1",
        prefix,
        index,
        available_now=True,
    )
    first = run_stream(settings, spark)
    ids = _indexed_ids(elasticsearch_node.url, index)

    assert len(ids) == tiny_data_set.transactions
    assert len(set(ids)) == len(ids)
    assert sum(r.dead_lettered for r in first.results) == 0
    assert sum(r.valid["logins"] for r in first.results) == counts["logins"]

    # A replay from the beginning (a fresh checkpoint) rewrites the same documents.
    settings.checkpoint = tmp_path / "ckpt-2"
    replay = run_stream(settings, spark)
    assert sum(r.indexed for r in replay.results) == tiny_data_set.transactions
    assert sorted(_indexed_ids(elasticsearch_node.url, index)) == sorted(ids)


def test_scored_documents_carry_scores_and_flags(
    kafka_broker, elasticsearch_node, tiny_data_set, spark, tmp_path
):
    prefix, index = _names()
    produce_raw(tiny_data_set.raw, kafka_broker.url, prefix)
    settings = _settings(
        kafka_broker,
        elasticsearch_node,
        tiny_data_set,
        tmp_path / "ckpt",
        prefix,
        index,
        available_now=True,
        threshold=0.5,
    )
    run_stream(settings, spark)
    httpx.post(f"{elasticsearch_node.url}/{index}/_refresh").raise_for_status()
    hits = httpx.post(f"{elasticsearch_node.url}/{index}/_search", json={"size": 10_000}).json()[
        "hits"
    ]["hits"]
    version = tiny_data_set.models_dir.name
    for hit in hits:
        source = hit["_source"]
        assert hit["_id"] == f"{source['tx_id']}:{version}"
        assert 0.0 <= source["ensemble_score"] <= 1.0
        assert source["flagged"] == (source["ensemble_score"] >= 0.5)
        assert source["model_version"] == version
    assert any(h["_source"]["flagged"] for h in hits)


def test_malformed_events_land_in_the_dead_letter_topic_with_a_reason(
    kafka_broker, elasticsearch_node, tiny_data_set, spark, tmp_path
):
    prefix, index = _names()
    ensure_topics(kafka_broker.url, prefix)
    good = envelope(
        "transactions",
        {
            "tx_id": 1,
            "user_id": 5,
            "ts": "2026-01-02T10:00:00Z",
            "amount": 12.5,
            "currency": "EUR",
            "tx_type": "payment",
            "channel": "web",
            "ip": "10.0.0.1",
            "device_id": "dev-1",
            "country": "DE",
            "counterparty": "cp-1",
            "status": "completed",
        },
    )
    bad_amount = json.loads(json.dumps(good))
    bad_amount["event"]["tx_id"], bad_amount["event"]["amount"] = 2, "lots"
    future = {**good, "schema_version": 99}
    producer = EventProducer(kafka_broker.url)
    producer.send(
        f"{prefix}transactions",
        [
            (b"5", json.dumps(good).encode()),
            (b"5", b"{not json"),
            (b"5", json.dumps(bad_amount).encode()),
            (b"5", json.dumps(future).encode()),
            (b"6", json.dumps(good).encode()),  # key is not the event's user_id
        ],
    )
    producer.flush()

    run_stream(
        _settings(
            kafka_broker,
            elasticsearch_node,
            tiny_data_set,
            tmp_path / "ckpt",
            prefix,
            index,
            available_now=True,
        ),
        spark,
    )

    letters = _consume_all(kafka_broker.url, f"{prefix}dead-letter", expected=4)
    reasons = sorted(json.loads(m.value())["reason"] for m in letters)
    assert len(letters) == 4
    assert any("not UTF-8 JSON" in r for r in reasons)
    assert any(r.startswith("event.amount:") for r in reasons)
    assert any("unknown schema_version 99" in r for r in reasons)
    assert any("is not the event's user_id" in r for r in reasons)
    payloads = {json.loads(m.value())["payload"] for m in letters}
    assert "{not json" in payloads  # the original bytes travel with the reason
    assert _indexed_ids(elasticsearch_node.url, index) == [f"1:{tiny_data_set.models_dir.name}"]


@contextmanager
def running_stream(spark, kafka_broker, elasticsearch_node, data, tmp_path, **kw):
    """A stream of 1-second micro-batches of at most 100 records (so a fault lands between
    batches), on fresh topics and index; yields (processor, query, prefix, index)."""
    prefix, index = _names()
    ensure_topics(kafka_broker.url, prefix)
    settings = _settings(
        kafka_broker,
        elasticsearch_node,
        data,
        tmp_path / "ckpt",
        prefix,
        index,
        trigger_seconds=1.0,
        max_offsets_per_trigger=100,
        **kw,
    )
    processor = MicroBatchProcessor(settings)
    processor.ensure_write_index()
    query = start_query(spark, settings, processor)
    try:
        yield processor, query, prefix, index
    finally:
        query.stop()
        processor.close()


def wait_until(condition, query, timeout_s: float, what: str) -> None:
    """Poll `condition` each half second while the query runs; fail with `what` at the end."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and query.isActive:
        if condition():
            return
        time.sleep(0.5)
    assert query.exception() is None
    assert condition(), what


def test_a_broker_restart_mid_stream_loses_and_duplicates_nothing(
    kafka_broker, elasticsearch_node, tiny_data_set, spark, tmp_path
):
    if not kafka_broker.owned:
        pytest.skip("the broker belongs to `make services-up`; this test restarts only its own")
    with running_stream(spark, kafka_broker, elasticsearch_node, tiny_data_set, tmp_path) as (
        processor,
        query,
        prefix,
        index,
    ):
        counts = produce_raw(tiny_data_set.raw, kafka_broker.url, prefix)
        wait_until(lambda: processor.results, query, 120, "nothing processed before the restart")

        kafka.stop(kafka_broker.state_dir)
        time.sleep(3)
        kafka.start(kafka_broker.state_dir, kafka_broker.port)

        wait_until(
            lambda: (
                sum(r.valid["transactions"] for r in processor.results) >= counts["transactions"]
                and len(_indexed_ids(elasticsearch_node.url, index)) >= counts["transactions"]
            ),
            query,
            180,
            "the stream did not catch up after the broker restart",
        )

    ids = _indexed_ids(elasticsearch_node.url, index)
    assert len(ids) == counts["transactions"] == len(set(ids))
    assert sum(r.valid["transactions"] for r in processor.results) == counts["transactions"]


def test_elasticsearch_unreachable_for_a_while_the_writer_backs_off_and_catches_up(
    kafka_broker, elasticsearch_node, tiny_data_set, spark, tmp_path
):
    if not elasticsearch_node.owned:
        pytest.skip("the node belongs to `make services-up`; this test restarts only its own")
    with running_stream(
        spark, kafka_broker, elasticsearch_node, tiny_data_set, tmp_path, es_retry_for_s=600.0
    ) as (processor, query, prefix, index):
        counts = produce_raw(tiny_data_set.raw, kafka_broker.url, prefix)
        wait_until(
            lambda: any(r.indexed for r in processor.results),
            query,
            120,
            "nothing indexed before the outage",
        )

        elasticsearch.stop(elasticsearch_node.state_dir)
        # While the node is down the same data set arrives a second time (a producer retrying
        # everything): micro-batches must wait for the node, then overwrite, not duplicate.
        produce_raw(tiny_data_set.raw, kafka_broker.url, prefix)
        time.sleep(5)
        elasticsearch.start(elasticsearch_node.state_dir, elasticsearch_node.port)

        wait_until(
            lambda: (
                sum(r.valid["transactions"] for r in processor.results)
                >= 2 * counts["transactions"]
            ),
            query,
            300,
            "the stream did not catch up after the outage",
        )

    ids = _indexed_ids(elasticsearch_node.url, index)
    assert len(ids) == counts["transactions"] == len(set(ids))
    # The outage hit at least one bulk write, which waited instead of failing the stream.
    assert sum(r.es_retries for r in processor.results) > 0
