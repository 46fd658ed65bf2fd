"""The Kafka broker takes an idempotent producer, serves consumers, keeps data over a restart."""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from tests.servers import kafka

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def _create_topic(bootstrap: str, partitions: int = 3) -> str:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[
        topic
    ].result(timeout=30)
    return topic


def _produce(bootstrap: str, topic: str, records: list[tuple[str, str]]) -> dict[str, int]:
    """Send keyed records with an idempotent producer; return the partition of each key."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    partitions: dict[str, int] = {}
    errors: list[str] = []

    def delivered(error: object, message: object) -> None:
        if error is not None:
            errors.append(str(error))
        else:
            partitions[message.key().decode()] = message.partition()  # type: ignore[attr-defined]

    for key, value in records:
        producer.produce(topic, key=key.encode(), value=value.encode(), on_delivery=delivered)
    assert producer.flush(30) == 0, "messages still queued after 30 s"
    assert errors == []
    return partitions


def _consume(bootstrap: str, topic: str, expected: int) -> list[tuple[str, str, int]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"smoke-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: list[tuple[str, str, int]] = []
    deadline = time.monotonic() + 60
    try:
        while len(received) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            received.append((message.key().decode(), message.value().decode(), message.partition()))
    finally:
        consumer.close()
    return received


def test_idempotent_producer_round_trip(kafka_server):
    topic = _create_topic(kafka_server.url)
    records = [(f"user-{i % 7}", f'{{"tx_id": {i}}}') for i in range(200)]
    partitions = _produce(kafka_server.url, topic, records)

    received = _consume(kafka_server.url, topic, expected=len(records))

    assert sorted((k, v) for k, v, _ in received) == sorted(records)
    # Same key, same partition: per-user ordering holds.
    assert all(partitions[key] == partition for key, _, partition in received)


def test_broker_advertises_loopback_only(kafka_server):
    metadata = AdminClient({"bootstrap.servers": kafka_server.url}).list_topics(timeout=30)
    assert [(b.host, b.port) for b in metadata.brokers.values()] == [
        ("127.0.0.1", kafka_server.port)
    ]


def test_messages_survive_a_broker_restart(kafka_server):
    """Fault tests stop and start the broker mid-stream; acknowledged data must still be there."""
    if not kafka_server.owned:
        pytest.skip("the broker belongs to `make services-up`; this test restarts only its own")
    topic = _create_topic(kafka_server.url, partitions=1)
    records = [(f"user-{i}", f"before-restart-{i}") for i in range(20)]
    _produce(kafka_server.url, topic, records)

    kafka.stop(kafka_server.state_dir)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", kafka_server.port), timeout=2).close()
    kafka.start(kafka_server.state_dir, kafka_server.port)

    received = _consume(kafka_server.url, topic, expected=len(records))
    assert sorted((k, v) for k, v, _ in received) == sorted(records)
