"""A namespace per concern, each born with a default-deny NetworkPolicy.

Pod Security Admission levels: `restricted` where only fraudwatch's own pods run, `baseline`
where a third-party operator runs servers whose charts do not all meet `restricted` yet, and
`privileged` for Ceph only (OSDs and the CSI node plugin need raw devices and host mounts).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class Concern:
    name: str
    namespace: str
    pod_security: str


CONCERNS: dict[str, Concern] = {
    c.name: c
    for c in (
        Concern("tls", "cert-manager", "restricted"),
        Concern("storage", "fraudwatch-storage", "privileged"),
        Concern("streaming", "fraudwatch-streaming", "baseline"),
        Concern("documents", "fraudwatch-documents", "baseline"),
        Concern("compute", "fraudwatch-compute", "baseline"),
        Concern("orchestration", "fraudwatch-orchestration", "baseline"),
        Concern("search", "fraudwatch-search", "baseline"),
        Concern("visualisation", "fraudwatch-visualisation", "baseline"),
        Concern("bi", "fraudwatch-bi", "restricted"),
        Concern("workloads", "fraudwatch-workloads", "restricted"),
    )
}


def namespace_of(concern: str) -> str:
    return CONCERNS[concern].namespace


class ConcernNamespace(pulumi.ComponentResource):
    """The namespace of one concern, its default-deny policy and the two flows every pod
    needs: cluster DNS and its own namespace."""

    def __init__(self, concern: Concern, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fraudwatch:platform:ConcernNamespace", concern.name, None, opts)
        ns = concern.namespace
        self.concern = concern.name
        self.name = ns
        self.namespace = k8s.core.v1.Namespace(
            ns,
            metadata={
                "name": ns,
                "labels": {
                    "app.kubernetes.io/part-of": "fraudwatch",
                    "fraudwatch.io/concern": concern.name,
                    "pod-security.kubernetes.io/enforce": concern.pod_security,
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                },
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        k8s.networking.v1.NetworkPolicy(
            f"{ns}-default-deny",
            metadata={"name": "default-deny", "namespace": ns},
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{ns}-allow-dns-and-same-namespace",
            metadata={"name": "allow-dns-and-same-namespace", "namespace": ns},
            spec={
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}]}],
                "egress": [
                    {"to": [{"podSelector": {}}]},
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                },
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [
                            {"protocol": "UDP", "port": 53},
                            {"protocol": "TCP", "port": 53},
                        ],
                    },
                ],
            },
            opts=child,
        )
        self.register_outputs({"name": ns})
