"""fraudwatch_retrain: weekly, fit a candidate model version on a window of days, evaluate it
and the promoted version on the held-out labelled last day, and promote the candidate only
if the model gate lets it through. The replaced version stays as `previous` for rollback.
"""

from __future__ import annotations

from airflow.sdk import DAG
from fraudwatch.pipelines.airflow_tasks import step_task
from fraudwatch.pipelines.config import load_config
from fraudwatch.pipelines.dags.dag_settings import dag_settings

DAG_ID = "fraudwatch_retrain"
config = load_config()

with DAG(
    **dag_settings(config, DAG_ID),
    description="Retrain the anomaly models weekly and promote them through a model gate",
    schedule="@weekly",
    doc_md=__doc__,
) as dag:
    (
        step_task(config, DAG_ID, "prepare_window")
        >> step_task(config, DAG_ID, "train")
        >> step_task(config, DAG_ID, "evaluate_candidate")
        >> step_task(config, DAG_ID, "gate")
    )
