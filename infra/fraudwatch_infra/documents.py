"""Documents: a MongoDB replica set through the Percona Server for MongoDB operator.

System users (backup, cluster admin, monitor, ...) and the application user `fraudwatch`
get generated passwords. TLS is required on every connection, with certificates from the
platform CA (the operator asks cert-manager for them); data files are encrypted at rest
(`enableEncryption`, key in its own Secret). Backups go to the Ceph S3 bucket
with Percona Backup for MongoDB.
"""

from __future__ import annotations

import pulumi

from . import versions
from .component import Component, Operator, Options, Placement
from .credentials import generated_password, kubernetes_secret
from .pod_security import chart_container_context, resources, security_context
from .storage import BUCKET, Storage
from .tls import CA_ISSUER, Tls

CLUSTER = "fraudwatch-mongo"
REPLSET = "rs0"
DATABASE = "fraudwatch"
APP_USER = "fraudwatch"
# The UID of Percona's mongod image.
MONGOD_UID = 1001
# The operator's default name for the data-at-rest key Secret (kept, so existing clusters keep
# their key).
ENCRYPTION_KEY_SECRET = f"{CLUSTER}-mongodb-encryption-key"
SYSTEM_USERS = ("BACKUP", "DATABASE_ADMIN", "CLUSTER_ADMIN", "CLUSTER_MONITOR", "USER_ADMIN")


def percona_operator(namespace: str) -> Operator:
    """Percona's MongoDB operator, watching the documents namespace only."""
    values = {
        "resources": resources("100m", "256Mi", "500m"),
        "watchNamespace": namespace,
        "containerSecurityContext": chart_container_context(),
    }
    return Operator("psmdb-operator", versions.PERCONA_MONGODB_OPERATOR, values)


class Documents(Component):
    def __init__(self, at: Placement, tls: Tls, storage: Storage, opts: Options = None) -> None:
        super().__init__(at, opts, percona_operator(at.ns))
        dc = at.config.documents
        ha = at.config.high_availability
        system_values: dict[str, pulumi.Input[str]] = {}
        for role in SYSTEM_USERS:
            system_values[f"MONGODB_{role}_USER"] = role.lower().replace("_", "-")
            system_values[f"MONGODB_{role}_PASSWORD"] = generated_password(f"mongo-{role.lower()}")
        system_secret = kubernetes_secret(
            f"{CLUSTER}-system-users",
            at.ns,
            system_values,
            parent=self,
            depends_on=[at.namespace.namespace],
        )
        self.app_password = generated_password("mongo-app")
        app_secret = kubernetes_secret(
            f"{CLUSTER}-app-user",
            at.ns,
            {"password": self.app_password},
            parent=self,
            depends_on=[at.namespace.namespace],
        )
        s3_secret = storage.grant_s3(at.namespace)
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
            # Encryption at rest is the operator's default; stated, so it cannot drift off.
            "configuration": "security:\n  enableEncryption: true\n",
            "podSecurityContext": security_context(MONGOD_UID, fs_group=MONGOD_UID),
            "containerSecurityContext": chart_container_context(MONGOD_UID),
        }
        if ha:
            replset["podDisruptionBudget"] = {"maxUnavailable": 1}
            replset["affinity"] = {"antiAffinityTopologyKey": "kubernetes.io/hostname"}
        else:
            replset["affinity"] = {"antiAffinityTopologyKey": "none"}
        self.cluster = self.custom_resource(
            "mongodb",
            "psmdb.percona.com/v1",
            "PerconaServerMongoDB",
            {"name": CLUSTER},
            {
                "crVersion": versions.PERCONA_MONGODB_CR_VERSION,
                "image": versions.MONGODB_IMAGE,
                # A replica set below 3 members is refused unless explicitly allowed (dev only).
                "unsafeFlags": {"replsetSize": dc.replicas < 3},
                # At rest: WiredTiger encryption (Percona Server for MongoDB) with a key the
                # operator generates into this Secret on first start; back it up with the
                # cluster's other secrets, without it the data files cannot be read.
                "secrets": {
                    "users": f"{CLUSTER}-system-users",
                    "encryptionKey": ENCRYPTION_KEY_SECRET,
                },
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
            [self.release, system_secret, app_secret, tls.issuer],
        )
        host = f"{CLUSTER}-{REPLSET}.{at.ns}.svc"
        self.uri: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.concat(
                f"mongodb://{APP_USER}:",
                self.app_password,
                f"@{host}:27017/{DATABASE}?replicaSet={REPLSET}&tls=true&authSource=admin",
            )
        )
        self.register_outputs({"host": host})
