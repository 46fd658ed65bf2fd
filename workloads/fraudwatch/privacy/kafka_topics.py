"""Retention in Kafka: the event topics keep raw events no longer than the raw-event policy.

The topics `<prefix>transactions`, `<prefix>logins`, `<prefix>api-calls` and
`<prefix>dead-letter` hold raw events (the dead letters hold their original values). Their
`retention.ms` is capped at `privacy.retention.raw_events` days through the admin API: a topic
that keeps events longer (or forever, -1) is lowered to the policy; a topic that already keeps
them for less (Kafka is a buffer: 7 days by default) is left as it is — the policy is a
ceiling, and retention never grows by this job.

Under Strimzi the KafkaTopic resources own the topics' configuration and put back what they
say; there the topics' retention must come from the same value in the Pulumi/GitOps config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fraudwatch.errors import UserError
from fraudwatch.streaming.kafka_security import client_config
from fraudwatch.streaming.schemas import DEAD_LETTER, TOPICS

log = logging.getLogger("fraudwatch.privacy.retain")

RETENTION_MS = "retention.ms"
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class TopicRetention:
    topic: str
    current_ms: int  # -1: kept forever

    def exceeds(self, limit_ms: int) -> bool:
        return self.current_ms < 0 or self.current_ms > limit_ms


def topic_names(prefix: str) -> list[str]:
    return [f"{prefix}{t}" for t in (*TOPICS, DEAD_LETTER)]


def _admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    return AdminClient(client_config(bootstrap))


def current_retention(bootstrap: str, prefix: str) -> list[TopicRetention]:
    """retention.ms of each event topic that exists."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource, ResourceType

    admin = _admin(bootstrap)
    try:
        existing = set(admin.list_topics(timeout=TIMEOUT_S).topics)
        wanted = [t for t in topic_names(prefix) if t in existing]
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in wanted]
        found = []
        for resource, future in admin.describe_configs(resources).items() if resources else []:
            entries = future.result(timeout=TIMEOUT_S)
            found.append(TopicRetention(resource.name, int(entries[RETENTION_MS].value)))
    except KafkaException as exc:
        raise UserError(
            f"Kafka at {bootstrap} did not answer ({exc}); check --kafka-bootstrap / "
            "FRAUDWATCH_KAFKA_BOOTSTRAP"
        ) from None
    return sorted(found, key=lambda t: t.topic)


def set_retention(bootstrap: str, topic: TopicRetention, limit_ms: int) -> None:
    """Set the topic's retention.ms to `limit_ms` (only that key: others stay as they are)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    resource = ConfigResource(
        ResourceType.TOPIC,
        topic.topic,
        incremental_configs=[
            ConfigEntry(RETENTION_MS, str(limit_ms), incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin = _admin(bootstrap)  # held until the answer came: a collected client drops it
    try:
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise UserError(
            f"Kafka refused retention.ms={limit_ms} on {topic.topic} ({exc}); the client needs "
            "ALTER_CONFIGS on the topic"
        ) from None
    log.info(
        "set %s retention.ms %d → %d (raw_events policy)", topic.topic, topic.current_ms, limit_ms
    )
