"""The flows between concerns that the architecture needs, and nothing else.

Every namespace starts with default-deny (see namespaces.py); each Flow below becomes one
egress policy in the source namespace and one ingress policy in the target namespace.
Endpoints outside the platform are `api-server`, `nodes` and `tableau` (CIDRs from config),
`ingress` and `prometheus` (namespaces from config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .config import NetworkConfig
from .namespaces import CONCERNS, ConcernNamespace

API_SERVER_PORTS = ("443", "6443")


@dataclass(frozen=True)
class Flow:
    source: str
    target: str
    ports: tuple[str, ...]  # "9093" or a range "6800-7300"
    why: str


FLOWS: tuple[Flow, ...] = (
    # Operators and controllers talk to the Kubernetes API.
    *(
        Flow(c, "api-server", API_SERVER_PORTS, "operator/controller watches its resources")
        for c in (
            "tls",
            "storage",
            "streaming",
            "documents",
            "compute",
            "orchestration",
            "search",
            "visualisation",
        )
    ),
    # Admission webhooks the API server calls.
    Flow("api-server", "tls", ("10250",), "cert-manager webhook"),
    Flow("api-server", "search", ("9443",), "ECK validating webhook"),
    Flow("api-server", "compute", ("9443",), "Spark operator mutating webhook"),
    # Ceph CSI node plugins run on the host network and mount volumes from the mons and OSDs.
    Flow("nodes", "storage", ("3300", "6789", "6800-7300"), "Ceph CSI on the nodes"),
    # The workloads: intervention service, streaming scorer, generator.
    Flow("workloads", "streaming", ("9093",), "produce/consume events over TLS + SCRAM"),
    Flow("workloads", "documents", ("27017",), "intervention state in MongoDB"),
    Flow("workloads", "search", ("9200",), "streaming scorer writes scored events"),
    Flow("workloads", "storage", ("443",), "raw data, checkpoints and models on Ceph S3"),
    # Batch scoring on Spark.
    Flow("compute", "storage", ("443",), "read raw data, write scored data"),
    Flow("compute", "search", ("9200",), "publish ranked anomalies"),
    Flow("compute", "documents", ("27017",), "publish flagged users"),
    # Backups to Ceph S3 (Percona Backup for MongoDB).
    Flow("documents", "storage", ("443",), "MongoDB backups and point-in-time oplog"),
    # Airflow: task logs and DAG data on S3 (tasks start pods through the API server).
    Flow("orchestration", "storage", ("443",), "task logs and DAG inputs"),
    # Grafana.
    Flow("visualisation", "search", ("9200",), "Elasticsearch datasource"),
    Flow("visualisation", "prometheus", ("9090",), "Prometheus datasource"),
    Flow("visualisation", "workloads", ("8000",), "alert webhook to the intervention service"),
    Flow("ingress", "visualisation", ("3000",), "analysts open Grafana"),
    Flow("ingress", "workloads", ("8000",), "analysts open the admin page / REST API"),
    Flow("prometheus", "workloads", ("8000",), "scrape /metrics"),
    # Tableau publishing.
    Flow("bi", "storage", ("443",), "read scored data for the .hyper extract"),
    Flow("bi", "tableau", ("443",), "publish to Tableau Server"),
)

EXTERNAL_CIDR_ENDPOINTS = ("api-server", "nodes", "tableau")
EXTERNAL_NAMESPACE_ENDPOINTS = ("ingress", "prometheus")


def _ports(ports: tuple[str, ...]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for port in ports:
        if "-" in port:
            start, end = port.split("-")
            result.append({"protocol": "TCP", "port": int(start), "endPort": int(end)})
        else:
            result.append({"protocol": "TCP", "port": int(port)})
    return result


def _peers(endpoint: str, network: NetworkConfig) -> list[dict[str, Any]]:
    if endpoint == "api-server":
        cidrs = network.api_server_cidrs
    elif endpoint == "nodes":
        cidrs = network.node_cidrs
    elif endpoint == "tableau":
        cidrs = network.tableau_egress_cidrs
    else:
        namespace = {
            "ingress": network.ingress_namespace,
            "prometheus": network.prometheus_namespace,
        }.get(endpoint) or CONCERNS[endpoint].namespace
        return [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}]
    return [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]


class NetworkFlows(pulumi.ComponentResource):
    """One ingress and one egress NetworkPolicy per Flow, on top of default-deny."""

    def __init__(
        self,
        name: str,
        namespaces: dict[str, ConcernNamespace],
        network: NetworkConfig,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("fraudwatch:platform:NetworkFlows", name, None, opts)
        for flow in FLOWS:
            ports = _ports(flow.ports)
            # The source's egress to the target, then the target's ingress from the source.
            for direction, here, there, peer_key in (
                ("Egress", flow.source, flow.target, "to"),
                ("Ingress", flow.target, flow.source, "from"),
            ):
                if here in namespaces:
                    self._policy(
                        namespaces[here],
                        f"allow-{peer_key}-{there}-{flow.ports[0]}",
                        {
                            "policyTypes": [direction],
                            direction.lower(): [{peer_key: _peers(there, network), "ports": ports}],
                        },
                        flow.why,
                    )
        self.register_outputs({})

    def _policy(self, ns: ConcernNamespace, name: str, rules: dict[str, Any], why: str) -> None:
        k8s.networking.v1.NetworkPolicy(
            f"{ns.name}-{name}",
            metadata={
                "name": name,
                "namespace": ns.name,
                "annotations": {"fraudwatch.io/why": why},
            },
            spec={"podSelector": {}, **rules},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns.namespace]),
        )
