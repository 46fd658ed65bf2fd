"""fraudwatch_retrain: weekly, fit a candidate model version on a window of days, evaluate it
and the promoted version on the held-out labelled last day, and promote the candidate only
if the model gate lets it through. The replaced version stays as `previous` for rollback.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param
from fraudwatch.pipelines.airflow_tasks import default_args, step_task
from fraudwatch.pipelines.config import load_config

DAG_ID = "fraudwatch_retrain"
config = load_config()

with DAG(
    dag_id=DAG_ID,
    description="Retrain the anomaly models weekly and promote them through a model gate",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(config),
    params={"fraudwatch_config": Param(config.as_json(), type="string")},
    tags=["fraudwatch"],
    doc_md=__doc__,
) as dag:
    (
        step_task(config, DAG_ID, "prepare_window")
        >> step_task(config, DAG_ID, "train")
        >> step_task(config, DAG_ID, "evaluate_candidate")
        >> step_task(config, DAG_ID, "gate")
    )
