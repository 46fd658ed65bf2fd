"""Settings of the platform's data services, read from the stack configuration: Ceph
(`storage`), Kafka and its topics (`streaming`), MongoDB (`documents`) and Elasticsearch
(`search`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .config_values import NAMESPACE, ConfigError, ConfigSection, Size, fix

# The product's topics (workloads/fraudwatch/streaming/schemas.py, the prefix in
# workloads/fraudwatch/contract/events.py): `fraudwatch stream` reads
# "<prefix>transactions|logins|api-calls" and writes "<prefix>dead-letter". The stack
# configuration keys them by the name without the prefix.
TOPIC_PREFIX = "fraudwatch."
EVENT_TOPICS = ("transactions", "logins", "api-calls")
DEAD_LETTER = "dead-letter"
REQUIRED_TOPICS = (*EVENT_TOPICS, DEAD_LETTER)


@dataclass(frozen=True)
class StorageConfig:
    mon_count: int
    use_all_nodes: bool
    device_filter: str
    data_replicas: int
    object_gateway_instances: int
    #: dm-crypt under every OSD (Rook `storage.config.encryptedDevice`): every block volume
    #: (Kafka, Elasticsearch, MongoDB) and every S3 object is encrypted at rest.
    encrypt_devices: bool
    size: Size


@dataclass(frozen=True)
class TopicConfig:
    partitions: int
    retention_hours: int


@dataclass(frozen=True)
class StreamingConfig:
    controllers: int
    brokers: int
    broker_storage: str
    replication_factor: int
    min_insync_replicas: int
    topics: Mapping[str, TopicConfig]
    broker_size: Size
    controller_size: Size


@dataclass(frozen=True)
class DocumentsConfig:
    replicas: int
    storage: str
    size: Size


@dataclass(frozen=True)
class SearchConfig:
    master_nodes: int
    data_nodes: int
    data_storage: str
    master_size: Size
    data_size: Size


def parse_storage(sto: ConfigSection) -> StorageConfig:
    return StorageConfig(
        mon_count=sto.odd("monCount", 3),
        use_all_nodes=sto.boolean("useAllNodes", True),
        device_filter=sto.string("deviceFilter", "'^sd[b-z]'"),
        data_replicas=sto.integer("dataReplicas", 3),
        object_gateway_instances=sto.integer("objectGatewayInstances", 2),
        encrypt_devices=sto.boolean("encryptDevices", True),
        size=sto.size("osd", "1", "4Gi"),
    )


def _topics(topics_raw: ConfigSection) -> dict[str, TopicConfig]:
    """Every topic fraudwatch uses, and no other."""
    topics: dict[str, TopicConfig] = {}
    for name in REQUIRED_TOPICS:
        t = topics_raw.section(name)
        topics[name] = TopicConfig(
            partitions=t.integer("partitions", 12),
            retention_hours=t.integer("retentionHours", 168),
        )
    extra_topics = sorted(set(topics_raw.raw) - set(REQUIRED_TOPICS))
    if extra_topics:
        raise ConfigError(
            f"{NAMESPACE}:streaming.topics.{extra_topics[0]} is not a topic fraudwatch uses "
            f"(expected {', '.join(REQUIRED_TOPICS)}, each created as {TOPIC_PREFIX}<name>). "
            f"Fix: pulumi config rm --path '{NAMESPACE}:streaming.topics.{extra_topics[0]}'"
        )
    return topics


def parse_streaming(st: ConfigSection) -> StreamingConfig:
    topics = _topics(st.section("topics"))
    brokers = st.integer("brokers", 3)
    replication = st.integer("replicationFactor", 3)
    min_isr = st.integer("minInsyncReplicas", 2)
    if replication > brokers:
        raise ConfigError(
            f"{NAMESPACE}:streaming.replicationFactor ({replication}) exceeds streaming.brokers "
            f"({brokers}). {fix('streaming.replicationFactor', str(brokers))}"
        )
    if min_isr > replication:
        raise ConfigError(
            f"{NAMESPACE}:streaming.minInsyncReplicas ({min_isr}) exceeds "
            f"streaming.replicationFactor ({replication}): every write would fail. "
            f"{fix('streaming.minInsyncReplicas', str(max(1, replication - 1)))}"
        )
    return StreamingConfig(
        controllers=st.odd("controllers", 3),
        brokers=brokers,
        broker_storage=st.quantity("brokerStorage", "100Gi"),
        replication_factor=replication,
        min_insync_replicas=min_isr,
        topics=topics,
        broker_size=st.size("broker", "2", "8Gi"),
        controller_size=st.size("controller", "500m", "2Gi"),
    )


def parse_documents(doc: ConfigSection) -> DocumentsConfig:
    return DocumentsConfig(
        replicas=doc.odd("replicas", 3),
        storage=doc.quantity("storage", "50Gi"),
        size=doc.size("mongod", "1", "4Gi"),
    )


def parse_search(se: ConfigSection) -> SearchConfig:
    return SearchConfig(
        master_nodes=se.odd("masterNodes", 3),
        data_nodes=se.integer("dataNodes", 0, minimum=0),
        data_storage=se.quantity("dataStorage", "200Gi"),
        master_size=se.size("master", "1", "4Gi"),
        data_size=se.size("data", "2", "8Gi"),
    )
