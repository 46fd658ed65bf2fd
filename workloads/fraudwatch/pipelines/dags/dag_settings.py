"""What the fraudwatch DAG files share: the pipeline configuration they are built from and
the DAG settings every fraudwatch DAG has. Not a DAG itself (Airflow parses it and finds
none); the DAG files import it as `fraudwatch.pipelines.dags.dag_settings`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import Param
from fraudwatch.pipelines.airflow_tasks import default_args
from fraudwatch.pipelines.config import PipelineConfig


def dag_settings(config: PipelineConfig, dag_id: str) -> dict[str, Any]:
    """DAG(...) arguments common to every fraudwatch DAG: one active run at a time, no
    catch-up, retries and the failure notification from `config`, and `config` itself as
    the run's `fraudwatch_config` parameter (the tasks read it from there)."""
    return {
        "dag_id": dag_id,
        "start_date": datetime(2026, 1, 1),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": default_args(config),
        "params": {"fraudwatch_config": Param(config.as_json(), type="string")},
        "tags": ["fraudwatch"],
    }
