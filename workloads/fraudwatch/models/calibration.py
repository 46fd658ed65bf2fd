"""Calibrated scores: a raw anomaly score becomes the share of the training sample that scored
lower, with an exponential tail fitted past the training sample's upper quantiles so that
scores beyond anything seen in training still rank (docs/models.md, "Calibration").

The body is the empirical distribution function stored as quantiles; the tail is the
peaks-over-threshold model of extreme-value theory with shape 0 (an exponential fitted to the
excesses over the `1 - TAIL_SHARE` quantile). Shape 0 is the conservative choice: it needs no
shape estimate from the few training points in the tail, and it never saturates at 1.0 the way
a plain percentile does for every score above the training maximum.

A calibrated score means the same thing in the batch job, the stream and an inline decision,
since it depends only on the stored training distribution, never on the batch being scored:
0.99 = more anomalous than 99 % of the training population, so a threshold is an alert budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUANTILE_POINTS = 1001
TAIL_SHARE = 0.02  # the top 2 % of training scores is modelled by the exponential tail


@dataclass(frozen=True)
class TailCalibration:
    quantiles: tuple[float, ...]  # QUANTILE_POINTS training quantiles (the body)
    tail_start: float  # the 1 - TAIL_SHARE training quantile
    tail_scale: float  # mean excess of training scores over tail_start

    @classmethod
    def fit(cls, training_scores: np.ndarray) -> TailCalibration:
        scores = np.asarray(training_scores, dtype=np.float64)
        scores = scores[np.isfinite(scores)]
        if scores.size == 0:
            return cls((0.0,) * QUANTILE_POINTS, 0.0, 1.0)
        quantiles = np.quantile(scores, np.linspace(0, 1, QUANTILE_POINTS))
        start = float(np.quantile(scores, 1 - TAIL_SHARE))
        excess = scores[scores > start] - start
        scale = float(excess.mean()) if excess.size else 0.0
        if not scale > 0:
            # A tail without spread (e.g. many tied maxima): one robust spread of the body.
            q1, q3 = np.quantile(scores, [0.25, 0.75])
            scale = float(q3 - q1) or float(scores.std()) or 1.0
        return cls(tuple(float(q) for q in quantiles), start, scale)

    def tail_probability(self, raw: np.ndarray) -> np.ndarray:
        """Estimated share of the training population scoring at or above `raw` (NaN stays
        NaN): the empirical share in the body, the exponential tail past `tail_start`."""
        raw = np.asarray(raw, dtype=np.float64)
        ref = np.asarray(self.quantiles)
        grid = np.linspace(0, 1, len(ref))
        # Ties in the reference (e.g. many zeros) take the highest share of the tie: a row is
        # only as unusual as the share of training rows strictly below it.
        ref_unique, last = np.unique(ref[::-1], return_index=True)
        grid_unique = grid[::-1][last]
        below = np.interp(raw, ref_unique, grid_unique, left=0.0, right=1.0)
        body = 1.0 - below
        with np.errstate(over="ignore", invalid="ignore"):
            tail = TAIL_SHARE * np.exp(-(raw - self.tail_start) / self.tail_scale)
        q = np.where(raw > self.tail_start, np.minimum(tail, TAIL_SHARE), np.maximum(body, 0.0))
        return np.where(np.isnan(raw), np.nan, q)

    def score(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated score in [0, 1): 1 - tail probability."""
        return 1.0 - self.tail_probability(raw)

    def as_json(self) -> dict:
        return {
            "quantiles": list(self.quantiles),
            "tail_start": self.tail_start,
            "tail_scale": self.tail_scale,
        }

    @classmethod
    def from_json(cls, data: dict) -> TailCalibration:
        return cls(tuple(data["quantiles"]), float(data["tail_start"]), float(data["tail_scale"]))
