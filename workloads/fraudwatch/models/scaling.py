"""Missing values and scaling, fitted on the training sample and stored with the models.

Each feature goes through a signed log (tames heavy tails such as gaps in seconds), then is
centred on the training median and divided by the training inter-quartile range (falling back
to the standard deviation, then 1, for near-constant features). Missing values become the
training median, i.e. 0 after scaling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLIP = 50.0  # scaled values beyond this many spreads are clipped


@dataclass
class FeatureScaler:
    features: list[str]
    median: list[float]  # of the signed log, per feature
    spread: list[float]  # of the signed log, per feature
    raw_median: list[float]  # in the feature's own units, to fill missing values

    @classmethod
    def fit(cls, features: list[str], x: np.ndarray) -> FeatureScaler:
        y = _signed_log(x)
        median = np.nanmedian(y, axis=0)
        q1, q3 = np.nanpercentile(y, [25, 75], axis=0)
        spread = q3 - q1
        std = np.nanstd(y, axis=0)
        spread = np.where(spread > 1e-9, spread, np.where(std > 1e-9, std, 1.0))
        median = np.where(np.isnan(median), 0.0, median)
        raw_median = np.sign(median) * np.expm1(np.abs(median))
        return cls(list(features), median.tolist(), spread.tolist(), raw_median.tolist())

    def impute(self, x: np.ndarray) -> np.ndarray:
        """Raw values with missing ones replaced by the training median (for tree models,
        which need no scaling and whose splits should follow the original units)."""
        x = np.asarray(x, dtype=np.float64)
        return np.where(np.isnan(x), np.asarray(self.raw_median), x)

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = (_signed_log(x) - np.asarray(self.median)) / np.asarray(self.spread)
        z = np.where(np.isnan(z), 0.0, z)
        return np.clip(z, -CLIP, CLIP).astype(np.float32)

    def as_json(self) -> dict:
        return {
            "features": self.features,
            "median": self.median,
            "spread": self.spread,
            "raw_median": self.raw_median,
        }


def _signed_log(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.log1p(np.abs(x))
