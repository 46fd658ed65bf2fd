"""The dead-letter topic: every record that fails validation, with the reason, the source
position and the original bytes (docs/streaming.md#dead-letters)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fraudwatch.streaming.produce import producer_config


def dead_letter_value(record: dict[str, Any], reason: str) -> bytes:
    value = record["value"]
    try:
        original = value.decode("utf-8") if value is not None else None
        encoding = "utf-8"
    except UnicodeDecodeError:
        import base64

        original, encoding = base64.b64encode(value).decode(), "base64"
    return json.dumps(
        {
            "reason": reason,
            "topic": record["topic"],
            "partition": record["partition"],
            "offset": record["offset"],
            "key": record["key"].decode("utf-8", "replace") if record["key"] else None,
            "payload": original,
            "payload_encoding": encoding,
            "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    ).encode()


class DeadLetters:
    """Produces failed records to the dead-letter topic; `send` returns once the broker has
    every one of them, or raises (the micro-batch is then retried: nothing is dropped)."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._producer: Any = None

    def send(self, failed: list[tuple[dict[str, Any], str]]) -> None:
        if not failed:
            return
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer(producer_config(self.bootstrap_servers))
        errors: list[str] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                errors.append(str(error))

        for record, reason in failed:
            self._producer.produce(
                self.topic,
                # Same source position, same key: consumers of the dead-letter topic can drop
                # the copies a replayed micro-batch produces.
                key=f"{record['topic']}:{record['partition']}:{record['offset']}".encode(),
                value=dead_letter_value(record, reason),
                headers={"fraudwatch-reason": reason[:500].encode()},
                on_delivery=delivered,
            )
        left = self._producer.flush(120)
        if left or errors:
            raise RuntimeError(
                f"dead-letter topic {self.topic} did not take {left or len(errors)} "
                f"records ({errors[:1]}); the micro-batch will be retried"
            )

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(30)
