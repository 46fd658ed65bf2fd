"""Every DAG imports in Airflow 3 without errors or warnings, in both execution modes, and has
the shape an operator expects."""

from __future__ import annotations

import itertools
import json
import warnings

import pytest
from conftest import DAGS_FOLDER


def _dagbag(config: dict, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("FRAUDWATCH_PIPELINE_CONFIG", str(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(DAGS_FOLDER))
    return bag, caught


@pytest.mark.parametrize(
    "settings",
    [
        {"mode": "local"},
        {"mode": "local", "local": {"runner": "spark-submit"}, "source": "kafka"},
        {"mode": "kubernetes"},
    ],
    ids=["local", "local-spark-submit-kafka", "kubernetes"],
)
def test_every_dag_imports_without_errors_or_warnings(settings, tmp_path, monkeypatch):
    bag, caught = _dagbag({**settings, "home": str(tmp_path)}, tmp_path, monkeypatch)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["fraudwatch_daily", "fraudwatch_retrain"]
    assert dict(bag.captured_warnings) == {}
    ours = [w for w in caught if "fraudwatch" in str(w.filename)]
    assert [str(w.message) for w in ours] == []


def test_daily_runs_the_steps_in_order_with_back_off(tmp_path, monkeypatch):
    bag, _ = _dagbag({"home": str(tmp_path), "retries": 4}, tmp_path, monkeypatch)
    dag = bag.get_dag("fraudwatch_daily")
    order = ["land", "check_raw", "features", "score", "check_scores"]
    for upstream, downstream in itertools.pairwise(order):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert dag.get_task("check_scores").downstream_task_ids == {
        "publish_elasticsearch",
        "publish_tableau",
    }
    alerts = dag.get_task("evaluate_alerts")
    assert alerts.upstream_task_ids == {"publish_elasticsearch", "publish_tableau"}
    assert alerts.trigger_rule == "none_failed"
    # Retention runs last, once the day is scored and alerted on, and only then.
    retain = dag.get_task("retain")
    assert alerts.downstream_task_ids == {"retain"}
    assert retain.upstream_task_ids == {"evaluate_alerts"}
    assert retain.downstream_task_ids == set()
    assert retain.trigger_rule == "all_success"
    assert [t.task_id for t in dag.topological_sort()][-1] == "retain"
    score = dag.get_task("score")
    assert score.retries == 4 and score.retry_exponential_backoff
    assert score.on_failure_callback


def test_retrain_trains_evaluates_then_gates(tmp_path, monkeypatch):
    bag, _ = _dagbag({"home": str(tmp_path)}, tmp_path, monkeypatch)
    dag = bag.get_dag("fraudwatch_retrain")
    assert [t.task_id for t in dag.topological_sort()] == [
        "prepare_window",
        "train",
        "evaluate_candidate",
        "gate",
    ]
    assert dag.schedule == "@weekly"


def test_example_config_states_the_defaults():
    """pipeline.example.yaml is what an operator copies: it parses, and says what the
    defaults are (a changed default must be changed there too)."""
    from fraudwatch.pipelines.config import PipelineConfig, load_config

    assert load_config(DAGS_FOLDER.parent / "pipeline.example.yaml") == PipelineConfig()
