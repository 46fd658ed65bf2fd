"""The loop end to end on generated days with the simulated analyst and a fixed seed: a first
unsupervised model, then two retraining cycles that read the analyst's dispositions (weights
learned from the labels recorded before each cut-off, the gate judging on those recorded
after it). The analyst works the alert queue and a small control sample below the alert line,
so each cycle has enough labelled users to learn from. On later held-out days the promoted
model's precision at the alert budget is at least the first model's."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from fraudwatch.feedback.analyst import AnalystSettings, simulate
from fraudwatch.feedback.labels import write_dispositions
from fraudwatch.feedback.learning import MIN_LABELS
from fraudwatch.models.registry import ModelRegistry
from fraudwatch.pipelines import daily_steps, steps
from fraudwatch.pipelines.daily_steps import score_options
from fraudwatch.scoring.pipeline import score as run_score

from .conftest import LOOP_DAYS, day, pipeline_config

#: The days after the last retraining (day 10), which no model or gate has seen.
LATER_DAYS = tuple(day(n) for n in range(11, LOOP_DAYS + 1))
ANALYST = AnalystSettings(seed=5, coverage=0.8, error_rate=0.05, delay_days=0.5, control_share=0.02)


def retrain(config, on: str) -> dict:
    for step in ("prepare_window", "train", "evaluate_candidate", "gate"):
        result = steps.STEPS[step](config, on)
    return result


def analyst_reviews(config, days: list[str], found: list, file) -> None:
    """Score each day with the promoted model (the daily job) and let the analyst judge it."""
    for d in days:
        daily_steps.score(config, d)
        found += simulate(config.scored_dir(d), ANALYST)
    write_dispositions(file, sorted(found, key=lambda x: (x.ts, x.user_id)))


def precision_at_budget(scored) -> float:
    users = pq.read_table(scored / "users.parquet", columns=["flagged", "label"]).to_pylist()
    flagged = [u["label"] for u in users if u["flagged"]]
    return sum(flagged) / len(flagged)


@pytest.fixture(scope="module")
def loop(loop_raw, tmp_path_factory):
    from .conftest import split_into_days

    home = tmp_path_factory.mktemp("loop") / "pipeline"
    split_into_days(loop_raw, home, LOOP_DAYS)
    file = home / "dispositions.parquet"
    unsupervised = pipeline_config(home)
    first = retrain(unsupervised, day(4))  # trained on days 1-3, no labels yet
    config = pipeline_config(home, dispositions=str(file))
    found: list = []
    analyst_reviews(config, [day(4), day(5), day(6)], found, file)
    cycle1 = retrain(config, day(7))
    analyst_reviews(config, [day(7), day(8), day(9)], found, file)
    cycle2 = retrain(config, day(10))
    registry = ModelRegistry(config.registry_root)
    later = {}
    for name, version in (("first", first["candidate"]), ("promoted", registry.promoted())):
        for d in LATER_DAYS:
            out = home / "later" / name / d
            run_score(config.raw_dir(d), out, score_options(config, registry.path(version)))
            later[(name, d)] = precision_at_budget(out)
    return {"home": home, "gates": (first, cycle1, cycle2), "later": later, "found": found}


def test_first_model_is_unsupervised_and_later_candidates_read_the_labels(loop):
    first, cycle1, cycle2 = loop["gates"]
    assert first["promoted"] and "labels" not in first
    for gate in (cycle1, cycle2):
        assert gate["labels"]["candidate"]["labelled"] > 0
        assert gate["measured_precision"]["judged"] > 0
    trained = json.loads((loop["home"] / "retrain" / day(7) / "evaluation.json").read_text())
    assert trained["label_cutoff"] == f"{day(7)}T00:00:00+00:00"


def test_each_cycle_weighs_the_members_on_enough_labels(loop):
    """With the control sample, both cycles have labels of both verdicts to learn from: the
    weights were chosen on them (learned, or kept because none ranked them better)."""
    for d, gate in ((day(7), loop["gates"][1]), (day(10), loop["gates"][2])):
        version = loop["home"] / "retrain" / d / "candidate" / "models" / gate["candidate"]
        learning = json.loads((version / "manifest.json").read_text())["extra"]["label_weights"]
        assert learning["labelled"] >= MIN_LABELS, learning["reason"]
        assert learning["ap_unsupervised"] is not None, learning["reason"]


def test_promoted_model_is_at_least_as_precise_on_later_days(loop):
    later = loop["later"]
    first = sum(later[("first", d)] for d in LATER_DAYS)
    promoted = sum(later[("promoted", d)] for d in LATER_DAYS)
    assert promoted >= first
