"""The model gate promotes a candidate only if it is not worse than the promoted version
beyond the tolerance, on every gate metric."""

from __future__ import annotations

import pytest
from fraudwatch.errors import UserError
from fraudwatch.pipelines.model_gate import decide

METRICS = ["users.ensemble.pr_auc", "transactions.ensemble.roc_auc"]


def _evaluation(user_pr_auc: float, tx_roc_auc: float) -> dict:
    return {
        "users": {"ensemble": {"pr_auc": user_pr_auc, "roc_auc": 0.9}},
        "transactions": {"ensemble": {"roc_auc": tx_roc_auc, "pr_auc": 0.2}},
    }


def test_first_candidate_is_promoted():
    decision = decide(_evaluation(0.5, 0.8), None, METRICS, 0.02)
    assert decision.promote
    assert decision.compared["users.ensemble.pr_auc"] == {"candidate": 0.5, "current": None}


def test_slightly_worse_within_tolerance_is_promoted():
    assert decide(_evaluation(0.49, 0.79), _evaluation(0.5, 0.8), METRICS, 0.02).promote


def test_worse_beyond_tolerance_on_one_metric_is_refused_with_the_reason():
    decision = decide(_evaluation(0.6, 0.70), _evaluation(0.5, 0.8), METRICS, 0.02)
    assert not decision.promote
    assert decision.summary.startswith("refuse")
    assert "transactions.ensemble.roc_auc 0.7000 is worse than the promoted 0.8000" in (
        decision.summary
    )


def test_unknown_metric_path_is_a_clear_error():
    with pytest.raises(UserError, match=r"users\.ensemble\.f1"):
        decide(_evaluation(0.5, 0.8), None, ["users.ensemble.f1"], 0.02)
    with pytest.raises(UserError, match="gate_metrics is empty"):
        decide(_evaluation(0.5, 0.8), None, [], 0.02)
