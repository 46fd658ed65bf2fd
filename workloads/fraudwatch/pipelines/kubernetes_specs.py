"""What the DAGs run in Kubernetes mode, as plain dicts: the pod of a pipeline step and the
SparkApplication (Kubeflow Spark Operator, v1beta2) that scores a day on Spark.

Kept free of Airflow so the specs can be rendered and validated on their own
(tests/airflow/test_kubernetes_specs.py runs kubernetes-validate --strict on them).
"""

from __future__ import annotations

import dataclasses
import json

from fraudwatch.pipelines.config import CONFIG_JSON_ENV, PipelineConfig

STEP_MODULE = "fraudwatch.pipelines.steps"
# Where the workloads image (workloads/Dockerfile, python:3.11 base) installs the package;
# spark-submit needs the primary resource as a file.
STEPS_FILE_IN_IMAGE = (
    "local:///usr/local/lib/python3.11/site-packages/fraudwatch/pipelines/steps.py"
)
RUN_AS_USER = 10001  # the image's unprivileged user
DATA_VOLUME = "fraudwatch-data"
# A step switched off by configuration exits with this code; the pod operator marks it skipped.
SKIPPED_EXIT_CODE = 99
TMP_VOLUME = "tmp"


def pod_config(config: PipelineConfig) -> PipelineConfig:
    """The configuration as the pods see it: the data root is the mounted volume."""
    return dataclasses.replace(config, home=config.kubernetes.home_in_pod)


def config_env(config: PipelineConfig) -> dict[str, str]:
    return {CONFIG_JSON_ENV: pod_config(config).as_json()}


def env_from(config: PipelineConfig) -> list[dict]:
    """The S3 settings of an s3:// data_root, from the Secret `kubernetes.s3_secret`."""
    secret = config.kubernetes.s3_secret
    return [{"secretRef": {"name": secret}}] if secret else []


def container_security_context() -> dict:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security_context() -> dict:
    return {
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def volumes(config: PipelineConfig) -> list[dict]:
    return [
        {
            "name": DATA_VOLUME,
            "persistentVolumeClaim": {"claimName": config.kubernetes.data_pvc},
        },
        {"name": TMP_VOLUME, "emptyDir": {}},
    ]


def volume_mounts(config: PipelineConfig) -> list[dict]:
    return [
        {"name": DATA_VOLUME, "mountPath": config.kubernetes.home_in_pod},
        {"name": TMP_VOLUME, "mountPath": "/tmp"},
    ]


def resources(config: PipelineConfig) -> dict:
    r = config.kubernetes.resources
    return {
        "requests": {"cpu": r.cpu_request, "memory": r.memory_request},
        "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit},
    }


def labels(dag_id: str, step: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "fraudwatch",
        "app.kubernetes.io/component": "pipeline",
        "fraudwatch/dag": dag_id,
        "fraudwatch/step": step.replace("_", "-"),
    }


def step_command(step: str, day: str) -> tuple[list[str], list[str]]:
    """(command, args) of the container that runs one step (overrides the image entrypoint)."""
    return ["python", "-m", STEP_MODULE], [step, "--date", day]


def spark_application(config: PipelineConfig, dag_id: str, day: str, name: str) -> dict:
    """A SparkApplication that runs the `score` step with the Spark engine.

    Driver and executor pods are described as full pod templates (spec.driver.template,
    supported by Spark Operator 2.x), so they can be validated as core Kubernetes objects."""
    k = config.kubernetes
    spark_config = dataclasses.replace(pod_config(config), engine="spark")
    env = [
        {"name": CONFIG_JSON_ENV, "value": spark_config.as_json()},
        # fraudwatch's Spark session reads its master from here; in cluster mode the
        # driver talks to the API server to start its executors.
        {"name": "FRAUDWATCH_SPARK_MASTER", "value": "k8s://https://kubernetes.default.svc"},
    ]

    def pod_template(role: str) -> dict:
        return {
            "metadata": {"labels": {**labels(dag_id, "score"), "spark-role": role}},
            "spec": {
                "serviceAccountName": k.service_account,
                "automountServiceAccountToken": role == "driver",
                "securityContext": pod_security_context(),
                "volumes": volumes(config),
                "containers": [
                    {
                        "name": f"spark-kubernetes-{role}",
                        "image": k.image,
                        "env": env,
                        **({"envFrom": env_from(config)} if env_from(config) else {}),
                        "securityContext": container_security_context(),
                        "volumeMounts": volume_mounts(config),
                    }
                ],
            },
        }

    s = k.spark
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": k.namespace, "labels": labels(dag_id, "score")},
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": k.image,
            "imagePullPolicy": k.image_pull_policy,
            "mainApplicationFile": STEPS_FILE_IN_IMAGE,
            "arguments": ["score", "--date", day],
            "sparkVersion": s.spark_version,
            "restartPolicy": {"type": "Never"},
            "driver": {
                "cores": s.driver_cores,
                "memory": s.driver_memory,
                "serviceAccount": k.service_account,
                "template": pod_template("driver"),
            },
            "executor": {
                "instances": s.executor_instances,
                "cores": s.executor_cores,
                "memory": s.executor_memory,
                "template": pod_template("executor"),
            },
        },
    }


def pod_templates_of(application: dict) -> dict[str, dict]:
    """The driver's and executor's pod templates as v1 PodTemplate objects (for validation)."""
    return {
        role: {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"{application['metadata']['name']}-{role}"},
            "template": application["spec"][role]["template"],
        }
        for role in ("driver", "executor")
    }


def as_json(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True)
