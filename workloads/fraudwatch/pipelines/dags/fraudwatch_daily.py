"""fraudwatch_daily: land → check → features → score → check → publish → alerts → retain,
per day.

Every step but `retain` replaces only its logical date's outputs, so a rerun or a backfill
of a date leaves one copy of that day; `retain` removes what is older than privacy.retention. Configuration: $FRAUDWATCH_PIPELINE_CONFIG (docs/airflow.md).
"""

from __future__ import annotations

from airflow.sdk import DAG
from fraudwatch.pipelines.airflow_tasks import step_task
from fraudwatch.pipelines.config import load_config
from fraudwatch.pipelines.dags.dag_settings import dag_settings

DAG_ID = "fraudwatch_daily"
config = load_config()

with DAG(
    **dag_settings(config, DAG_ID),
    description="Score each day's transactions with the promoted models and publish them",
    schedule="@daily",
    doc_md=__doc__,
) as dag:
    land = step_task(config, DAG_ID, "land")
    check_raw = step_task(config, DAG_ID, "check_raw")
    features = step_task(config, DAG_ID, "features")
    score = step_task(config, DAG_ID, "score")
    check_scores = step_task(config, DAG_ID, "check_scores")
    publish_es = step_task(config, DAG_ID, "publish_elasticsearch")
    publish_tableau = step_task(config, DAG_ID, "publish_tableau")
    alerts = step_task(config, DAG_ID, "evaluate_alerts")
    # Alerts run whether publishing ran or was switched off (skipped), never after a failure.
    alerts.trigger_rule = "none_failed"
    # Retention (privacy.retention, docs/privacy.md) once the day is scored and alerted on:
    # removes what is older than the policy, counted back from the day after the logical date.
    retain = step_task(config, DAG_ID, "retain")

    land >> check_raw >> features >> score >> check_scores >> [publish_es, publish_tableau]
    [publish_es, publish_tableau] >> alerts >> retain
