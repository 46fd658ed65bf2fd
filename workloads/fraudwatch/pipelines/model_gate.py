"""The model gate: a candidate model version replaces the promoted one only if, on the same
labelled data, it is not worse than it by more than a tolerance on any gate metric."""

from __future__ import annotations

from dataclasses import dataclass, field

from fraudwatch.errors import UserError


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    compared: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        verdict = "promote" if self.promote else "refuse"
        return f"{verdict}: " + "; ".join(self.reasons)


def metric(evaluation: dict, path: str) -> float:
    """A value from evaluation.json by dotted path, e.g. `users.ensemble.pr_auc`."""
    node: object = evaluation
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise UserError(
                f"gate metric {path!r} is not in the evaluation (no {key!r}); choose paths "
                "like users.ensemble.pr_auc or transactions.iforest.roc_auc"
            )
        node = node[key]
    if not isinstance(node, int | float):
        raise UserError(f"gate metric {path!r} is not a number: {node!r}")
    return float(node)


def decide(
    candidate: dict, current: dict | None, metrics: list[str], tolerance: float
) -> GateDecision:
    """Compare two evaluations (evaluation.json dicts, same labelled data)."""
    if not metrics:
        raise UserError("retrain.gate_metrics is empty; name at least one metric to gate on")
    if current is None:
        compared = {m: {"candidate": metric(candidate, m), "current": None} for m in metrics}
        return GateDecision(True, ["no model is promoted yet"], compared)
    decision = GateDecision(True)
    for m in metrics:
        new, old = metric(candidate, m), metric(current, m)
        decision.compared[m] = {"candidate": new, "current": old}
        if new < old - tolerance:
            decision.promote = False
            decision.reasons.append(
                f"{m} {new:.4f} is worse than the promoted {old:.4f} by more than {tolerance}"
            )
        else:
            decision.reasons.append(f"{m} {new:.4f} vs promoted {old:.4f} (tolerance {tolerance})")
    return decision


#: The label metrics the gate compares (feedback/precision.py, budget_metrics).
LABEL_METRICS = ("precision_at_budget", "fraud_recall")


def decide_on_labels(
    decision: GateDecision,
    candidate: dict,
    current: dict | None,
    tolerance: float,
    min_labels: int,
) -> GateDecision:
    """Add the analysts' labels to a decision: on the held-out day's labelled users the
    candidate's precision at the alert budget and recall of confirmed fraud may not be worse
    than the promoted version's by more than `tolerance`. With fewer than `min_labels`
    labelled users (or nothing promoted) the labels are reported, not gated on."""
    if current is None:
        return decision
    if candidate["labelled"] < min_labels:
        decision.reasons.append(
            f"labels not gated: {candidate['labelled']} labelled users on the held-out day, "
            f"fewer than retrain.min_gate_labels = {min_labels}"
        )
        return decision
    for name in LABEL_METRICS:
        new, old = candidate.get(name), current.get(name)
        key = f"labels.{name}"
        decision.compared[key] = {"candidate": new, "current": old}
        if old is None:
            decision.reasons.append(f"{key}: the promoted version has no value to compare")
        elif new is None or new < old - tolerance:
            decision.promote = False
            shown = "none" if new is None else f"{new:.4f}"
            decision.reasons.append(
                f"{key} {shown} is worse than the promoted {old:.4f} by more than {tolerance} "
                f"on {candidate['labelled']} labelled users"
            )
        else:
            decision.reasons.append(
                f"{key} {new:.4f} vs promoted {old:.4f} (tolerance {tolerance})"
            )
    return decision
