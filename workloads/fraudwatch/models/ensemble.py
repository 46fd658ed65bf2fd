"""The ensemble: members' raw scores, robustly standardised, averaged with one equal weight per
view of the data, then calibrated like any member (docs/models.md, "Ensemble").

1. Unification. Each member's raw score (reconstruction and prediction errors on a log scale,
   since they are positive and heavy-tailed) is centred on its training median and divided by
   its training inter-quartile range. Unlike percentiles this keeps the tail's magnitude: a
   row far beyond anything seen in training stays far above one that is merely in the top
   percentile, and the median/IQR are not moved by the anomalies in the training sample.
2. Weights. One equal vote per view of the data, shared equally by the members that read it:
   the Isolation Forest, COPOD and the autoencoder read the same feature vector (one view),
   the LSTM reads the user's sequence (another). Members that read the same input err
   together, so one vote per member would count the tabular view three times and drown what
   only the sequence shows; within a view the members are built to see different things
   (trees, tails, a reconstruction) and an anomaly one of them alone sees must still lift the
   score. Weights fitted to the members' agreement were tried and measured (docs/models.md):
   they reward the members that resemble each other and cost the complementary ones. Analysts'
   labels may replace the weights (feedback/learning.py, `reweighted`).
3. Combination. The weighted mean of the standardised scores that are present (the LSTM has no
   score for a user's first transaction), then calibrated on the training sample like a member
   (calibration.py), so that the ensemble score is the share of the training population it
   exceeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraudwatch.errors import UserError
from fraudwatch.models.calibration import TailCalibration

ERROR_MODELS = frozenset({"autoencoder", "lstm"})  # compared on a log scale


@dataclass(frozen=True)
class MemberScale:
    """Robust standardisation of one member's raw score."""

    log: bool
    median: float
    spread: float

    @classmethod
    def fit(cls, name: str, raw: np.ndarray) -> MemberScale:
        log = name in ERROR_MODELS
        values = _prepare(np.asarray(raw, dtype=np.float64), log)
        values = values[np.isfinite(values)]
        if values.size == 0:
            return cls(log, 0.0, 1.0)
        q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
        spread = float(q3 - q1) or float(values.std()) or 1.0
        return cls(log, float(median), spread)

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        return (_prepare(np.asarray(raw, dtype=np.float64), self.log) - self.median) / self.spread


def _prepare(raw: np.ndarray, log: bool) -> np.ndarray:
    if not log:
        return raw
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.maximum(raw, 0.0) + 1e-12)


# What each member reads; a member not listed is a view of its own.
MEMBER_VIEWS = {"iforest": "features", "copod": "features", "autoencoder": "features"}


def view_weights(names: list[str]) -> dict[str, float]:
    """The unsupervised weighting: each view of the data present counts the same, shared
    equally by its members."""
    views = [MEMBER_VIEWS.get(n, n) for n in names]
    return {n: 1.0 / (len(set(views)) * views.count(v)) for n, v in zip(names, views, strict=True)}


def weighted_mean(standardised: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of the members present in each row (NaN where none is)."""
    total = None
    weight = None
    for name, values in standardised.items():
        w = weights.get(name, 0.0)
        present = np.isfinite(values)
        contribution = np.where(present, values * w, 0.0)
        mass = np.where(present, w, 0.0)
        total = contribution if total is None else total + contribution
        weight = mass if weight is None else weight + mass
    assert total is not None and weight is not None, "an ensemble needs at least one member"
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), np.nan)


@dataclass(frozen=True)
class Ensemble:
    scales: dict[str, MemberScale]
    weights: dict[str, float]
    calibration: TailCalibration

    @classmethod
    def fit(cls, raw: dict[str, np.ndarray]) -> Ensemble:
        scales = {name: MemberScale.fit(name, values) for name, values in raw.items()}
        standardised = {name: scales[name].standardise(v) for name, v in raw.items()}
        weights = view_weights(list(standardised))
        statistic = weighted_mean(standardised, weights)
        return cls(scales, weights, TailCalibration.fit(statistic))

    def reweighted(self, weights: dict[str, float], raw: dict[str, np.ndarray]) -> Ensemble:
        """The same members with other weights (e.g. learned from analysts' labels,
        feedback/learning.py), recalibrated on `raw`, the members' raw scores of the training
        population: a score keeps meaning the share of that population it exceeds."""
        unknown = sorted(set(weights) - set(self.scales))
        if unknown or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise UserError(
                f"ensemble weights {weights} must be >= 0, sum above 0 and name only the "
                f"members {sorted(self.scales)}"
            )
        total = sum(weights.values())
        weights = {n: weights.get(n, 0.0) / total for n in self.scales}
        reweighted = Ensemble(self.scales, weights, self.calibration)
        return Ensemble(self.scales, weights, TailCalibration.fit(reweighted.statistic(raw)))

    def statistic(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        standardised = {
            n: self.scales[n].standardise(v) for n, v in raw.items() if n in self.scales
        }
        return weighted_mean(standardised, self.weights)

    def score(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """Calibrated ensemble score in [0, 1] (0 where no member scored the row)."""
        return np.nan_to_num(self.calibration.score(self.statistic(raw)), nan=0.0)

    def as_json(self) -> dict:
        return {
            "scales": {
                n: {"log": s.log, "median": s.median, "spread": s.spread}
                for n, s in self.scales.items()
            },
            "weights": self.weights,
            "calibration": self.calibration.as_json(),
        }

    @classmethod
    def from_json(cls, data: dict) -> Ensemble:
        return cls(
            {
                n: MemberScale(bool(s["log"]), s["median"], s["spread"])
                for n, s in data["scales"].items()
            },
            {n: float(w) for n, w in data["weights"].items()},
            TailCalibration.from_json(data["calibration"]),
        )
