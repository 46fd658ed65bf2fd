"""The steps of the fraudwatch DAGs by name, and the runner the pods call. The steps are plain
functions of (config, logical date): daily_steps.py (fraudwatch_daily) and retrain_steps.py
(fraudwatch_retrain).

Airflow runs them in-process in local mode (PythonOperator) and as
`python -m fraudwatch.pipelines.steps STEP --date YYYY-MM-DD` in a pod in Kubernetes mode.
Nothing here imports Airflow. Every step writes only under its logical date's folders and
replaces them whole, so a rerun or a backfill of a date replaces that date's outputs. The data
(raw, features, scored, reports) lives below `data_root`, a local folder or an s3:// prefix
(locations/storage.py, written whole by locations/atomic.py); the model registry and
notifications stay below the local `home`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from fraudwatch.errors import UserError
from fraudwatch.pipelines import daily_steps, retrain_steps
from fraudwatch.pipelines.config import PipelineConfig, load_config
from fraudwatch.pipelines.daily_steps import StepSkipped, check_data_root, logical_date
from fraudwatch.pipelines.kubernetes_specs import SKIPPED_EXIT_CODE

STEPS: dict[str, Callable[[PipelineConfig, str], dict]] = {
    "land": daily_steps.land,
    "check_raw": daily_steps.check_raw,
    "features": daily_steps.features,
    "score": daily_steps.score,
    "check_scores": daily_steps.check_scores,
    "publish_elasticsearch": daily_steps.publish_elasticsearch,
    "publish_tableau": daily_steps.publish_tableau,
    "evaluate_alerts": daily_steps.evaluate_alerts,
    "retain": daily_steps.retain,
    "prepare_window": retrain_steps.prepare_window,
    "train": retrain_steps.train,
    "evaluate_candidate": retrain_steps.evaluate_candidate,
    "gate": retrain_steps.gate,
}


def run_step(step: str, day: str, config_json: str | None = None) -> dict:
    """Run one step; the config comes as JSON (what the DAG resolved) or from the environment."""
    if step not in STEPS:
        raise UserError(f"unknown step {step!r}; known: {', '.join(STEPS)}")
    logical_date(day)
    config = load_config() if config_json is None else _from_json(config_json)
    check_data_root(config)
    return STEPS[step](config, day)


def _from_json(text: str) -> PipelineConfig:
    from fraudwatch.pipelines.config import parse_config

    return parse_config(json.loads(text))


def main(argv: list[str] | None = None) -> int:
    """`python -m fraudwatch.pipelines.steps STEP --date YYYY-MM-DD` (the pods' command)."""
    parser = argparse.ArgumentParser(prog="python -m fraudwatch.pipelines.steps")
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--date", required=True, help="logical date, YYYY-MM-DD")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        result = run_step(args.step, args.date)
    except StepSkipped as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return SKIPPED_EXIT_CODE
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # KubernetesPodOperator reads a pod's XCom from this file when do_xcom_push is on.
    xcom = Path("/airflow/xcom")
    if xcom.is_dir():
        (xcom / "return.json").write_text(json.dumps(result, default=str))
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
