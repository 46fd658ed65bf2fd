"""Empirical-copula tail probabilities (COPOD; Li, Zhao, Botta, Ionescu & Hu, ICDM 2020).

Each feature's training distribution is stored as quantiles. A row's score adds up, over the
features, how far into the tails of the training distribution its values fall: for each
feature the larger of -log of the tail probability on the side its skewness points to and the
mean of -log P(X <= x) and -log P(X >= x), as in the paper. It needs no training beyond the quantiles, has no
parameter to tune, and explains itself feature by feature.

Why not PyOD's COPOD: its `decision_function` recomputes the distribution functions over the
training rows *plus the rows being scored*, so a transaction's score would depend on the rest
of its batch; a fraud score must be the same in a 10M-row batch, a micro-batch of the stream
and a single inline decision. Here the training quantiles are stored with the model version.

Beyond the training range a value keeps ranking: its tail surprisal grows by one unit per
inter-quartile range past the training extreme (a linear extension in log-probability).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

POINTS = 1001


@dataclass(frozen=True)
class CopodParams:
    points: int = POINTS  # training quantiles stored per feature


class CopodModel:
    name = "copod"

    def __init__(self, params: CopodParams | None = None) -> None:
        self.params = params or CopodParams()
        self.quantiles: np.ndarray | None = None  # [points, features]
        self.spread: np.ndarray | None = None  # per feature, for the extension past the range
        self.right_skewed: np.ndarray | None = None  # per feature

    def fit(self, x: np.ndarray) -> CopodModel:
        x = np.asarray(x, dtype=np.float64)
        self.quantiles = np.quantile(x, np.linspace(0, 1, self.params.points), axis=0)
        q1, q3 = np.quantile(x, [0.25, 0.75], axis=0)
        std = x.std(axis=0)
        self.spread = np.where(q3 - q1 > 1e-12, q3 - q1, np.where(std > 1e-12, std, 1.0))
        centred = x - x.mean(axis=0)
        with np.errstate(all="ignore"):
            skew = (centred**3).mean(axis=0) / np.maximum(std, 1e-12) ** 3
        self.right_skewed = np.nan_to_num(skew) >= 0
        return self

    def _surprisal(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(-log left tail, -log right tail) per row and feature."""
        assert self.quantiles is not None and self.spread is not None
        n = self.quantiles.shape[0]
        floor = 1.0 / (2 * n)  # the smallest tail probability the stored quantiles resolve
        left = np.empty_like(x)
        right = np.empty_like(x)
        for j in range(x.shape[1]):
            q = self.quantiles[:, j]
            col = x[:, j]
            at_or_below = np.searchsorted(q, col, side="right") / n
            at_or_above = 1.0 - np.searchsorted(q, col, side="left") / n
            left[:, j] = -np.log(np.maximum(at_or_below, floor))
            right[:, j] = -np.log(np.maximum(at_or_above, floor))
            left[:, j] += np.maximum(q[0] - col, 0.0) / self.spread[j]
            right[:, j] += np.maximum(col - q[-1], 0.0) / self.spread[j]
        return left, right

    def score(self, x: np.ndarray) -> np.ndarray:
        assert self.right_skewed is not None, "fit or load the model first"
        x = np.asarray(x, dtype=np.float64)
        left, right = self._surprisal(x)
        skew_side = np.where(self.right_skewed, right, left)
        return np.maximum(skew_side, (left + right) / 2).sum(axis=1)

    def save(self, folder: Path) -> str:
        assert self.quantiles is not None and self.spread is not None
        assert self.right_skewed is not None
        data = {
            "quantiles": self.quantiles.tolist(),
            "spread": self.spread.tolist(),
            "right_skewed": self.right_skewed.tolist(),
        }
        (folder / "copod.json").write_text(json.dumps(data))
        return "copod.json"

    @classmethod
    def load(cls, folder: Path, params: dict) -> CopodModel:
        model = cls(CopodParams(**params))
        data = json.loads((folder / "copod.json").read_text())
        model.quantiles = np.asarray(data["quantiles"], dtype=np.float64)
        model.spread = np.asarray(data["spread"], dtype=np.float64)
        model.right_skewed = np.asarray(data["right_skewed"], dtype=bool)
        return model

    def params_json(self) -> dict:
        return asdict(self.params)
