"""Rank-based ensemble: each model's raw score becomes its percentile among the training
sample's scores; the ensemble is the mean of the percentiles that are present.

Percentiles against a stored reference (not against the batch being scored) make a score mean
the same thing in the batch job and in the streaming job, where one event arrives at a time."""

from __future__ import annotations

import numpy as np

REFERENCE_POINTS = 1001


def reference_quantiles(training_scores: np.ndarray) -> list[float]:
    scores = training_scores[~np.isnan(training_scores)]
    if scores.size == 0:
        return [0.0] * REFERENCE_POINTS
    return np.quantile(scores, np.linspace(0, 1, REFERENCE_POINTS)).tolist()


def percentile(raw: np.ndarray, reference: list[float]) -> np.ndarray:
    """Share of the training sample scoring below `raw` (NaN stays NaN)."""
    ref = np.asarray(reference)
    grid = np.linspace(0, 1, len(ref))
    # Ties in the reference (e.g. many zeros) take the highest percentile of the tie: a row is
    # only as unusual as the share of training rows strictly below it.
    ref_unique, last = np.unique(ref[::-1], return_index=True)
    grid_unique = grid[::-1][last]
    out = np.interp(raw, ref_unique, grid_unique, left=0.0, right=1.0)
    return np.where(np.isnan(raw), np.nan, out)


def combine(percentiles: dict[str, np.ndarray]) -> np.ndarray:
    stacked = np.vstack(list(percentiles.values()))
    with np.errstate(all="ignore"):
        count = (~np.isnan(stacked)).sum(axis=0)
        total = np.nansum(stacked, axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)
