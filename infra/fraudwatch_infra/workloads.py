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
import pulumi_kubernetes as k8s

from .config import PlatformConfig
from .credentials import generated_password, kubernetes_secret
from .namespaces import ConcernNamespace
from .pod_security import container_security_context, pod_security_context, resources
from .storage import BUCKET, Storage
from .streaming import RAW_TOPICS

# Relative to infra/, where `pulumi up` runs: the chart is versioned with this program.
CHART_PATH = "../charts/fraudwatch"
RELEASE = "fraudwatch"
INTERVENTION_SECRET = "fraudwatch-intervention"
STREAMING_SECRET = "fraudwatch-streaming"


def chart_values(
    config: PlatformConfig,
    s3_endpoint: str,
    s3_secret: str,
    bootstrap_servers: str,
    search_url: str,
    visualisation_namespace: str,
) -> dict[str, Any]:
    """Values for charts/fraudwatch, all derived from the stack configuration."""
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
        "config": {
            "kafka": {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "username": "fraudwatch-scorer",
                "ssl_cafile": "/var/run/fraudwatch-tls/ca.crt",
            },
            "elasticsearch": {
                "ca_certs": "/var/run/fraudwatch-tls/ca.crt",
                "username": "fraudwatch-writer",
            },
        },
        "podSecurityContext": pod_security_context(),
        "containerSecurityContext": container_security_context(),
        "s3": {
            "endpoint": s3_endpoint,
            "existingSecret": s3_secret,
            "credentialsKey": "credentials",
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
                "topics": list(RAW_TOPICS),
                "partitions": partitions,
                "groupIdPrefix": "fraudwatch-stream",
            },
            "elasticsearchUrl": search_url,
            "checkpointLocation": f"s3://{BUCKET}/checkpoints/stream",
            "existingSecret": STREAMING_SECRET,
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


class Workloads(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        config: PlatformConfig,
        namespace: ConcernNamespace,
        storage: Storage,
        values: dict[str, Any],
        mongo_uri: pulumi.Output[str],
        es_writer_password: pulumi.Output[str],
        kafka_scorer_password: pulumi.Output[str],
        api_token_hashes: pulumi.Output[str] | None,
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("fraudwatch:platform:Workloads", name, None, opts)
        ns = namespace.name
        self.hook_hmac_secret = generated_password("intervention-hook-hmac", self, length=48)
        intervention_values: dict[str, pulumi.Input[str]] = {
            "hook-hmac-secret": self.hook_hmac_secret,
            "mongo-url": mongo_uri,
        }
        if api_token_hashes is not None:
            intervention_values["api-token-hashes"] = api_token_hashes
        secrets = [
            kubernetes_secret(
                INTERVENTION_SECRET, ns, intervention_values, self, depends_on=[namespace.namespace]
            ),
            kubernetes_secret(
                STREAMING_SECRET,
                ns,
                {
                    "elasticsearch-password": es_writer_password,
                    "kafka-sasl-password": kafka_scorer_password,
                },
                self,
                depends_on=[namespace.namespace],
            ),
        ]
        self.release = k8s.helm.v3.Release(
            RELEASE,
            name=RELEASE,
            chart=CHART_PATH,
            namespace=ns,
            create_namespace=False,
            atomic=True,
            cleanup_on_fail=True,
            timeout=900,
            values=values,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[namespace.namespace, *secrets, *depends_on]
            ),
        )
        self.intervention_url = intervention_url(ns)
        self.register_outputs({})
