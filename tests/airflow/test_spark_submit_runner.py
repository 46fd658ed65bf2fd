"""Local mode with `local.runner: spark-submit`: the steps that compute become
SparkSubmitOperator tasks (application = fraudwatch/pipelines/steps.py, the step and date as
arguments, the Spark engine in the configuration they receive), the others stay in-process;
and a whole `fraudwatch_daily` run on a small day submits its features and score steps to a
real local Spark (the pyspark of the workloads' .venv) and scores every transaction."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from conftest import REPO, load_dag, small_config
from test_daily_local import _run

SPARK_STEPS = {"features", "score"}
DAY = datetime(2026, 3, 2, tzinfo=UTC)
RUNNER = {"runner": "spark-submit", "spark_conf": {"spark.driver.memory": "1g"}}


def test_compute_steps_become_spark_submit_tasks(tmp_path, monkeypatch):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.providers.standard.operators.python import PythonOperator

    config = small_config(tmp_path / "home", local={**RUNNER, "spark_conn_id": "spark_local"})
    dag = load_dag("fraudwatch_daily.py", config, tmp_path, monkeypatch)
    submitted = {t.task_id: t for t in dag.tasks if isinstance(t, SparkSubmitOperator)}
    assert set(submitted) == SPARK_STEPS
    assert all(
        type(t) is PythonOperator for t in dag.tasks if t.task_id not in SPARK_STEPS
    )  # landing, checks, publishing and alerts stay in the worker
    for step, task in submitted.items():
        assert task.application.endswith("workloads/fraudwatch/pipelines/steps.py")
        assert (REPO / "workloads/fraudwatch/pipelines/steps.py").samefile(task.application)
        assert task.application_args == [step, "--date", "{{ ds }}"]
        assert task._conn_id == "spark_local"
        assert task.conf["spark.driver.memory"] == "1g"
        assert task.conf["spark.sql.session.timeZone"] == "UTC"
        submitted_config = json.loads(task.env_vars["FRAUDWATCH_PIPELINE_CONFIG_JSON"])
        assert submitted_config["engine"] == "spark"
        assert submitted_config["home"] == str(tmp_path / "home")
        assert str(REPO / "workloads") in task.env_vars["PYTHONPATH"].split(":")
        assert task.retries == 0  # the configured retries (small_config: none)


def test_retrain_submits_training_and_evaluation(tmp_path, monkeypatch):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    config = small_config(tmp_path / "home", local=RUNNER)
    dag = load_dag("fraudwatch_retrain.py", config, tmp_path, monkeypatch)
    submitted = {t.task_id for t in dag.tasks if isinstance(t, SparkSubmitOperator)}
    assert submitted == {"train", "evaluate_candidate"}


def test_an_unknown_runner_is_refused_with_the_known_ones():
    from fraudwatch.errors import UserError
    from fraudwatch.pipelines.config import parse_config

    with pytest.raises(UserError, match=r"local.runner 'yarn' is unknown"):
        parse_config({"local": {"runner": "yarn"}})


def _workloads_spark() -> tuple[str, str]:
    """(SPARK_HOME, python) of the workloads' .venv: pyspark with its jars, and fraudwatch."""
    python = REPO / ".venv" / "bin" / "python"
    if not python.is_file() or shutil.which("java") is None:
        pytest.skip("needs the workloads' .venv (make install) and Java for spark-submit")
    done = subprocess.run(
        [str(python), "-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode:
        pytest.skip(f"the workloads' .venv has no pyspark: {done.stderr.strip()[-200:]}")
    return done.stdout.strip(), str(python)


def test_daily_runs_its_compute_steps_with_spark_submit(tmp_path, monkeypatch):
    spark_home, python = _workloads_spark()
    # The Airflow connection the operators use: Spark's local master, two cores.
    monkeypatch.setenv(
        "AIRFLOW_CONN_FRAUDWATCH_SPARK", '{"conn_type": "spark", "host": "local[2]"}'
    )
    home = tmp_path / "home"
    config = small_config(
        home,
        demo={"users": 400, "transactions": 4_000},
        fit_users=200,
        local={**RUNNER, "spark_home": spark_home, "spark_python": python},
    )
    states = _run(load_dag("fraudwatch_daily.py", config, tmp_path, monkeypatch), DAY)
    assert states["run"] == "success", states
    assert states["features"] == states["score"] == states["check_scores"] == "success"
    run = json.loads((home / "scored/2026-03-02/run.json").read_text())
    assert run["engine"] == "spark"  # scored by the submitted step, on Spark
    assert run["counts"]["transactions"] == 4_000
    assert (home / "features/2026-03-02/users.parquet").is_file()
