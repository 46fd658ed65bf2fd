"""Generated events to Kafka: one topic per event type, key = user_id, idempotent producer.

`generate_to_kafka` produces a freshly generated data set (what `fraudwatch generate --sink
kafka` runs); `produce_raw` replays a raw directory written by `fraudwatch generate`. Rows go
out user by user in time order, and the key sends every event of a user to one partition, so
each user's events stay in order for the consumer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fraudwatch.contract.events import DEFAULT_TOPIC_PREFIX
from fraudwatch.errors import UserError
from fraudwatch.streaming.kafka_security import client_config
from fraudwatch.streaming.schemas import DEAD_LETTER, TOPICS, envelope

DEFAULT_PARTITIONS = 3


def producer_config(bootstrap: str) -> dict[str, Any]:
    """Idempotent, fully acknowledged: a retried send is never written twice, an acknowledged
    one is on every in-sync replica. Authentication from the environment (kafka_security)."""
    return client_config(
        bootstrap,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            "client.id": "fraudwatch-producer",
        },
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def records(topic: str, table: pa.Table) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) per row of a generator table, the value the topic's envelope as JSON."""
    for batch in table.to_batches(max_chunksize=10_000):
        for row in batch.to_pylist():
            event = {k: _json_value(v) for k, v in row.items()}
            key = str(row["user_id"]).encode()
            yield key, json.dumps(envelope(topic, event), separators=(",", ":")).encode()


def ensure_topics(
    bootstrap: str, prefix: str, partitions: int = DEFAULT_PARTITIONS, replication: int = 1
) -> list[str]:
    """Create the event topics and the dead-letter topic if they do not exist."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(client_config(bootstrap))
    names = [f"{prefix}{t}" for t in (*TOPICS, DEAD_LETTER)]
    try:
        existing = set(admin.list_topics(timeout=30).topics)
    except KafkaException as exc:
        raise UserError(
            f"Kafka at {bootstrap} did not answer ({exc}); check --bootstrap-servers"
        ) from None
    missing = [
        NewTopic(n, num_partitions=partitions, replication_factor=replication)
        for n in names
        if n not in existing
    ]
    for name, future in admin.create_topics(missing).items() if missing else []:
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise UserError(f"could not create topic {name}: {exc}") from None
    return names


class EventProducer:
    """Sends (key, value) records and raises once at the end if any delivery failed."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        self._producer = Producer(producer_config(bootstrap))
        self.bootstrap = bootstrap
        self.delivered = 0
        self.failures: list[str] = []

    def _on_delivery(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.failures.append(str(error))
        else:
            self.delivered += 1

    def send(self, topic: str, pairs: Iterable[tuple[bytes, bytes]]) -> int:
        sent = 0
        for key, value in pairs:
            while True:
                try:
                    self._producer.produce(
                        topic, key=key, value=value, on_delivery=self._on_delivery
                    )
                    break
                except BufferError:  # local queue full: let deliveries drain
                    self._producer.poll(0.5)
            self._producer.poll(0)
            sent += 1
        return sent

    def flush(self, timeout_s: float = 120.0) -> None:
        left = self._producer.flush(timeout_s)
        if left:
            raise UserError(
                f"{left} events not acknowledged by Kafka at {self.bootstrap} after "
                f"{timeout_s:.0f} s; check the brokers and re-run (the producer is idempotent)"
            )
        if self.failures:
            raise UserError(
                f"Kafka refused {len(self.failures)} events (first: {self.failures[0]}); "
                "fix the cause and re-run"
            )


def generate_to_kafka(
    config: Any,
    bootstrap: str,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
    chunk_users: int = 50_000,
    partitions: int = DEFAULT_PARTITIONS,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Generate the data set described by `config` (a GeneratorConfig) straight into Kafka;
    return the number of events produced per topic."""
    from fraudwatch.generator import events
    from fraudwatch.generator.population import build_population

    ensure_topics(bootstrap, topic_prefix, partitions)
    population = build_population(config)
    builders = {
        "transactions": events.transactions,
        "logins": events.logins,
        "api-calls": events.api_calls,
    }
    producer = EventProducer(bootstrap)
    counts = dict.fromkeys(TOPICS, 0)
    for first in range(0, config.users, chunk_users):
        last = min(first + chunk_users, config.users)
        for topic, build in builders.items():
            counts[topic] += producer.send(
                f"{topic_prefix}{topic}", records(topic, build(population, first, last))
            )
        if on_progress:
            on_progress(last - first)
    producer.flush()
    return counts


def produce_raw(
    input_dir: Path,
    bootstrap: str,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
    partitions: int = DEFAULT_PARTITIONS,
) -> dict[str, int]:
    """Produce the events of a raw directory written by `fraudwatch generate`."""
    input_dir = Path(input_dir)
    if not (input_dir / "transactions").is_dir():
        raise UserError(
            f"{input_dir} has no transactions/ folder; pass a directory written by "
            "`fraudwatch generate`"
        )
    ensure_topics(bootstrap, topic_prefix, partitions)
    producer = EventProducer(bootstrap)
    counts = dict.fromkeys(TOPICS, 0)
    for topic, table_name in TOPICS.items():
        for path in sorted((input_dir / table_name).rglob("*.parquet")):
            table = pq.read_table(path)
            counts[topic] += producer.send(f"{topic_prefix}{topic}", records(topic, table))
    producer.flush()
    return counts
