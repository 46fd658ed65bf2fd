"""`fraudwatch_retrain` with dag.test(): a sound candidate is promoted and the model it
replaces is kept for rollback; a deliberately worse candidate is refused by the model gate,
the promoted model stays, and the refusal is recorded with its metrics."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import load_dag, small_config

DAY = datetime(2026, 3, 9, tzinfo=UTC)
WINDOW = {"window_days": 3, "min_days": 2, "tolerance": 0.02}
# One tree grown on two rows: an Isolation Forest that can barely rank anything.
SABOTAGED = {**WINDOW, "iforest": {"n_estimators": 1, "max_samples": 2}}


def _run(dag) -> dict[str, str]:
    run = dag.test(logical_date=DAY)
    return {"run": str(run.state), **{t.task_id: str(t.state) for t in run.get_task_instances()}}


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retrain")
    home = tmp / "home"
    with pytest.MonkeyPatch.context() as mp:
        good = small_config(home, retrain=WINDOW)
        first = _run(load_dag("fraudwatch_retrain.py", good, tmp, mp))
        gate_first = json.loads((home / "retrain/2026-03-09/gate.json").read_text())
        second = _run(load_dag("fraudwatch_retrain.py", good, tmp, mp))
        gate_second = json.loads((home / "retrain/2026-03-09/gate.json").read_text())
        worse = small_config(home, retrain=SABOTAGED)
        third = _run(load_dag("fraudwatch_retrain.py", worse, tmp, mp))
        gate_third = json.loads((home / "retrain/2026-03-09/gate.json").read_text())
    return {
        "home": home,
        "states": (first, second, third),
        "gates": (gate_first, gate_second, gate_third),
    }


def test_every_retrain_run_succeeds(retrained):
    for states in retrained["states"]:
        assert states["run"] == "success", states


def test_first_candidate_is_promoted_and_trained_on_the_window_before_the_holdout(retrained):
    home = retrained["home"]
    gate = retrained["gates"][0]
    assert gate["promoted"] and gate["now_promoted"] == gate["candidate"]
    assert gate["reasons"] == ["no model is promoted yet"]
    train_input = home / "retrain/2026-03-09/train_input/transactions"
    assert sorted(p.name for p in train_input.iterdir()) == ["date=2026-03-07", "date=2026-03-08"]


def test_equal_candidate_is_promoted_and_the_replaced_one_kept_for_rollback(retrained):
    first, second, _ = retrained["gates"]
    assert second["promoted"]
    assert second["now_promoted"] == second["candidate"]
    assert second["previous"] == first["candidate"]
    versions = retrained["home"] / "models/versions"
    assert (versions / first["candidate"] / "manifest.json").is_file()


def test_gate_refuses_a_deliberately_worse_model(retrained):
    _, second, third = retrained["gates"]
    assert not third["promoted"]
    assert third["now_promoted"] == second["candidate"]  # the promoted model stayed
    assert any("worse than the promoted" in r for r in third["reasons"])
    compared = third["compared"]["users.ensemble.pr_auc"]
    assert compared["candidate"] < compared["current"] - 0.02 or (
        third["compared"]["transactions.ensemble.roc_auc"]["candidate"]
        < third["compared"]["transactions.ensemble.roc_auc"]["current"] - 0.02
    )
    home = retrained["home"]
    history = [json.loads(x) for x in (home / "models/history.jsonl").read_text().splitlines()]
    assert [h["action"] for h in history] == ["promote", "promote", "refuse"]
    assert history[-1]["metrics"]["compared"] == third["compared"]
    notices = (home / "notifications.jsonl").read_text()
    assert f"candidate {third['candidate']} refused" in notices


# ---- analysts' dispositions as labels (issue 16, docs/feedback.md) ---------------------------

LABELLED = {**WINDOW, "min_labels": 10, "min_gate_labels": 5, "label_tolerance": 0.05}


@pytest.fixture(scope="module")
def with_dispositions(tmp_path_factory):
    """A first model promoted without labels; the simulated analyst judges what it flagged in
    the training window (verdicts before the cut-off) and on the held-out day (after it);
    then a sound candidate and a sabotaged one are gated with those dispositions."""
    from fraudwatch.feedback.analyst import AnalystSettings, simulate
    from fraudwatch.feedback.labels import write_dispositions

    tmp = tmp_path_factory.mktemp("retrain-labels")
    home = tmp / "home"
    folder = home / "retrain/2026-03-09"
    file = tmp / "dispositions.parquet"
    models = ["iforest", "copod"]
    with pytest.MonkeyPatch.context() as mp:
        first = _run(load_dag("fraudwatch_retrain.py", small_config(home, models=models), tmp, mp))
        judged = simulate(folder / "candidate", AnalystSettings(seed=1, coverage=1.0, delay_days=0))
        judged += simulate(folder / "eval_candidate", AnalystSettings(seed=1, coverage=1.0))
        write_dispositions(file, judged)
        labelled = {**LABELLED, "dispositions": str(file)}
        good = small_config(home, models=models, retrain=labelled)
        second = _run(load_dag("fraudwatch_retrain.py", good, tmp, mp))
        gate_second = json.loads((folder / "gate.json").read_text())
        # Tolerance 1 on the ground-truth metrics: only the labels can refuse this one.
        worse = {**labelled, "tolerance": 1.0, "iforest": SABOTAGED["iforest"]}
        third = _run(
            load_dag(
                "fraudwatch_retrain.py",
                small_config(home, models=["iforest"], retrain=worse),
                tmp,
                mp,
            )
        )
        gate_third = json.loads((folder / "gate.json").read_text())
    return {
        "home": home,
        "judged": judged,
        "states": (first, second, third),
        "gates": (gate_second, gate_third),
    }


def test_retrain_with_dispositions_succeeds_and_gates_on_labels(with_dispositions):
    for states in with_dispositions["states"]:
        assert states["run"] == "success", states
    second, _ = with_dispositions["gates"]
    assert second["promoted"], second["reasons"]
    labels = second["labels"]
    assert labels["cutoff"] == "2026-03-09T00:00:00+00:00"
    assert labels["candidate"]["labelled"] >= 5
    assert any(r.startswith("labels.fraud_recall") for r in second["reasons"])
    assert second["measured_precision"]["judged"] > 0
    # The candidate's manifest records what it learned (or why not) from the earlier verdicts.
    home = with_dispositions["home"]
    manifest = json.loads(
        (home / "models/versions" / second["candidate"] / "manifest.json").read_text()
    )
    assert manifest["extra"]["label_weights"]["labelled"] > 0


def test_gate_refuses_a_candidate_worse_on_the_dispositions(with_dispositions):
    second, third = with_dispositions["gates"]
    assert not third["promoted"]
    assert third["now_promoted"] == second["candidate"]
    assert any(r.startswith("labels.") and "worse" in r for r in third["reasons"]), third
    assert not any("worse" in r for r in third["reasons"] if not r.startswith("labels."))
    home = with_dispositions["home"]
    history = [json.loads(x) for x in (home / "models/history.jsonl").read_text().splitlines()]
    assert [h["action"] for h in history] == ["promote", "promote", "refuse"]
    assert history[-1]["metrics"]["labels"] == third["labels"]
    assert history[-1]["metrics"]["measured_precision"]["model_version"] == second["candidate"]
