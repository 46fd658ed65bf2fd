"""The retraining reads dispositions as labels: labels recorded after the candidate's
training cut-off never shape it, no usable labels leave the unsupervised default untouched,
and the gate refuses a candidate that is worse on the labelled users."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from fraudwatch.feedback.labels import Disposition, write_dispositions
from fraudwatch.models.registry import ModelRegistry
from fraudwatch.pipelines import retrain_steps, steps

from .conftest import day, pipeline_config


def truth_dispositions(config, days: list[str], at: datetime, flip: bool = False) -> list:
    """Verdicts from the generator's truth on the users active on `days`, recorded at `at`:
    every anomalous user and as many ordinary ones (all flipped when `flip`)."""
    files = [f"{config.raw_dir(d)}/transactions/*/*.parquet" for d in days]
    rows = duckdb.sql(
        f"SELECT user_id, max(label) FROM read_parquet({files}) GROUP BY 1 ORDER BY 1"
    ).fetchall()
    fraud = [u for u, y in rows if y]
    legit = [u for u, y in rows if not y][: len(fraud)]
    out = []
    for users, label in ((fraud, "fraud"), (legit, "legitimate")):
        if flip:
            label = "legitimate" if label == "fraud" else "fraud"
        out += [Disposition(int(u), label, at, None, "truth", None, "test") for u in users]
    return out


def _train(config, on: str) -> tuple[dict, dict]:
    retrain_steps.prepare_window(config, on)
    result = retrain_steps.train(config, on)
    manifest = json.loads((Path(result["path"]) / "manifest.json").read_text())
    return result, manifest


def test_labels_after_the_cutoff_never_reach_training(pipeline_home):
    cutoff = datetime.fromisoformat(day(7)).replace(tzinfo=UTC)
    honest = pipeline_home / "honest.parquet"
    leaky = pipeline_home / "leaky.parquet"
    base = pipeline_config(pipeline_home, dispositions=str(honest), min_labels=10)
    past = truth_dispositions(base, [day(4), day(5), day(6)], cutoff - timedelta(hours=1))
    write_dispositions(honest, past)
    # The same past plus, from the cut-off on, the opposite verdict on every user.
    future = truth_dispositions(base, [day(4), day(5), day(6)], cutoff, flip=True)
    future += truth_dispositions(base, [day(7)], cutoff + timedelta(days=3), flip=True)
    write_dispositions(leaky, past + future)
    result_honest, manifest_honest = _train(base, day(7))
    leaky_config = pipeline_config(pipeline_home, dispositions=str(leaky), min_labels=10)
    result_leaky, manifest_leaky = _train(leaky_config, day(7))
    learned = result_honest["label_weights"]
    assert learned["labelled"] == len(past) and learned["fraud"] == len(past) // 2
    assert result_leaky["label_weights"] == learned
    users = "levels", "users", "ensemble"
    honest_ensemble = manifest_honest[users[0]][users[1]][users[2]]
    assert manifest_leaky[users[0]][users[1]][users[2]] == honest_ensemble
    # Evaluation sees only the verdicts from the cut-off on: every one of them flipped.
    retrain_steps.evaluate_candidate(leaky_config, day(7))
    evaluation = json.loads((pipeline_home / "retrain" / day(7) / "evaluation.json").read_text())
    assert evaluation["label_cutoff"] == cutoff.isoformat()
    assert evaluation["candidate_labels"]["labelled"] > 0


def test_without_usable_labels_the_unsupervised_weights_stay(pipeline_home):
    cutoff = datetime.fromisoformat(day(7)).replace(tzinfo=UTC)
    only_future = pipeline_home / "future.jsonl"
    config = pipeline_config(pipeline_home, dispositions=str(only_future))
    write_dispositions(only_future, truth_dispositions(config, [day(6)], cutoff))
    result, manifest = _train(config, day(7))
    assert not result["label_weights"]["learned"]
    assert result["label_weights"]["labelled"] == 0
    plain_result, plain = _train(pipeline_config(pipeline_home), day(7))
    assert "label_weights" not in plain_result
    assert manifest["levels"]["users"]["ensemble"] == plain["levels"]["users"]["ensemble"]


def test_gate_refuses_a_candidate_worse_on_the_labels(pipeline_home):
    file = pipeline_home / "dispositions.parquet"
    # Tolerance 1 on the ground-truth metrics: only the labels can refuse the candidate.
    settings = {"dispositions": str(file), "tolerance": 1.0, "label_tolerance": 0.05}
    good = pipeline_config(pipeline_home, ("iforest",), **settings)
    after = datetime.fromisoformat(day(8)).replace(tzinfo=UTC)
    write_dispositions(file, truth_dispositions(good, [day(7)], after))
    for step in ("prepare_window", "train", "evaluate_candidate", "gate"):
        first = steps.STEPS[step](good, day(7))
    assert first["promoted"]
    worse = pipeline_config(
        pipeline_home, ("iforest",), iforest={"n_estimators": 1, "max_samples": 2}, **settings
    )
    for step in ("prepare_window", "train", "evaluate_candidate", "gate"):
        gate = steps.STEPS[step](worse, day(7))
    assert not gate["promoted"]
    assert gate["now_promoted"] == first["candidate"]
    refused = [r for r in gate["reasons"] if r.startswith("labels.") and "worse" in r]
    assert refused, gate["reasons"]
    assert not any("worse" in r for r in gate["reasons"] if not r.startswith("labels."))
    history = ModelRegistry(worse.registry_root).history()
    assert history[-1].action == "refuse"
    assert history[-1].metrics["labels"]["candidate"] == gate["labels"]["candidate"]
    assert history[-1].metrics["measured_precision"]["model_version"] == first["candidate"]
