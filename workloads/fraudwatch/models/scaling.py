"""Missing values and scaling, fitted on the training sample and stored with the models.

Two scalings, each for the readers it suits (measured in docs/models.md):
- `transform`: a signed log (tames heavy tails such as gaps in seconds), centred on the training
  median and divided by the training inter-quartile range (falling back to the standard
  deviation, then 1, for near-constant features). The LSTM and the explanations read it.
- `standardise`: the imputed raw feature minus its training mean, over its training standard
  deviation. The autoencoder reads it: on the public data sets it ranked anomalies better on 7
  of 10 sets than the signed-log scaling, which compresses exactly the large deviations an
  autoencoder should fail to reconstruct.
Missing values become the training median."""

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
    mean: list[float] | None = None  # of the imputed raw feature (None: versions before 0.2)
    std: list[float] | None = None

    @classmethod
    def fit(cls, features: list[str], x: np.ndarray) -> FeatureScaler:
        x = np.asarray(x, dtype=np.float64)
        y = _signed_log(x)
        median = np.nanmedian(y, axis=0)
        q1, q3 = np.nanpercentile(y, [25, 75], axis=0)
        spread = q3 - q1
        std = np.nanstd(y, axis=0)
        spread = np.where(spread > 1e-9, spread, np.where(std > 1e-9, std, 1.0))
        median = np.where(np.isnan(median), 0.0, median)
        raw_median = np.sign(median) * np.expm1(np.abs(median))
        imputed = np.where(np.isnan(x), raw_median, x)
        mean = imputed.mean(axis=0)
        std = imputed.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(
            list(features),
            median.tolist(),
            spread.tolist(),
            raw_median.tolist(),
            mean.tolist(),
            std.tolist(),
        )

    def impute(self, x: np.ndarray) -> np.ndarray:
        """Raw values with missing ones replaced by the training median (for tree models,
        which need no scaling and whose splits should follow the original units)."""
        x = np.asarray(x, dtype=np.float64)
        return np.where(np.isnan(x), np.asarray(self.raw_median), x)

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = (_signed_log(x) - np.asarray(self.median)) / np.asarray(self.spread)
        z = np.where(np.isnan(z), 0.0, z)
        return np.clip(z, -CLIP, CLIP).astype(np.float32)

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """Imputed raw values as standard scores of the training sample (the autoencoder's
        input)."""
        if self.mean is None or self.std is None:
            return self.transform(x)
        z = (self.impute(x) - np.asarray(self.mean)) / np.asarray(self.std)
        return np.clip(z, -CLIP, CLIP).astype(np.float32)

    def as_json(self) -> dict:
        return {
            "features": self.features,
            "median": self.median,
            "spread": self.spread,
            "raw_median": self.raw_median,
            "mean": self.mean,
            "std": self.std,
        }


def _signed_log(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.log1p(np.abs(x))
