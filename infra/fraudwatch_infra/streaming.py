"""Streaming: Kafka with Strimzi in KRaft mode (no ZooKeeper).

Controllers and brokers are separate KafkaNodePools so each scales on its own. Clients
connect to one internal TLS listener (certificate from the platform CA) and authenticate
with SCRAM-SHA-512 (the product's FRAUDWATCH_KAFKA_SECURITY_PROTOCOL=SASL_SSL); each workload
is a KafkaUser whose ACLs name exactly the topics and consumer groups it uses. The topics are
the product's: `fraudwatch.transactions`, `.logins`, `.api-calls` and `.dead-letter`. Passwords are generated here, so the same Secret can be handed to
the consuming namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from . import versions
from .component import Component, Operator, Options, Placement
from .config_data_services import DEAD_LETTER, EVENT_TOPICS, TOPIC_PREFIX
from .config_values import Size
from .credentials import generated_password, kubernetes_secret
from .pod_security import chart_container_context, resources, security_context
from .tls import Tls, certificate

STRIMZI_API = "kafka.strimzi.io/v1beta2"
CLUSTER = "fraudwatch"
TLS_PORT = 9093
# The topics are the product's (workloads/fraudwatch/streaming/schemas.py: TOPICS, DEAD_LETTER;
# contract/events.py: DEFAULT_TOPIC_PREFIX); tests/infra/pulumi/test_pulumi_product_contract.py
# compares them.
RAW_TOPICS = tuple(f"{TOPIC_PREFIX}{name}" for name in EVENT_TOPICS)
DEAD_LETTER_TOPIC = f"{TOPIC_PREFIX}{DEAD_LETTER}"
# Spark's Kafka source names its consumer groups "spark-kafka-source-<uuid>..." (its default
# groupIdPrefix; `fraudwatch stream` sets no other).
SPARK_GROUP_PREFIX = "spark-kafka-source"
SCORER_USER = "fraudwatch-scorer"
GENERATOR_USER = "fraudwatch-generator"


@dataclass(frozen=True)
class KafkaAccess:
    """What a KafkaUser may do: topics it reads, topics it writes, topics it only looks up,
    consumer-group prefix."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    group_prefix: str | None
    describes: tuple[str, ...] = ()


KAFKA_USERS: dict[str, KafkaAccess] = {
    # `fraudwatch stream`: consumes the three event topics, sends what it cannot score to the
    # dead-letter topic (and looks all four up before starting: ensure_topics).
    SCORER_USER: KafkaAccess(RAW_TOPICS, (DEAD_LETTER_TOPIC,), SPARK_GROUP_PREFIX),
    # `fraudwatch generate --sink kafka` / `fraudwatch produce`: writes the three event topics;
    # it looks up the dead-letter topic too (ensure_topics), never reads.
    GENERATOR_USER: KafkaAccess((), RAW_TOPICS, None, (DEAD_LETTER_TOPIC,)),
}


def _heap(size: Size) -> str:
    """Half the container memory for the JVM heap (the rest is page cache and off-heap)."""
    units = {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
    for suffix, factor in units.items():
        if size.memory.endswith(suffix):
            return f"{int(float(size.memory[: -len(suffix)]) * factor) // 2}m"
    raise ValueError(f"memory {size.memory!r} must use Mi, Gi or Ti for a JVM component")


def _acls(access: KafkaAccess) -> list[dict[str, object]]:
    acls: list[dict[str, object]] = []
    for topic in access.reads:
        acls.append(
            {
                "resource": {"type": "topic", "name": topic, "patternType": "literal"},
                "operations": ["Read", "Describe"],
            }
        )
    for topic in access.writes:
        acls.append(
            {
                "resource": {"type": "topic", "name": topic, "patternType": "literal"},
                "operations": ["Write", "Describe"],
            }
        )
    for topic in access.describes:
        acls.append(
            {
                "resource": {"type": "topic", "name": topic, "patternType": "literal"},
                "operations": ["Describe"],
            }
        )
    if access.group_prefix:
        acls.append(
            {
                "resource": {"type": "group", "name": access.group_prefix, "patternType": "prefix"},
                "operations": ["Read"],
            }
        )
    return acls


def _in_cluster(name: str) -> dict[str, Any]:
    """The metadata of a Strimzi object of the fraudwatch Kafka cluster (a node pool, a topic,
    a user)."""
    return {"name": name, "labels": {"strimzi.io/cluster": CLUSTER}}


def strimzi_operator() -> Operator:
    """Strimzi's Kafka operator, watching its own namespace only."""
    values = {
        "resources": resources("200m", "512Mi", "1"),
        "watchAnyNamespace": False,
        "podSecurityContext": security_context(),
        "securityContext": chart_container_context(read_only_root=True),
    }
    return Operator("strimzi", versions.STRIMZI, values)


class Streaming(Component):
    def __init__(self, at: Placement, tls: Tls, storage_class: str, opts: Options = None) -> None:
        super().__init__(at, opts, strimzi_operator())
        sc = at.config.streaming
        ha = at.config.high_availability
        pod_template = {
            "pod": {"securityContext": security_context(seccomp=True)},
            "kafkaContainer": {"securityContext": chart_container_context()},
        }
        self.node_pools = {}
        for pool, role, replicas, size, disk in (
            ("controllers", "controller", sc.controllers, sc.controller_size, "20Gi"),
            ("brokers", "broker", sc.brokers, sc.broker_size, sc.broker_storage),
        ):
            heap = _heap(size)
            self.node_pools[pool] = self.custom_resource(
                f"kafka-pool-{pool}",
                STRIMZI_API,
                "KafkaNodePool",
                _in_cluster(pool),
                {
                    "replicas": replicas,
                    "roles": [role],
                    "resources": size.resources(),
                    "jvmOptions": {"-Xms": heap, "-Xmx": heap},
                    "storage": {
                        "type": "jbod",
                        "volumes": [
                            {
                                "id": 0,
                                "type": "persistent-claim",
                                "size": disk,
                                "class": storage_class,
                                "deleteClaim": False,
                                "kraftMetadata": "shared",
                            }
                        ],
                    },
                    "template": pod_template,
                },
                [self.release],
            )
        bootstrap = f"{CLUSTER}-kafka-bootstrap.{at.ns}.svc"
        listener_tls = certificate(
            "fraudwatch-kafka-tls",
            at.ns,
            [bootstrap, f"*.{CLUSTER}-kafka-brokers.{at.ns}.svc", f"{CLUSTER}-kafka-bootstrap"],
            self,
            tls,
        )
        self.kafka = self.custom_resource(
            "kafka",
            STRIMZI_API,
            "Kafka",
            {
                "name": CLUSTER,
                "annotations": {
                    "strimzi.io/kraft": "enabled",
                    "strimzi.io/node-pools": "enabled",
                },
            },
            {
                "kafka": {
                    "version": versions.KAFKA_VERSION,
                    "metadataVersion": versions.KAFKA_METADATA_VERSION,
                    "listeners": [
                        {
                            "name": "tls",
                            "port": TLS_PORT,
                            "type": "internal",
                            "tls": True,
                            "authentication": {"type": "scram-sha-512"},
                            "configuration": {
                                "brokerCertChainAndKey": {
                                    "secretName": "fraudwatch-kafka-tls",
                                    "certificate": "tls.crt",
                                    "key": "tls.key",
                                }
                            },
                        }
                    ],
                    "authorization": {"type": "simple"},
                    "config": {
                        "auto.create.topics.enable": False,
                        "default.replication.factor": sc.replication_factor,
                        "min.insync.replicas": sc.min_insync_replicas,
                        "offsets.topic.replication.factor": sc.replication_factor,
                        "transaction.state.log.replication.factor": sc.replication_factor,
                        "transaction.state.log.min.isr": sc.min_insync_replicas,
                    },
                    "template": {
                        # Strimzi always renders a PDB; in prod it lets one broker drain at a
                        # time, in a one-broker dev cluster draining must not be blocked.
                        "podDisruptionBudget": {"maxUnavailable": 1 if ha else sc.brokers},
                    },
                },
                "entityOperator": {
                    "topicOperator": {"resources": resources("100m", "256Mi", "500m")},
                    "userOperator": {"resources": resources("100m", "256Mi", "500m")},
                },
            },
            [*self.node_pools.values(), listener_tls],
        )
        # The product's topic names: "<prefix><name>" (e.g. fraudwatch.transactions, a valid
        # object name too); the stack configuration keys them by the unprefixed name.
        for name, topic_config in sc.topics.items():
            topic = f"{TOPIC_PREFIX}{name}"
            self.custom_resource(
                f"topic-{topic}",
                STRIMZI_API,
                "KafkaTopic",
                _in_cluster(topic),
                {
                    "partitions": topic_config.partitions,
                    "replicas": sc.replication_factor,
                    "config": {
                        "retention.ms": topic_config.retention_hours * 3600 * 1000,
                        "min.insync.replicas": sc.min_insync_replicas,
                        "cleanup.policy": "delete",
                        "compression.type": "zstd",
                    },
                },
                [self.kafka],
            )
        self.passwords: dict[str, pulumi.Output[str]] = {}
        for user, access in KAFKA_USERS.items():
            password = generated_password(f"kafka-{user}")
            self.passwords[user] = password
            secret = kubernetes_secret(
                f"{user}-password",
                at.ns,
                {"password": password},
                parent=self,
                depends_on=[at.namespace.namespace],
            )
            self.custom_resource(
                f"kafka-user-{user}",
                STRIMZI_API,
                "KafkaUser",
                _in_cluster(user),
                {
                    "authentication": {
                        "type": "scram-sha-512",
                        "password": {
                            "valueFrom": {
                                "secretKeyRef": {"name": f"{user}-password", "key": "password"}
                            }
                        },
                    },
                    "authorization": {"type": "simple", "acls": _acls(access)},
                },
                [self.kafka, secret],
            )
        self.bootstrap_servers = f"{bootstrap}:{TLS_PORT}"
        self.register_outputs({"bootstrapServers": self.bootstrap_servers})
