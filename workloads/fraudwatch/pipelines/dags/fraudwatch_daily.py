"""fraudwatch_daily: land → check → features → score → check → publish → alerts, per day.

Every step replaces only its logical date's outputs, so a rerun or a backfill of a date
leaves one copy of that day. Configuration: $FRAUDWATCH_PIPELINE_CONFIG (docs/airflow.md).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param
from fraudwatch.pipelines.airflow_tasks import default_args, step_task
from fraudwatch.pipelines.config import load_config

DAG_ID = "fraudwatch_daily"
config = load_config()

with DAG(
    dag_id=DAG_ID,
    description="Score each day's transactions with the promoted models and publish them",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(config),
    params={"fraudwatch_config": Param(config.as_json(), type="string")},
    tags=["fraudwatch"],
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

    land >> check_raw >> features >> score >> check_scores >> [publish_es, publish_tableau]
    [publish_es, publish_tableau] >> alerts
