"""Streaming: Kafka with Strimzi in KRaft mode (no ZooKeeper).

Controllers and brokers are separate KafkaNodePools so each scales on its own. Clients
connect to one internal TLS listener (certificate from the platform CA) and authenticate
with SCRAM-SHA-512; each workload is a KafkaUser whose ACLs name exactly the topics and
consumer groups it uses. Passwords are generated here, so the same Secret can be handed to
the consuming namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from . import versions
from .config import PlatformConfig, Size
from .credentials import generated_password, kubernetes_secret
from .namespaces import ConcernNamespace
from .operator_release import operator_release
from .pod_security import resources
from .tls import Tls, certificate

CLUSTER = "fraudwatch"
TLS_PORT = 9093
RAW_TOPICS = ("transactions", "logins", "api-calls")
DEAD_LETTER_TOPIC = "transactions-dlq"
SCORED_TOPIC = "scored-events"


@dataclass(frozen=True)
class KafkaAccess:
    """What a KafkaUser may do: topics it reads, topics it writes, consumer-group prefix."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    group_prefix: str | None


KAFKA_USERS: dict[str, KafkaAccess] = {
    "fraudwatch-scorer": KafkaAccess(
        RAW_TOPICS, (SCORED_TOPIC, DEAD_LETTER_TOPIC), "fraudwatch-stream"
    ),
    "fraudwatch-generator": KafkaAccess((), RAW_TOPICS, None),
    "fraudwatch-intervention": KafkaAccess((SCORED_TOPIC,), (), "fraudwatch-intervention"),
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
    if access.group_prefix:
        acls.append(
            {
                "resource": {"type": "group", "name": access.group_prefix, "patternType": "prefix"},
                "operations": ["Read"],
            }
        )
    return acls


class Streaming(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        config: PlatformConfig,
        namespace: ConcernNamespace,
        tls: Tls,
        storage_class: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("fraudwatch:platform:Streaming", name, None, opts)
        ns = namespace.name
        sc = config.streaming
        ha = config.high_availability
        self.release = operator_release(
            "strimzi",
            versions.STRIMZI,
            namespace,
            {
                "resources": resources("200m", "512Mi", "1"),
                "watchAnyNamespace": False,
                "podSecurityContext": {"runAsNonRoot": True},
                "securityContext": {
                    "runAsNonRoot": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": True,
                },
            },
            parent=self,
        )
        after = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        pod_template = {
            "pod": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                }
            },
            "kafkaContainer": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                }
            },
        }
        self.node_pools = {}
        for pool, role, replicas, size, disk in (
            ("controllers", "controller", sc.controllers, sc.controller_size, "20Gi"),
            ("brokers", "broker", sc.brokers, sc.broker_size, sc.broker_storage),
        ):
            heap = _heap(size)
            self.node_pools[pool] = k8s.apiextensions.CustomResource(
                f"kafka-pool-{pool}",
                api_version="kafka.strimzi.io/v1beta2",
                kind="KafkaNodePool",
                metadata={
                    "name": pool,
                    "namespace": ns,
                    "labels": {"strimzi.io/cluster": CLUSTER},
                },
                spec={
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
                opts=after,
            )
        bootstrap = f"{CLUSTER}-kafka-bootstrap.{ns}.svc"
        listener_tls = certificate(
            "fraudwatch-kafka-tls",
            ns,
            [bootstrap, f"*.{CLUSTER}-kafka-brokers.{ns}.svc", f"{CLUSTER}-kafka-bootstrap"],
            self,
            tls,
        )
        self.kafka = k8s.apiextensions.CustomResource(
            "kafka",
            api_version="kafka.strimzi.io/v1beta2",
            kind="Kafka",
            metadata={
                "name": CLUSTER,
                "namespace": ns,
                "annotations": {
                    "strimzi.io/kraft": "enabled",
                    "strimzi.io/node-pools": "enabled",
                },
            },
            spec={
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
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*self.node_pools.values(), listener_tls]
            ),
        )
        after_kafka = pulumi.ResourceOptions(parent=self, depends_on=[self.kafka])
        for topic, topic_config in sc.topics.items():
            k8s.apiextensions.CustomResource(
                f"topic-{topic}",
                api_version="kafka.strimzi.io/v1beta2",
                kind="KafkaTopic",
                metadata={
                    "name": topic,
                    "namespace": ns,
                    "labels": {"strimzi.io/cluster": CLUSTER},
                },
                spec={
                    "partitions": topic_config.partitions,
                    "replicas": sc.replication_factor,
                    "config": {
                        "retention.ms": topic_config.retention_hours * 3600 * 1000,
                        "min.insync.replicas": sc.min_insync_replicas,
                        "cleanup.policy": "delete",
                        "compression.type": "zstd",
                    },
                },
                opts=after_kafka,
            )
        self.passwords: dict[str, pulumi.Output[str]] = {}
        for user, access in KAFKA_USERS.items():
            password = generated_password(f"kafka-{user}", self)
            self.passwords[user] = password
            secret = kubernetes_secret(
                f"{user}-password",
                ns,
                {"password": password},
                parent=self,
                depends_on=[namespace.namespace],
            )
            k8s.apiextensions.CustomResource(
                f"kafka-user-{user}",
                api_version="kafka.strimzi.io/v1beta2",
                kind="KafkaUser",
                metadata={"name": user, "namespace": ns, "labels": {"strimzi.io/cluster": CLUSTER}},
                spec={
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
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.kafka, secret]),
            )
        self.bootstrap_servers = f"{bootstrap}:{TLS_PORT}"
        self.register_outputs({"bootstrapServers": self.bootstrap_servers})
