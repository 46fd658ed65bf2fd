"""The steps of the fraudwatch_retrain DAG as plain functions of (config, logical date DAY):
prepare the training window before DAY, train a candidate (learning ensemble weights from
analysts' labels when there are enough, docs/feedback.md), evaluate candidate and promoted
version on the held-out DAY, and gate the promotion. Named for Airflow in steps.py.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fraudwatch.errors import UserError
from fraudwatch.locations import storage
from fraudwatch.locations.atomic import atomic_directory
from fraudwatch.models.registry import ModelRegistry
from fraudwatch.pipelines.config import PipelineConfig
from fraudwatch.pipelines.daily_steps import land, logical_date, score_options, write_json
from fraudwatch.pipelines.model_gate import decide, decide_on_labels
from fraudwatch.pipelines.notifications import notify

log = logging.getLogger("fraudwatch.pipelines")


def _retrain_dir(config: PipelineConfig, day: str) -> Path:
    return config.root / "retrain" / day


def _window(config: PipelineConfig, day: str) -> list[str]:
    end = logical_date(day)
    return [
        (end - timedelta(days=i)).isoformat() for i in range(config.retrain.window_days - 1, -1, -1)
    ]


def prepare_window(config: PipelineConfig, day: str) -> dict:
    """Training input: the window's days before DAY (hard links, no copies); DAY is held out
    for evaluation. In a demo deployment missing days are generated first."""
    days = _window(config, day)
    if config.source == "generate":
        for d in days:
            if not storage.is_file(storage.join(config.raw_dir(d), "manifest.json")):
                land(config, d)
    present = [d for d in days if storage.dataset(storage.join(config.raw_dir(d), "transactions"))]
    if len(present) < config.retrain.min_days or day not in present:
        raise UserError(
            f"retraining for {day} needs at least {config.retrain.min_days} landed days "
            f"ending on {day} in the last {config.retrain.window_days}, found {present or 'none'}; "
            "run fraudwatch_daily for those dates first"
        )
    train_days = [d for d in present if d != day]
    target = _retrain_dir(config, day) / "train_input"
    with atomic_directory(target, overwrite=True) as tmp:
        for d in train_days:
            # One snapshot of the users: the latest. Local days are hard-linked, S3 days copied.
            skip = () if d == train_days[-1] else ("users",)
            storage.download(config.raw_dir(d), tmp, skip=skip)
    return {"train_days": train_days, "holdout_day": day, "train_input": str(target)}


def _cutoff(day: str) -> datetime:
    """The candidate's training cut-off: the start (UTC) of the held-out day. Dispositions
    recorded before it may shape the candidate; those recorded from it on only judge it."""
    return datetime.combine(logical_date(day), datetime.min.time(), tzinfo=UTC)


def _labels(config: PipelineConfig, day: str) -> tuple[dict[int, int], dict[int, int]] | None:
    """(labels before the cut-off, labels from it on) from retrain.dispositions, or None when
    no dispositions file is configured (docs/feedback.md)."""
    if not config.retrain.dispositions:
        return None
    from fraudwatch.feedback.labels import read_dispositions, split_by_time, user_labels

    before, after = split_by_time(read_dispositions(config.retrain.dispositions), _cutoff(day))
    return user_labels(before), user_labels(after)


def train(config: PipelineConfig, day: str) -> dict:
    """Fit the candidate on the window; with enough labels recorded before the cut-off, learn
    its user-level ensemble weights from them (feedback/learning.py)."""
    from fraudwatch.scoring.pipeline import score as run_score

    folder = _retrain_dir(config, day)
    options = score_options(config, iforest=config.retrain.iforest)
    summary = run_score(folder / "train_input", folder / "candidate", options, overwrite=True)
    version_dir = folder / "candidate" / "models" / summary.model_version
    result: dict = {"candidate": summary.model_version, "path": str(version_dir)}
    labels = _labels(config, day)
    if labels is not None:
        from fraudwatch.feedback.learning import learn_from_labels

        learning = learn_from_labels(
            version_dir, folder / "candidate", labels[0], config.retrain.min_labels
        )
        result["label_weights"] = learning.as_json()
        log.info("labels for %s: %s", day, learning.reason)
    return result


def evaluate_candidate(config: PipelineConfig, day: str) -> dict:
    """Score the held-out labelled day with the candidate and with the promoted version."""
    from fraudwatch.scoring.pipeline import score as run_score

    folder = _retrain_dir(config, day)
    run = json.loads((folder / "candidate" / "run.json").read_text())
    candidate_dir = folder / "candidate" / "models" / run["model_version"]
    holdout = config.raw_dir(day)
    result = {"candidate": run["model_version"]}
    summary = run_score(
        holdout, folder / "eval_candidate", score_options(config, candidate_dir), overwrite=True
    )
    if summary.evaluation is None:
        raise UserError(f"the held-out day {day} has no labelled anomalies; cannot evaluate")
    result["candidate_evaluation"] = summary.evaluation
    registry = ModelRegistry(config.registry_root)
    current = registry.promoted()
    result["current"] = current
    if current is not None:
        summary = run_score(
            holdout,
            folder / "eval_current",
            score_options(config, registry.path(current)),
            overwrite=True,
        )
        result["current_evaluation"] = summary.evaluation
    labels = _labels(config, day)
    if labels is not None:  # judged only on verdicts recorded from the cut-off on
        from fraudwatch.feedback.precision import budget_metrics

        for who in ("candidate", "current") if current is not None else ("candidate",):
            users = storage.read_table(
                folder / f"eval_{who}" / "users.parquet", columns=["user_id", "flagged"]
            )
            result[f"{who}_labels"] = budget_metrics(
                users["user_id"].to_pylist(), users["flagged"].to_pylist(), labels[1]
            )
        result["label_cutoff"] = _cutoff(day).isoformat()
    write_json(folder / "evaluation.json", result)
    return {"candidate": run["model_version"], "current": current}


def gate(config: PipelineConfig, day: str) -> dict:
    """Promote the candidate if it is not worse than the promoted version beyond tolerance."""
    folder = _retrain_dir(config, day)
    evaluation = json.loads((folder / "evaluation.json").read_text())
    settings = config.retrain
    decision = decide(
        evaluation["candidate_evaluation"],
        evaluation.get("current_evaluation"),
        settings.gate_metrics,
        settings.tolerance,
    )
    metrics: dict = {"holdout_day": day}
    if "candidate_labels" in evaluation:
        decide_on_labels(
            decision,
            evaluation["candidate_labels"],
            evaluation.get("current_labels"),
            settings.label_tolerance,
            settings.min_gate_labels,
        )
        metrics["labels"] = {
            "cutoff": evaluation["label_cutoff"],
            "candidate": evaluation["candidate_labels"],
            "current": evaluation.get("current_labels"),
        }
    registry = ModelRegistry(config.registry_root)
    candidate = evaluation["candidate"]
    metrics["compared"] = decision.compared
    if settings.dispositions and evaluation.get("current"):
        # Measured precision of the version in service: its alerts' verdicts so far.
        from fraudwatch.feedback.labels import read_dispositions
        from fraudwatch.feedback.precision import version_precision

        metrics["measured_precision"] = version_precision(
            read_dispositions(settings.dispositions), evaluation["current"]
        )
    if decision.promote:
        registry.add(folder / "candidate" / "models" / candidate)
        registry.promote(candidate, decision.summary, metrics)
    else:
        registry.refuse(candidate, decision.summary, metrics)
        notify(
            config, f"fraudwatch_retrain {day}: candidate {candidate} refused: {decision.summary}"
        )
    result = {
        "candidate": candidate,
        "promoted": decision.promote,
        "reasons": decision.reasons,
        "compared": decision.compared,
        **{k: metrics[k] for k in ("labels", "measured_precision") if k in metrics},
        "now_promoted": registry.promoted(),
        "previous": registry.previous(),
    }
    write_json(folder / "gate.json", result)
    log.info("model gate for %s: %s", day, decision.summary)
    return result
