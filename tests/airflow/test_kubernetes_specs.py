"""Kubernetes mode: every step pod the DAGs would start, and the daily SparkApplication's
driver and executor pods, validate with kubernetes-validate --strict, and carry the image,
resources and service account from the configuration. No API server runs here, so the specs
are built by the operators themselves (KubernetesPodOperator.build_pod_request_obj) and
validated offline; nothing is submitted."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml
from conftest import load_dag
from fraudwatch.pipelines import kubernetes_specs
from fraudwatch.pipelines.config import parse_config

KUBERNETES_VERSION = "1.33.0"
CLUSTER = {
    "mode": "kubernetes",
    "kubernetes": {
        "namespace": "fraud",
        "image": "registry.example/fraudwatch:0.1.0",
        "service_account": "fraudwatch-pipeline",
        "resources": {"cpu_request": "250m", "memory_request": "512Mi", "memory_limit": "3Gi"},
    },
}


def _pods(dag) -> dict[str, dict]:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import ApiClient

    client = ApiClient()
    return {
        # dry_run: the pod exactly as it would be submitted, minus what needs a live API.
        task.task_id: client.sanitize_for_serialization(task.build_pod_request_obj(dry_run=True))
        for task in dag.tasks
        if type(task) is KubernetesPodOperator
    }


def _validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    ("dag_file", "expected"),
    [
        (
            "fraudwatch_daily.py",
            {
                "land",
                "check_raw",
                "features",
                "check_scores",
                "publish_elasticsearch",
                "publish_tableau",
                "evaluate_alerts",
                "retain",
            },
        ),
        ("fraudwatch_retrain.py", {"prepare_window", "train", "evaluate_candidate", "gate"}),
    ],
)
def test_every_step_pod_validates_strictly_and_follows_the_config(
    dag_file, expected, tmp_path, monkeypatch
):
    dag = load_dag(dag_file, CLUSTER, tmp_path, monkeypatch)
    pods = _pods(dag)
    assert set(pods) == expected
    # A step switched off by configuration exits 99 in its pod: the task is skipped, not failed.
    assert all(list(dag.get_task(step).skip_on_exit_code) == [99] for step in pods)
    for step, pod in pods.items():
        _validate(pod)
        spec = pod["spec"]
        container = spec["containers"][0]
        assert pod["metadata"]["namespace"] == "fraud"
        assert spec["serviceAccountName"] == "fraudwatch-pipeline"
        assert container["image"] == "registry.example/fraudwatch:0.1.0"
        assert container["command"] == ["python", "-m", "fraudwatch.pipelines.steps"]
        assert container["args"] == [step, "--date", "{{ ds }}"]
        assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
        assert container["resources"]["limits"]["memory"] == "3Gi"
        assert spec["securityContext"]["runAsNonRoot"] is True
        env = {e["name"]: e["value"] for e in container["env"]}
        pod_config = parse_config(json.loads(env["FRAUDWATCH_PIPELINE_CONFIG_JSON"]))
        assert pod_config.home == "/var/lib/fraudwatch"  # the mounted data volume


def test_daily_scores_with_a_spark_application_whose_pods_validate_strictly(tmp_path, monkeypatch):
    from airflow.providers.cncf.kubernetes.operators.spark_kubernetes import (
        SparkKubernetesOperator,
    )

    dag = load_dag("fraudwatch_daily.py", CLUSTER, tmp_path, monkeypatch)
    task = dag.get_task("score")
    assert isinstance(task, SparkKubernetesOperator)
    application = yaml.safe_load(task.application_file)
    # The operator's own reading of the spec accepts it (what it submits at run time).
    from airflow.providers.cncf.kubernetes.operators.custom_object_launcher import SparkJobSpec

    submitted = SparkJobSpec(**task.template_body["spark"])
    assert submitted.spec["driver"]["template"] == application["spec"]["driver"]["template"]
    assert application["kind"] == "SparkApplication"
    assert application["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    spec = application["spec"]
    # The fields the Spark Operator documents as required for a Python application.
    for key in ("type", "mode", "image", "mainApplicationFile", "sparkVersion"):
        assert spec[key], key
    assert spec["type"] == "Python" and spec["arguments"] == ["score", "--date", "{{ ds }}"]
    assert spec["driver"]["serviceAccount"] == "fraudwatch-pipeline"
    for role, template in kubernetes_specs.pod_templates_of(application).items():
        _validate(template)
        container = template["template"]["spec"]["containers"][0]
        assert container["image"] == "registry.example/fraudwatch:0.1.0", role
        env = {e["name"]: e["value"] for e in container["env"]}
        assert '"engine": "spark"' in env["FRAUDWATCH_PIPELINE_CONFIG_JSON"]


def test_strict_validation_rejects_a_misspelled_field():
    """Guard against a validator that accepts anything."""
    application = kubernetes_specs.spark_application(
        parse_config(CLUSTER), "fraudwatch_daily", "2026-03-02", "fw-score"
    )
    template = kubernetes_specs.pod_templates_of(application)["driver"]
    template["template"]["spec"]["serviceAcountName"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(template)


def test_an_s3_data_root_gets_its_settings_from_the_named_secret(tmp_path, monkeypatch):
    config = {
        **CLUSTER,
        "data_root": "s3://fraudwatch/pipeline",
        "kubernetes": {**CLUSTER["kubernetes"], "s3_secret": "fraudwatch-s3"},
    }
    dag = load_dag("fraudwatch_daily.py", config, tmp_path, monkeypatch)
    for step, pod in _pods(dag).items():
        _validate(pod)
        container = pod["spec"]["containers"][0]
        assert container["envFrom"] == [{"secretRef": {"name": "fraudwatch-s3"}}], step
        env = {e["name"]: e["value"] for e in container["env"]}
        pod_config = parse_config(json.loads(env["FRAUDWATCH_PIPELINE_CONFIG_JSON"]))
        assert pod_config.data_root == "s3://fraudwatch/pipeline"
    application = yaml.safe_load(dag.get_task("score").application_file)
    for role, template in kubernetes_specs.pod_templates_of(application).items():
        _validate(template)
        container = template["template"]["spec"]["containers"][0]
        assert container["envFrom"] == [{"secretRef": {"name": "fraudwatch-s3"}}], role
    # Without the key, no envFrom at all (the default).
    pods = _pods(load_dag("fraudwatch_daily.py", CLUSTER, tmp_path, monkeypatch))
    assert all(not p["spec"]["containers"][0].get("envFrom") for p in pods.values())
