"""Ranking metrics against ground-truth labels.

ROC-AUC and PR-AUC (average precision) over all rows; precision and recall in the top k, where
k defaults to the number of true anomalies (so precision@k = recall@k = R-precision)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def ranking_metrics(labels: np.ndarray, scores: np.ndarray, k: int | None = None) -> dict:
    labels = np.asarray(labels).astype(int)
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        return {
            "roc_auc": None,
            "pr_auc": None,
            "precision_at_k": None,
            "recall_at_k": None,
            "k": 0,
        }
    k = int(k or positives)
    top = np.argsort(-scores, kind="stable")[:k]
    hits = int(labels[top].sum())
    finite = np.where(np.isinf(scores), np.nanmin(scores[~np.isinf(scores)], initial=0) - 1, scores)
    return {
        "roc_auc": round(float(roc_auc_score(labels, finite)), 4),
        "pr_auc": round(float(average_precision_score(labels, finite)), 4),
        "precision_at_k": round(hits / k, 4),
        "recall_at_k": round(hits / positives, 4),
        "k": k,
    }


#: Alerts an analyst team reviews per scoring run: the fixed budget that recall is also
#: measured at, beside the top 1 % (docs/models.md, "Evaluation").
ANALYST_BUDGET = 100


def _top_mask(scores: np.ndarray, k: int) -> np.ndarray:
    top = np.zeros(len(scores), bool)
    top[np.argsort(-scores, kind="stable")[:k]] = True
    return top


def recall_by_scenario(
    labels,
    scores: dict[str, np.ndarray],
    groups,
    known: tuple[str, ...] = (),
    share: float = 0.01,
    budget: int = ANALYST_BUDGET,
) -> dict:
    """Per scenario and per model: the share of the scenario's anomalous rows ranked in the
    top `share` and in the top `budget` rows. `scores` maps a model name (and "ensemble") to
    its scores; `groups` is an Arrow or numpy array of scenario names (null = none). Every
    scenario in `known` is reported, with 0 anomalies and null recalls when it has no victims
    in the data, so that a missing scenario is visible rather than dropped."""
    import pyarrow as pa
    import pyarrow.compute as pc

    labels = np.asarray(labels)
    n = len(labels)
    k_share = max(1, round(n * share))
    k_budget = max(1, min(budget, n))
    tops = {}
    for name, values in scores.items():
        values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf)
        tops[name] = (_top_mask(values, k_share), _top_mask(values, k_budget))
    groups = pa.chunked_array([groups]) if not isinstance(groups, pa.ChunkedArray) else groups
    groups = groups.cast(pa.string()) if pa.types.is_dictionary(groups.type) else groups
    present = {v for v in pc.unique(groups).to_pylist() if v is not None}
    out: dict = {}
    for g in sorted(present | set(known)):
        mask = pc.fill_null(pc.equal(groups, g), False).to_numpy(zero_copy_only=False) & (
            labels == 1
        )
        count = int(mask.sum())
        per_model = {
            name: {
                "recall_top_1pct": round(float(top[mask].mean()), 4) if count else None,
                "recall_at_budget": round(float(at_budget[mask].mean()), 4) if count else None,
            }
            for name, (top, at_budget) in tops.items()
        }
        ensemble = per_model.get("ensemble", {})
        out[str(g)] = {
            "anomalies": count,
            "recall_top_1pct": ensemble.get("recall_top_1pct"),
            "recall_at_budget": ensemble.get("recall_at_budget"),
            "budget": k_budget,
            "models": per_model,
        }
    return out
