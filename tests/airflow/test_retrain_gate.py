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
