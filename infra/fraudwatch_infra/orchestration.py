"""Orchestration: Airflow from the official Apache Airflow chart with the
KubernetesExecutor (one pod per task) and a PostgreSQL metadata database.

DAGs come from git-sync when `orchestration.dagsGitRepo` is set, otherwise from the
workloads image (built with the `airflow` extra, DAGs under fraudwatch/pipelines).
The fernet key, API secret key and database password are generated.
"""

from __future__ import annotations

from typing import Any

import pulumi

from . import versions
from .component import Component, Options, Placement
from .credentials import generated_fernet_key, generated_password, kubernetes_secret
from .pod_security import chart_container_context, resources, security_context
from .storage import Storage

AIRFLOW_UID = 50000


class Orchestration(Component):
    def __init__(self, at: Placement, storage: Storage, opts: Options = None) -> None:
        super().__init__(at, opts)
        oc = at.config.orchestration
        db_password = generated_password("airflow-db")
        fernet_key = generated_fernet_key("airflow-fernet-key")
        api_key = generated_password("airflow-api-secret-key", length=48)
        secret_values: dict[str, dict[str, pulumi.Input[str]]] = {
            "airflow-fernet-key": {"fernet-key": fernet_key},
            "airflow-api-secret-key": {"api-secret-key": api_key, "webserver-secret-key": api_key},
            "airflow-postgresql": {"password": db_password, "postgres-password": db_password},
            "airflow-metadata": {
                "connection": pulumi.Output.concat(
                    "postgresql://airflow:",
                    db_password,
                    f"@airflow-postgresql.{at.ns}:5432/airflow?sslmode=disable",
                )
            },
        }
        secrets = [
            kubernetes_secret(name, at.ns, values, self, depends_on=[at.namespace.namespace])
            for name, values in secret_values.items()
        ]
        s3_secret = storage.grant_s3(at.namespace)
        if oc.dags_git_repo:
            repository, tag = versions.AIRFLOW_IMAGE
            dags: dict[str, Any] = {
                "gitSync": {
                    "enabled": True,
                    "repo": oc.dags_git_repo,
                    "branch": oc.dags_git_branch,
                    "subPath": oc.dags_git_sub_path,
                    "resources": resources("50m", "64Mi", "200m"),
                }
            }
        else:
            repository, tag = at.config.workloads_image.repository, at.config.workloads_image.tag
            dags = {"gitSync": {"enabled": False}}
        component = resources("250m", "1Gi", "1")
        self.release = self.install(
            "airflow",
            versions.AIRFLOW,
            {
                "executor": "KubernetesExecutor",
                "uid": AIRFLOW_UID,
                "images": {
                    "airflow": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"}
                },
                "fernetKeySecretName": "airflow-fernet-key",
                "apiSecretKeySecretName": "airflow-api-secret-key",
                "webserverSecretKeySecretName": "airflow-api-secret-key",
                "data": {"metadataSecretName": "airflow-metadata"},
                "postgresql": {
                    "enabled": True,
                    "auth": {
                        "username": "airflow",
                        "database": "airflow",
                        "existingSecret": "airflow-postgresql",
                    },
                    "primary": {
                        "resources": resources("250m", "512Mi", "1"),
                        "persistence": {
                            "storageClass": storage.block_storage_class,
                            "size": "20Gi",
                        },
                    },
                },
                "securityContexts": {
                    "pod": security_context(AIRFLOW_UID, fs_group=0),
                    "containers": chart_container_context(),
                },
                "scheduler": {"replicas": oc.scheduler_replicas, "resources": component},
                "apiServer": {"resources": component},
                "dagProcessor": {"enabled": True, "resources": component},
                "triggerer": {"resources": component},
                "workers": {"resources": resources("500m", "2Gi", "2")},
                "migrateDatabaseJob": {"resources": component},
                "createUserJob": {"resources": component},
                "statsd": {"enabled": False},
                "redis": {"enabled": False},
                # NetworkPolicies are owned by the platform (network_policy.py), not the chart.
                "networkPolicies": {"enabled": False},
                "extraEnvFrom": f"- secretRef:\n    name: {s3_secret}\n",
                "dags": dags,
            },
            depends_on=secrets,
        )
        self.register_outputs({})
