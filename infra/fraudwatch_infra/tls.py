"""TLS between components: cert-manager, a platform CA and certificates issued from it.

The root CA is self-signed by cert-manager inside the cluster (its key never leaves it).
Every server certificate is issued by the `fraudwatch-ca` ClusterIssuer, and each client
namespace gets a small certificate of its own whose Secret carries `ca.crt`, so clients
trust the servers without copying any CA Secret across namespaces.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from . import versions
from .component import Component, Operator, Options, Placement
from .pod_security import resources, security_context

CA_ISSUER = "fraudwatch-ca"


def cert_manager(namespace: str) -> Operator:
    """cert-manager with its CRDs, electing its leader in its own namespace."""
    small = resources("50m", "128Mi", "200m")
    values = {
        "crds": {"enabled": True},
        "global": {"leaderElection": {"namespace": namespace}},
        "resources": small,
        "webhook": {"resources": small},
        "cainjector": {"resources": small},
        "startupapicheck": {"resources": small},
        "securityContext": security_context(seccomp=True),
    }
    return Operator("cert-manager", versions.CERT_MANAGER, values)


class Tls(Component):
    """cert-manager and the platform CA issuer."""

    def __init__(self, at: Placement, opts: Options = None) -> None:
        super().__init__(at, opts, cert_manager(at.ns))
        after = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        selfsigned = k8s.apiextensions.CustomResource(
            "fraudwatch-selfsigned",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={"name": "fraudwatch-selfsigned"},
            spec={"selfSigned": {}},
            opts=after,
        )
        root = self.custom_resource(
            "fraudwatch-root-ca",
            "cert-manager.io/v1",
            "Certificate",
            {"name": "fraudwatch-root-ca"},
            {
                "isCA": True,
                "commonName": "fraudwatch platform CA",
                "secretName": "fraudwatch-root-ca",
                "duration": "87600h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Never"},
                "issuerRef": {"name": "fraudwatch-selfsigned", "kind": "ClusterIssuer"},
            },
            [selfsigned],
        )
        self.issuer = k8s.apiextensions.CustomResource(
            CA_ISSUER,
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={"name": CA_ISSUER},
            spec={"ca": {"secretName": "fraudwatch-root-ca"}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[root]),
        )
        self.register_outputs({"issuer": CA_ISSUER})


def certificate(
    name: str,
    namespace: str,
    dns_names: list[str],
    parent: pulumi.Resource,
    tls: Tls,
    usages: tuple[str, ...] = ("server auth", "client auth"),
) -> k8s.apiextensions.CustomResource:
    """A cert-manager Certificate from the platform CA; its Secret (same name) holds
    tls.crt, tls.key and ca.crt."""
    return k8s.apiextensions.CustomResource(
        f"{namespace}-{name}",
        api_version="cert-manager.io/v1",
        kind="Certificate",
        metadata={"name": name, "namespace": namespace},
        spec={
            "secretName": name,
            "commonName": dns_names[0][:64],
            "dnsNames": dns_names,
            "duration": "2160h",
            "renewBefore": "360h",
            "usages": ["digital signature", "key encipherment", *usages],
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "issuerRef": {"name": CA_ISSUER, "kind": "ClusterIssuer"},
        },
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[tls.issuer]),
    )


def trust_bundle(namespace: str, parent: pulumi.Resource, tls: Tls) -> str:
    """A client certificate in `namespace` whose Secret carries the platform CA as ca.crt.
    Returns the Secret name."""
    name = "fraudwatch-client-tls"
    certificate(name, namespace, [f"client.{namespace}.svc"], parent, tls, ("client auth",))
    return name
