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


def recall_in_top(labels, scores, groups, share: float = 0.01) -> dict:
    """Per group (e.g. scenario): the share of its anomalous rows ranked in the top `share`.
    `groups` is an Arrow or numpy array of group names (null/None = no group)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    labels = np.asarray(labels)
    k = max(1, round(len(scores) * share))
    top = np.zeros(len(scores), bool)
    top[np.argsort(-scores, kind="stable")[:k]] = True
    groups = pa.chunked_array([groups]) if not isinstance(groups, pa.ChunkedArray) else groups
    groups = groups.cast(pa.string()) if pa.types.is_dictionary(groups.type) else groups
    out = {}
    for g in sorted(v for v in pc.unique(groups).to_pylist() if v is not None):
        mask = pc.fill_null(pc.equal(groups, g), False).to_numpy(zero_copy_only=False) & (
            labels == 1
        )
        if mask.any():
            out[str(g)] = {
                "anomalies": int(mask.sum()),
                "recall_top_1pct": round(float(top[mask].mean()), 4),
            }
    return out
