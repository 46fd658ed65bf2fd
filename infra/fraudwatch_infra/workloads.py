"""Workloads: the project's own Helm chart (charts/fraudwatch) — intervention service,
streaming scorer, generator — with values derived from the stack configuration and the
credentials the other components generated.

The chart's batch scorer is disabled here: on Kubernetes the batch runs as the compute
component's ScheduledSparkApplication. The chart's dashboards ConfigMaps are disabled too:
the grafana-operator loads the same JSON (visualisation.py).
"""

from __future__ import annotations

from typing import Any

import pulumi

from .component import Component, Options, Placement
from .config import PlatformConfig
from .credentials import generated_password, kubernetes_secret
from .operator_release import helm_release
from .pod_security import container_security_context, pod_security_context, resources
from .search import WRITER as ES_WRITER
from .storage import BUCKET, Storage
from .streaming import SCORER_USER, TOPIC_PREFIX

# Relative to infra/, where `pulumi up` runs: the chart is versioned with this program.
CHART_PATH = "../charts/fraudwatch"
RELEASE = "fraudwatch"
INTERVENTION_SECRET = "fraudwatch-intervention"
STREAMING_SECRET = "fraudwatch-streaming"
# File names the product reads from $FRAUDWATCH_SECRETS_DIR (the streaming Secret's keys).
KAFKA_PASSWORD_KEY = "kafka-password"
ES_PASSWORD_KEY = "es-password"
# Key of the intervention Secret the chart reads as FRAUDWATCH_STATE_URL.
STATE_URL_KEY = "state-url"


def chart_values(
    config: PlatformConfig,
    s3_endpoint: str,
    s3_secret: str,
    bootstrap_servers: str,
    search_url: str,
    visualisation_namespace: str,
    trust_secret: str,
    storage_class: str,
) -> dict[str, Any]:
    """Values for charts/fraudwatch, all derived from the stack configuration. Every value
    becomes an environment variable `fraudwatch` reads (the chart's README: values.yaml)."""
    wc = config.workloads
    ha = config.high_availability
    partitions = config.streaming.topics["transactions"].partitions
    network = config.network
    return {
        "image": {
            "repository": config.workloads_image.repository,
            "tag": config.workloads_image.tag,
            "pullPolicy": "IfNotPresent",
        },
        "podSecurityContext": pod_security_context(),
        "containerSecurityContext": container_security_context(),
        "s3": {
            "endpoint": s3_endpoint,
            "existingSecret": s3_secret,
            "credentialsKey": "credentials",
            # Storage.grant_s3 writes the keys under these names too.
            "accessKeyIdKey": "AWS_ACCESS_KEY_ID",
            "secretAccessKeyKey": "AWS_SECRET_ACCESS_KEY",
        },
        "networkPolicy": {"enabled": True},
        "intervention": {
            "enabled": True,
            "stateBackend": "mongodb",
            "replicas": wc.intervention_replicas,
            "resources": resources("100m", "256Mi", "1"),
            "existingSecret": INTERVENTION_SECRET,
            "service": {"type": wc.service_type},
            "autoscaling": {
                "enabled": ha,
                "minReplicas": wc.intervention_replicas,
                "maxReplicas": wc.intervention_replicas * 3,
            },
            "podDisruptionBudget": {"enabled": ha},
            # POST /v1/decisions on its own pods (same image, command, settings and Secret;
            # the chart's Ingress routes /v1/decisions there). Each pod keeps its own per-user
            # history: docs/operations/decision-route.md.
            "decisions": {
                "enabled": True,
                "replicas": wc.decision_replicas,
                "resources": resources("500m", "1Gi", "1"),
                "autoscaling": {
                    "enabled": ha,
                    "minReplicas": wc.decision_replicas,
                    "maxReplicas": wc.decision_max_replicas,
                },
                # minAvailable 1 needs >= 2 replicas (config.py refuses fewer with HA).
                "podDisruptionBudget": {"enabled": ha, "minAvailable": 1},
                "allowedClients": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}
                    for name in wc.decision_client_namespaces
                ],
                # The registry the decisions score with, as the streaming scorer's.
                "models": {"existingClaim": wc.model_registry_claim or ""},
            },
            "allowedClients": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}
                for name in (
                    network.ingress_namespace,
                    network.prometheus_namespace,
                    visualisation_namespace,
                )
            ],
        },
        "streaming": {
            "enabled": True,
            "kafka": {
                "bootstrapServers": bootstrap_servers,
                "topicPrefix": TOPIC_PREFIX,
                "partitions": partitions,
                # Strimzi's only listener: TLS with SCRAM-SHA-512 (streaming.py).
                "securityProtocol": "SASL_SSL",
                "saslMechanism": "SCRAM-SHA-512",
                "username": SCORER_USER,
            },
            "elasticsearchUrl": search_url,
            "elasticsearchUsername": ES_WRITER,
            "checkpointLocation": f"s3://{BUCKET}/checkpoints/stream",
            # Files kafka-password and es-password (Workloads below).
            "existingSecret": STREAMING_SECRET,
            # The platform CA, for the brokers' and Elasticsearch's certificates.
            "tls": {"caSecret": trust_secret, "caKey": "ca.crt"},
            "interventionToken": {
                "secretName": wc.intervention_token_secret or "",
                "key": "intervention-token",
            },
            "models": {"existingClaim": wc.model_registry_claim or "", "fixedVersionDir": ""},
            "persistence": {
                "enabled": True,
                "existingClaim": "",
                "size": "10Gi",
                "storageClassName": storage_class,
            },
        },
        "batch": {"enabled": False},
        "generator": {
            "enabled": False,
            "output": f"s3://{BUCKET}/raw",
            "resources": resources("500m", "2Gi", "2"),
        },
        "dashboards": {"enabled": False},
    }


def intervention_url(namespace: str) -> str:
    """In-cluster URL of the chart's intervention service (release name = chart name)."""
    return f"http://{RELEASE}-intervention.{namespace}.svc:8000"


class Workloads(Component):
    def __init__(
        self,
        at: Placement,
        storage: Storage,
        values: dict[str, Any],
        mongo_uri: pulumi.Output[str],
        es_writer_password: pulumi.Output[str],
        kafka_scorer_password: pulumi.Output[str],
        api_token_hashes: pulumi.Output[str] | None,
        depends_on: list[pulumi.Resource],
        opts: Options = None,
    ) -> None:
        super().__init__(at, opts)
        self.hook_hmac_secret = generated_password("intervention-hook-hmac", length=48)
        intervention_values: dict[str, pulumi.Input[str]] = {
            "hook-hmac-secret": self.hook_hmac_secret,
            STATE_URL_KEY: mongo_uri,
        }
        if api_token_hashes is not None:
            intervention_values["api-token-hashes"] = api_token_hashes
        secrets = [
            kubernetes_secret(
                INTERVENTION_SECRET,
                at.ns,
                intervention_values,
                self,
                depends_on=[at.namespace.namespace],
            ),
            kubernetes_secret(
                STREAMING_SECRET,
                at.ns,
                {
                    ES_PASSWORD_KEY: es_writer_password,
                    KAFKA_PASSWORD_KEY: kafka_scorer_password,
                },
                self,
                depends_on=[at.namespace.namespace],
            ),
        ]
        self.release = helm_release(
            RELEASE,
            CHART_PATH,
            at.ns,
            values,
            pulumi.ResourceOptions(
                parent=self, depends_on=[at.namespace.namespace, *secrets, *depends_on]
            ),
        )
        self.intervention_url = intervention_url(at.ns)
        self.register_outputs({})
