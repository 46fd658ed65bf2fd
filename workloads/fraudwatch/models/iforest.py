"""Isolation Forest (Liu, Ting & Zhou 2008) from scikit-learn, with the seed's parameters.

A few rows (an inline decision scores one) are scored from the fitted trees' flattened arrays
with numpy, every tree at once (`FlatForest`): scikit-learn walks the 100 trees one by one
with per-tree dispatch and input checks, which costs far more than the walk itself on one
row. The result is scikit-learn's `score_samples` bit for bit (same float32 input, same
comparisons, same per-tree sums in the same order; tests/unit/core/test_iforest_flat.py).
Larger inputs keep scikit-learn."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length

#: Up to this many rows are scored with `FlatForest`, more with scikit-learn.
FLAT_MAX_ROWS = 256


@dataclass(frozen=True)
class IForestParams:
    n_estimators: int = 100  # numEstimators: trees in the forest
    max_samples: int = 256  # maxSamples: rows each tree is grown on (the paper's psi)
    max_features: float = 1.0  # share of features each tree sees
    random_state: int = 0


class FlatForest:
    """A fitted IsolationForest's trees as flat arrays, walked for all trees at once.

    Node `i` of tree `t` is row `offset[t] + i` of the arrays. A leaf points to itself on
    both sides, so walking every tree `max_depth` steps ends each row at its leaf."""

    def __init__(self, forest: IsolationForest) -> None:
        trees = [estimator.tree_ for estimator in forest.estimators_]
        sizes = np.array([tree.node_count for tree in trees], dtype=np.intp)
        self.roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        n_features = forest.n_features_in_
        subsample = forest._max_features != n_features
        left, right, feature, threshold, missing_left, path = [], [], [], [], [], []
        for t, (tree, features) in enumerate(zip(trees, forest.estimators_features_, strict=True)):
            base = self.roots[t]
            nodes = np.arange(tree.node_count, dtype=np.intp)
            leaf = tree.children_left == -1
            left.append(np.where(leaf, nodes, tree.children_left) + base)
            right.append(np.where(leaf, nodes, tree.children_right) + base)
            used = np.where(leaf, 0, tree.feature)
            # The tree was grown on X[:, features] when features were subsampled.
            feature.append(np.asarray(features)[used] if subsample else used)
            threshold.append(tree.threshold)
            missing_left.append(tree.missing_go_to_left.astype(bool))
            # What scikit-learn adds per tree for a row ending in that leaf, computed as it
            # does: decision path length + average path length of the leaf's samples - 1.
            path.append(
                forest._decision_path_lengths[t] + forest._average_path_length_per_tree[t] - 1.0
            )
        self.left = np.concatenate(left)
        self.right = np.concatenate(right)
        self.feature = np.concatenate(feature).astype(np.intp)
        self.threshold = np.concatenate(threshold)
        self.missing_left = np.concatenate(missing_left)
        self.path = np.concatenate(path)
        self.max_depth = max(tree.max_depth for tree in trees)
        self.denominator = len(trees) * _average_path_length([forest._max_samples])

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn's `IsolationForest.score_samples(x)` (the paper's -s(x, n))."""
        # As scikit-learn validates the input: float32 values, compared with the float64
        # thresholds; NaN takes the side the node sends missing values to.
        with np.errstate(over="ignore"):  # beyond float32: infinity, as scikit-learn casts
            x = np.asarray(x, dtype=np.float32)
        rows = np.arange(len(x))[:, None]
        node = np.broadcast_to(self.roots, (len(x), len(self.roots)))
        for _ in range(self.max_depth):
            value = x[rows, self.feature[node]]
            go_left = np.where(
                np.isnan(value), self.missing_left[node], value <= self.threshold[node]
            )
            node = np.where(go_left, self.left[node], self.right[node])
        per_tree = self.path[node]
        # Summed tree after tree, as scikit-learn does, so the sums are the same bits.
        depths = np.zeros(len(x))
        for column in per_tree.T:
            depths += column
        scores = 2 ** (
            -np.divide(
                depths, self.denominator, out=np.ones_like(depths), where=self.denominator != 0
            )
        )
        return -scores


class IForestModel:
    name = "iforest"

    def __init__(self, params: IForestParams | None = None) -> None:
        self.params = params or IForestParams()
        self.forest: IsolationForest | None = None
        self._flat: FlatForest | None = None

    def fit(self, x: np.ndarray) -> IForestModel:
        p = self.params
        self.forest = IsolationForest(
            n_estimators=p.n_estimators,
            max_samples=min(p.max_samples, len(x)),
            max_features=p.max_features,
            random_state=p.random_state,
            n_jobs=-1,  # scoring 10M rows: trees are scored in parallel threads
        ).fit(x)
        self._flat = None
        return self

    def flat(self) -> FlatForest:
        """The fitted trees as flat arrays (built on first use)."""
        assert self.forest is not None, "fit or load the model first"
        if self._flat is None:
            self._flat = FlatForest(self.forest)
        return self._flat

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score in (0, 1]: the paper's s(x, n); higher is more anomalous."""
        assert self.forest is not None, "fit or load the model first"
        if len(x) <= FLAT_MAX_ROWS:
            return -self.flat().score_samples(x)
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
