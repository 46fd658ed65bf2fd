"""Documents: a MongoDB replica set through the Percona Server for MongoDB operator.

System users (backup, cluster admin, monitor, ...) and the application user `fraudwatch`
get generated passwords. TLS is required on every connection, with certificates from the
platform CA (the operator asks cert-manager for them). Backups go to the Ceph S3 bucket
with Percona Backup for MongoDB.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from . import versions
from .config import PlatformConfig
from .credentials import generated_password, kubernetes_secret
from .namespaces import ConcernNamespace
from .operator_release import operator_release
from .pod_security import chart_container_context, resources, security_context
from .storage import BUCKET, Storage
from .tls import CA_ISSUER, Tls

CLUSTER = "fraudwatch-mongo"
REPLSET = "rs0"
DATABASE = "fraudwatch"
APP_USER = "fraudwatch"
# The UID of Percona's mongod image.
MONGOD_UID = 1001
SYSTEM_USERS = ("BACKUP", "DATABASE_ADMIN", "CLUSTER_ADMIN", "CLUSTER_MONITOR", "USER_ADMIN")


class Documents(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        config: PlatformConfig,
        namespace: ConcernNamespace,
        tls: Tls,
        storage: Storage,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("fraudwatch:platform:Documents", name, None, opts)
        ns = namespace.name
        dc = config.documents
        ha = config.high_availability
        self.release = operator_release(
            "psmdb-operator",
            versions.PERCONA_MONGODB_OPERATOR,
            namespace,
            {
                "resources": resources("100m", "256Mi", "500m"),
                "watchNamespace": ns,
                "containerSecurityContext": chart_container_context(),
            },
            parent=self,
            source=config.charts,
        )
        system_values: dict[str, pulumi.Input[str]] = {}
        for role in SYSTEM_USERS:
            system_values[f"MONGODB_{role}_USER"] = role.lower().replace("_", "-")
            system_values[f"MONGODB_{role}_PASSWORD"] = generated_password(f"mongo-{role.lower()}")
        system_secret = kubernetes_secret(
            f"{CLUSTER}-system-users",
            ns,
            system_values,
            parent=self,
            depends_on=[namespace.namespace],
        )
        self.app_password = generated_password("mongo-app")
        app_secret = kubernetes_secret(
            f"{CLUSTER}-app-user",
            ns,
            {"password": self.app_password},
            parent=self,
            depends_on=[namespace.namespace],
        )
        s3_secret = storage.grant_s3(namespace)
        replset: dict[str, object] = {
            "name": REPLSET,
            "size": dc.replicas,
            "resources": dc.size.resources(),
            "volumeSpec": {
                "persistentVolumeClaim": {
                    "storageClassName": storage.block_storage_class,
                    "resources": {"requests": {"storage": dc.storage}},
                }
            },
            "podSecurityContext": security_context(MONGOD_UID, fs_group=MONGOD_UID),
            "containerSecurityContext": chart_container_context(MONGOD_UID),
        }
        if ha:
            replset["podDisruptionBudget"] = {"maxUnavailable": 1}
            replset["affinity"] = {"antiAffinityTopologyKey": "kubernetes.io/hostname"}
        else:
            replset["affinity"] = {"antiAffinityTopologyKey": "none"}
        self.cluster = k8s.apiextensions.CustomResource(
            "mongodb",
            api_version="psmdb.percona.com/v1",
            kind="PerconaServerMongoDB",
            metadata={"name": CLUSTER, "namespace": ns},
            spec={
                "crVersion": versions.PERCONA_MONGODB_CR_VERSION,
                "image": versions.MONGODB_IMAGE,
                # A replica set below 3 members is refused unless explicitly allowed (dev only).
                "unsafeFlags": {"replsetSize": dc.replicas < 3},
                "secrets": {"users": f"{CLUSTER}-system-users"},
                "tls": {
                    "mode": "requireTLS",
                    "issuerConf": {
                        "name": CA_ISSUER,
                        "kind": "ClusterIssuer",
                        "group": "cert-manager.io",
                    },
                },
                "replsets": [replset],
                "sharding": {"enabled": False},
                "users": [
                    {
                        "name": APP_USER,
                        "db": "admin",
                        "passwordSecretRef": {"name": f"{CLUSTER}-app-user", "key": "password"},
                        "roles": [{"name": "readWrite", "db": DATABASE}],
                    }
                ],
                "backup": {
                    "enabled": True,
                    "image": versions.PERCONA_BACKUP_IMAGE,
                    "resources": resources("100m", "256Mi", "500m"),
                    "storages": {
                        "ceph": {
                            "type": "s3",
                            "s3": {
                                "bucket": BUCKET,
                                "prefix": "backups/mongodb",
                                "region": "us-east-1",
                                "endpointUrl": storage.s3_endpoint,
                                "credentialsSecret": s3_secret,
                            },
                        }
                    },
                    "pitr": {"enabled": ha},
                    "tasks": [
                        {
                            "name": "daily",
                            "enabled": True,
                            "schedule": "0 1 * * *",
                            "keep": 14 if ha else 3,
                            "storageName": "ceph",
                            "type": "logical",
                        }
                    ],
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.release, system_secret, app_secret, tls.issuer]
            ),
        )
        host = f"{CLUSTER}-{REPLSET}.{ns}.svc"
        self.uri = pulumi.Output.secret(
            pulumi.Output.concat(
                f"mongodb://{APP_USER}:",
                self.app_password,
                f"@{host}:27017/{DATABASE}?replicaSet={REPLSET}&tls=true&authSource=admin",
            )
        )
        self.register_outputs({"host": host})
