"""Storage: Ceph with Rook — block volumes for every stateful server and an S3 endpoint
(Ceph RGW) for raw data, scored data, checkpoints and model artefacts. Encrypted on the wire
(msgr2 secure mode between Ceph daemons and clients, TLS at the gateway) and, with
`storage.encryptDevices`, at rest (dm-crypt under every OSD).

The S3 user's keys are derived here (credentials.py) and given to Rook through its
"reference secret" (Rook then creates the RGW user with exactly those keys), so the same
keys can be handed to each consuming namespace as a `fraudwatch-s3` Secret.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from . import versions
from .component import Component, Operator, Options, Placement
from .credentials import generated_key_id, generated_password, kubernetes_secret
from .namespaces import ConcernNamespace
from .pod_security import resources, security_context
from .tls import Tls, certificate

OBJECT_STORE = "fraudwatch"
S3_USER = "fraudwatch"
BUCKET = "fraudwatch"
BLOCK_STORAGE_CLASS = "fraudwatch-ceph-block"
S3_SECRET = "fraudwatch-s3"
# The UID and GID of Rook's operator image.
ROOK_UID = 2016


def rook_operator() -> Operator:
    """Rook's Ceph operator, without the discovery daemon, CephFS or its own monitoring."""
    values = {
        "resources": resources("100m", "256Mi", "500m"),
        # allowPrivilegeEscalation is not set: the chart's own default applies, as before.
        "containerSecurityContext": security_context(ROOK_UID, gid=ROOK_UID, drop_all=True),
        "enableDiscoveryDaemon": False,
        "csi": {"enableRbdDriver": True, "enableCephfsDriver": False},
        "monitoring": {"enabled": False},
    }
    return Operator("rook-ceph", versions.ROOK_CEPH, values)


class Storage(Component):
    def __init__(self, at: Placement, tls: Tls, opts: Options = None) -> None:
        super().__init__(at, opts, rook_operator())
        sc = at.config.storage
        ha = at.config.high_availability
        osd = sc.size.resources()
        self.cluster = self.custom_resource(
            "ceph-cluster",
            "ceph.rook.io/v1",
            "CephCluster",
            {"name": "fraudwatch"},
            {
                "cephVersion": {"image": versions.CEPH_IMAGE},
                # Rook keeps mon stores on the node: the operator, not this program, mounts it.
                "dataDirHostPath": "/var/lib/rook",
                "mon": {"count": sc.mon_count, "allowMultiplePerNode": sc.mon_count == 1},
                "mgr": {"count": 2 if ha else 1, "allowMultiplePerNode": not ha},
                "dashboard": {"enabled": False},
                "network": {"connections": {"encryption": {"enabled": True}, "requireMsgr2": True}},
                "storage": {
                    "useAllNodes": sc.use_all_nodes,
                    "useAllDevices": False,
                    "deviceFilter": sc.device_filter,
                    # At rest: dm-crypt (LUKS) under each OSD, keys kept by the Ceph monitors.
                    # Rook applies it when it creates an OSD: existing OSDs stay as they are.
                    "config": {"encryptedDevice": "true" if sc.encrypt_devices else "false"},
                },
                "resources": {
                    "osd": osd,
                    "mon": resources("500m", "1Gi"),
                    "mgr": resources("500m", "1Gi"),
                },
                "disruptionManagement": {"managePodBudgets": ha},
            },
            [self.release],
        )
        failure_domain = "host" if ha else "osd"
        pool = self.custom_resource(
            "ceph-block-pool",
            "ceph.rook.io/v1",
            "CephBlockPool",
            {"name": "fraudwatch-block"},
            {"failureDomain": failure_domain, "replicated": {"size": sc.data_replicas}},
            [self.cluster],
        )
        k8s.storage.v1.StorageClass(
            BLOCK_STORAGE_CLASS,
            metadata={"name": BLOCK_STORAGE_CLASS},
            provisioner=f"{at.ns}.rbd.csi.ceph.com",
            parameters={
                "clusterID": at.ns,
                "pool": "fraudwatch-block",
                "imageFormat": "2",
                "imageFeatures": "layering",
                "csi.storage.k8s.io/provisioner-secret-name": "rook-csi-rbd-provisioner",
                "csi.storage.k8s.io/provisioner-secret-namespace": at.ns,
                "csi.storage.k8s.io/controller-expand-secret-name": "rook-csi-rbd-provisioner",
                "csi.storage.k8s.io/controller-expand-secret-namespace": at.ns,
                "csi.storage.k8s.io/node-stage-secret-name": "rook-csi-rbd-node",
                "csi.storage.k8s.io/node-stage-secret-namespace": at.ns,
                "csi.storage.k8s.io/fstype": "ext4",
            },
            reclaim_policy="Retain" if ha else "Delete",
            allow_volume_expansion=True,
            volume_binding_mode="WaitForFirstConsumer",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pool]),
        )
        self.block_storage_class = BLOCK_STORAGE_CLASS

        gateway_service = f"rook-ceph-rgw-{OBJECT_STORE}"
        rgw_tls = certificate(
            "fraudwatch-rgw-tls",
            at.ns,
            [f"{gateway_service}.{at.ns}.svc", f"{gateway_service}.{at.ns}.svc.cluster.local"],
            self,
            tls,
        )
        replicated = {"failureDomain": failure_domain, "replicated": {"size": sc.data_replicas}}
        store = self.custom_resource(
            "ceph-object-store",
            "ceph.rook.io/v1",
            "CephObjectStore",
            {"name": OBJECT_STORE},
            {
                "metadataPool": replicated,
                "dataPool": replicated,
                "preservePoolsOnDelete": True,
                "gateway": {
                    "securePort": 443,
                    "sslCertificateRef": "fraudwatch-rgw-tls",
                    "instances": sc.object_gateway_instances,
                    "resources": resources("500m", "1Gi", "2"),
                },
            },
            [self.cluster, rgw_tls],
        )
        self.s3_endpoint = f"https://{gateway_service}.{at.ns}.svc:443"

        # Both halves are secrets: an access key is half a credential.
        self._access_key = generated_key_id("s3-access-key", length=20)
        self._secret_key = generated_password("s3-secret-key", length=40)
        reference = kubernetes_secret(
            f"rook-ceph-object-user-{OBJECT_STORE}-{S3_USER}",
            at.ns,
            {
                "AccessKey": self._access_key,
                "SecretKey": self._secret_key,
                "Endpoint": self.s3_endpoint,
            },
            parent=self,
            secret_type="kubernetes.io/rook",
            annotations={"administration.rook.io/source-of-truth": "secret"},
            depends_on=[at.namespace.namespace],
        )
        user = self.custom_resource(
            "ceph-object-user",
            "ceph.rook.io/v1",
            "CephObjectStoreUser",
            {"name": S3_USER},
            {"store": OBJECT_STORE, "displayName": "fraudwatch workloads"},
            [store, reference],
        )
        bucket_class = k8s.storage.v1.StorageClass(
            "fraudwatch-ceph-bucket",
            metadata={"name": "fraudwatch-ceph-bucket"},
            provisioner=f"{at.ns}.ceph.rook.io/bucket",
            parameters={"objectStoreName": OBJECT_STORE, "objectStoreNamespace": at.ns},
            reclaim_policy="Retain",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[store]),
        )
        self.custom_resource(
            "bucket-fraudwatch",
            "objectbucket.io/v1alpha1",
            "ObjectBucketClaim",
            {"name": BUCKET},
            {
                "bucketName": BUCKET,
                "storageClassName": "fraudwatch-ceph-bucket",
                # Owned by the shared user so its generated keys can read and write it.
                "additionalConfig": {"bucketOwner": S3_USER},
            },
            [user, bucket_class],
        )
        self.register_outputs({"s3Endpoint": self.s3_endpoint, "bucket": BUCKET})

    def grant_s3(self, namespace: ConcernNamespace) -> str:
        """Hand the S3 credentials to a consuming namespace; returns the Secret name."""
        credentials_file = pulumi.Output.all(self._access_key, self._secret_key).apply(
            lambda keys: (
                f"[default]\naws_access_key_id = {keys[0]}\naws_secret_access_key = {keys[1]}\n"
            )
        )
        kubernetes_secret(
            S3_SECRET,
            namespace.name,
            {
                "AWS_ACCESS_KEY_ID": self._access_key,
                "AWS_SECRET_ACCESS_KEY": self._secret_key,
                "AWS_ENDPOINT_URL": self.s3_endpoint,
                "credentials": credentials_file,
            },
            parent=self,
            depends_on=[namespace.namespace],
        )
        return S3_SECRET
