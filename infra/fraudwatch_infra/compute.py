"""Compute: the Kubeflow Spark Operator, the RBAC its drivers run with, and the nightly
batch scoring as a ScheduledSparkApplication (`fraudwatch score --engine spark`)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from . import versions
from .component import Component, Operator, Options, Placement
from .pod_security import NON_ROOT_UID, chart_container_context, resources
from .storage import BUCKET, Storage

SPARK_SERVICE_ACCOUNT = "fraudwatch-spark"


def _spark_memory_with_overhead(memory: str) -> str:
    """Kubernetes memory limit for a Spark JVM: heap plus the default 10% (min 384m) overhead."""
    value, unit = int(memory[:-1]), memory[-1]
    mebibytes = value * {"g": 1024, "m": 1, "k": 1 / 1024}[unit]
    return f"{int(mebibytes + max(384, mebibytes * 0.1))}Mi"


def spark_operator(namespace: str) -> Operator:
    """Kubeflow's Spark operator, running jobs in the compute namespace only; the service\n    account and its role are the component's own."""
    values = {
        "spark": {
            "jobNamespaces": [namespace],
            "serviceAccount": {"create": False},
            "rbac": {"create": False},
        },
        "controller": {
            "resources": resources("100m", "256Mi", "1"),
            "securityContext": chart_container_context(),
        },
        "webhook": {
            "enable": True,
            "resources": resources("50m", "128Mi", "500m"),
            "securityContext": chart_container_context(),
        },
    }
    return Operator("spark-operator", versions.SPARK_OPERATOR, values)


class Compute(Component):
    def __init__(
        self, at: Placement, storage: Storage, search_url: str, opts: Options = None
    ) -> None:
        super().__init__(at, opts, spark_operator(at.ns))
        cc = at.config.compute
        child = pulumi.ResourceOptions(parent=self, depends_on=[at.namespace.namespace])
        # The driver creates its executors, their services and config maps: nothing else.
        k8s.core.v1.ServiceAccount(
            "spark-service-account",
            metadata={"name": SPARK_SERVICE_ACCOUNT, "namespace": at.ns},
            automount_service_account_token=True,
            opts=child,
        )
        k8s.rbac.v1.Role(
            "spark-driver-role",
            metadata={"name": "fraudwatch-spark-driver", "namespace": at.ns},
            rules=[
                {
                    "apiGroups": [""],
                    "resources": ["pods", "services", "configmaps", "persistentvolumeclaims"],
                    "verbs": [
                        "create",
                        "get",
                        "list",
                        "watch",
                        "delete",
                        "deletecollection",
                        "patch",
                    ],
                }
            ],
            opts=child,
        )
        k8s.rbac.v1.RoleBinding(
            "spark-driver-binding",
            metadata={"name": "fraudwatch-spark-driver", "namespace": at.ns},
            role_ref={
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "fraudwatch-spark-driver",
            },
            subjects=[
                {"kind": "ServiceAccount", "name": SPARK_SERVICE_ACCOUNT, "namespace": at.ns}
            ],
            opts=child,
        )
        s3_secret = storage.grant_s3(at.namespace)
        security = chart_container_context(NON_ROOT_UID, seccomp=True)
        env_from = [{"secretRef": {"name": s3_secret}}]
        template = {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": at.config.workloads_image.reference,
            "imagePullPolicy": "IfNotPresent",
            "mainApplicationFile": cc.main_application_file,
            "arguments": [
                "score",
                "--engine",
                "spark",
                "--input",
                f"s3://{BUCKET}/raw",
                "--out",
                f"s3://{BUCKET}/scored",
                "--elasticsearch-url",
                search_url,
            ],
            "sparkVersion": versions.SPARK_VERSION,
            "sparkConf": {
                "spark.hadoop.fs.s3a.endpoint": storage.s3_endpoint,
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": "true",
                "spark.sql.shuffle.partitions": str(cc.executors * cc.executor_cores * 2),
            },
            "restartPolicy": {
                "type": "OnFailure",
                "onFailureRetries": 2,
                "onFailureRetryInterval": 300,
            },
            "driver": {
                "cores": 1,
                "coreLimit": "1",
                "memory": cc.driver_memory,
                "serviceAccount": SPARK_SERVICE_ACCOUNT,
                "securityContext": security,
                "envFrom": env_from,
                "labels": {"app.kubernetes.io/name": "fraudwatch-batch-score"},
            },
            "executor": {
                "instances": cc.executors,
                "cores": cc.executor_cores,
                "coreLimit": str(cc.executor_cores),
                "memory": cc.executor_memory,
                "securityContext": security,
                "envFrom": env_from,
                "labels": {"app.kubernetes.io/name": "fraudwatch-batch-score"},
            },
        }
        self.executor_memory_limit = _spark_memory_with_overhead(cc.executor_memory)
        self.schedule = self.custom_resource(
            "batch-score",
            "sparkoperator.k8s.io/v1beta2",
            "ScheduledSparkApplication",
            {"name": "fraudwatch-batch-score"},
            {
                "schedule": cc.schedule,
                "concurrencyPolicy": "Forbid",
                "successfulRunHistoryLimit": 3,
                "failedRunHistoryLimit": 3,
                "template": template,
            },
            [self.release],
        )
        self.register_outputs({})
