"""Isolation Forest (Liu, Ting & Zhou 2008) from scikit-learn, with the seed's parameters."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import IsolationForest


@dataclass(frozen=True)
class IForestParams:
    n_estimators: int = 100  # numEstimators: trees in the forest
    max_samples: int = 256  # maxSamples: rows each tree is grown on (the paper's psi)
    max_features: float = 1.0  # share of features each tree sees
    random_state: int = 0


class IForestModel:
    name = "iforest"

    def __init__(self, params: IForestParams | None = None) -> None:
        self.params = params or IForestParams()
        self.forest: IsolationForest | None = None

    def fit(self, x: np.ndarray) -> IForestModel:
        p = self.params
        self.forest = IsolationForest(
            n_estimators=p.n_estimators,
            max_samples=min(p.max_samples, len(x)),
            max_features=p.max_features,
            random_state=p.random_state,
            n_jobs=-1,  # scoring 10M rows: trees are scored in parallel threads
        ).fit(x)
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score in (0, 1]: the paper's s(x, n); higher is more anomalous."""
        assert self.forest is not None, "fit or load the model first"
        return -self.forest.score_samples(x)

    def save(self, folder: Path) -> str:
        joblib.dump(self.forest, folder / "iforest.joblib")
        return "iforest.joblib"

    @classmethod
    def load(cls, folder: Path, params: dict) -> IForestModel:
        model = cls(IForestParams(**params))
        model.forest = joblib.load(folder / "iforest.joblib")
        return model

    def params_json(self) -> dict:
        return asdict(self.params)
