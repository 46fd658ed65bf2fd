"""Turns a pipeline step into an Airflow task for the configured execution mode.

- local: a PythonOperator runs the step in the worker's process (SQLite/standalone friendly);
  with local.runner: spark-submit the steps that compute (SPARK_STEPS) are SparkSubmitOperator
  tasks instead: `spark-submit .../fraudwatch/pipelines/steps.py STEP --date DAY` on the Spark
  of the `local.spark_conn_id` connection, with the Spark feature engine.
- kubernetes: a KubernetesPodOperator runs `python -m fraudwatch.pipelines.steps STEP` in the
  workloads image; the daily scoring runs as a SparkApplication (SparkKubernetesOperator)
  when kubernetes.score_with_spark is on.

A data-quality failure or another UserError fails the task at once (retrying does not fix
data); any other error is retried with exponential back-off. Every failure is notified.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from fraudwatch.errors import UserError
from fraudwatch.pipelines import kubernetes_specs
from fraudwatch.pipelines.config import CONFIG_JSON_ENV, PipelineConfig, parse_config

#: The steps that compute on the feature engine; the others (landing, checks, publishing,
#: alerts, the gate) stay in the worker's process whatever the runner.
SPARK_STEPS = ("features", "score", "train", "evaluate_candidate")


def default_args(config: PipelineConfig) -> dict[str, Any]:
    return {
        "owner": "fraudwatch",
        "retries": config.retries,
        "retry_delay": timedelta(seconds=config.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(seconds=config.max_retry_delay_seconds),
        "on_failure_callback": notify_failure,
    }


def notify_failure(context: dict) -> None:
    """Airflow failure callback: one readable line per failed task, to the notifier."""
    import json

    from fraudwatch.pipelines.notifications import notify

    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    day = context.get("ds", "?")
    error = context.get("exception")
    config_json = (context.get("params") or {}).get("fraudwatch_config")
    config = parse_config(json.loads(config_json)) if config_json else PipelineConfig()
    notify(config, f"{dag_id} {day}: task {task_id} failed: {error}")


def _run_local(step: str, day: str, config_json: str) -> dict:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from fraudwatch.pipelines.daily_steps import StepSkipped
    from fraudwatch.pipelines.steps import run_step

    try:
        return run_step(step, day, config_json)
    except StepSkipped as exc:
        raise AirflowSkipException(str(exc)) from None
    except UserError as exc:
        # The message is the reason an operator reads in the task log and the notification.
        raise AirflowFailException(f"{step}: {exc}") from None


def step_task(config: PipelineConfig, dag_id: str, step: str):
    """The operator that runs `step` for the run's logical date in the configured mode."""
    if config.mode == "local":
        from airflow.providers.standard.operators.python import PythonOperator

        if config.local.runner == "spark-submit" and step in SPARK_STEPS:
            return _spark_submit_task(config, dag_id, step)

        return PythonOperator(
            task_id=step,
            python_callable=_run_local,
            op_kwargs={"step": step, "day": "{{ ds }}", "config_json": config.as_json()},
        )
    if step == "score" and dag_id == "fraudwatch_daily" and config.kubernetes.score_with_spark:
        return _spark_task(config, dag_id)
    return _pod_task(config, dag_id, step)


def _pod_task(config: PipelineConfig, dag_id: str, step: str):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    k = config.kubernetes
    command, arguments = kubernetes_specs.step_command(step, "{{ ds }}")
    r = kubernetes_specs.resources(config)
    return KubernetesPodOperator(
        task_id=step,
        name=f"{dag_id}-{step}".replace("_", "-"),
        namespace=k.namespace,
        image=k.image,
        image_pull_policy=k.image_pull_policy,
        cmds=command,
        arguments=arguments,
        env_vars=kubernetes_specs.config_env(config),
        env_from=[
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=e["secretRef"]["name"]))
            for e in kubernetes_specs.env_from(config)
        ],
        service_account_name=k.service_account,
        automount_service_account_token=False,
        labels=kubernetes_specs.labels(dag_id, step),
        container_resources=k8s.V1ResourceRequirements(requests=r["requests"], limits=r["limits"]),
        security_context=kubernetes_specs.pod_security_context(),
        container_security_context=kubernetes_specs.container_security_context(),
        volumes=[
            k8s.V1Volume(
                name=kubernetes_specs.DATA_VOLUME,
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                    claim_name=k.data_pvc
                ),
            ),
            k8s.V1Volume(name=kubernetes_specs.TMP_VOLUME, empty_dir=k8s.V1EmptyDirVolumeSource()),
        ],
        volume_mounts=[
            k8s.V1VolumeMount(name=m["name"], mount_path=m["mountPath"])
            for m in kubernetes_specs.volume_mounts(config)
        ],
        do_xcom_push=True,
        skip_on_exit_code=kubernetes_specs.SKIPPED_EXIT_CODE,
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
    )


def _spark_task(config: PipelineConfig, dag_id: str):
    import yaml
    from airflow.providers.cncf.kubernetes.operators.spark_kubernetes import (
        SparkKubernetesOperator,
    )

    application = kubernetes_specs.spark_application(
        config, dag_id, "{{ ds }}", f"{dag_id}-score".replace("_", "-")
    )
    return SparkKubernetesOperator(
        task_id="score",
        namespace=config.kubernetes.namespace,
        application_file=yaml.safe_dump(application, sort_keys=False),
        get_logs=True,
        delete_on_termination=True,
    )


def steps_file() -> str:
    """The step runner as a file: spark-submit's primary resource (the same code the worker
    imports, so the submitted step runs the checked-out or installed fraudwatch)."""
    from fraudwatch.pipelines import steps

    return str(Path(steps.__file__).resolve())


def spark_submit_env(config: PipelineConfig) -> dict[str, str]:
    """The submitted step's environment: the configuration (Spark engine) as JSON, the package
    on PYTHONPATH, and the Spark and Python the configuration names."""
    local = config.local
    package_root = str(Path(steps_file()).parents[2])  # the folder holding fraudwatch/
    env = {
        CONFIG_JSON_ENV: dataclasses.replace(config, engine="spark").as_json(),
        "PYTHONPATH": os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    if local.spark_home:
        env["SPARK_HOME"] = local.spark_home
        env["PATH"] = os.pathsep.join(
            p for p in (str(Path(local.spark_home) / "bin"), os.environ.get("PATH", "")) if p
        )
    if local.spark_python:
        env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = local.spark_python
    return env


def _spark_submit_task(config: PipelineConfig, dag_id: str, step: str):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    return SparkSubmitOperator(
        task_id=step,
        name=f"{dag_id}-{step}".replace("_", "-"),
        conn_id=config.local.spark_conn_id,
        application=steps_file(),
        application_args=[step, "--date", "{{ ds }}"],
        conf={"spark.sql.session.timeZone": "UTC", **config.local.spark_conf},
        env_vars=spark_submit_env(config),
        verbose=False,
    )
