"""The Isolation Forest scores a few rows (an inline decision's one) from its trees' flat
arrays with numpy (`models.iforest.FlatForest`, issue 19): the scores must be scikit-learn's
`score_samples`, whatever the rows: values on the split thresholds, outside the training
range, infinite or missing, with every feature or a subsample per tree."""

from __future__ import annotations

import numpy as np
import pytest
from fraudwatch.models.iforest import FLAT_MAX_ROWS, FlatForest, IForestModel, IForestParams
from sklearn.ensemble import IsolationForest


def training(seed: int, rows: int = 3_000, columns: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns)) * rng.uniform(0.1, 100, size=columns)
    x[:, 0] = rng.integers(0, 3, size=rows)  # a flag-like feature: many ties
    x[:, 1] = np.round(x[:, 1], 1)
    return x


def probes(forest: IsolationForest, x: np.ndarray, seed: int) -> np.ndarray:
    """Rows a model meets: training rows, fresh ones far outside, rows on the thresholds
    of the trees' splits (and just off them in float32), infinities and missing values."""
    rng = np.random.default_rng(seed)
    fresh = rng.normal(size=(500, x.shape[1])) * x.std(axis=0) * 5
    on_split = x[rng.integers(0, len(x), size=400)].copy()
    thresholds = [
        (f, t)
        for estimator, features in zip(forest.estimators_, forest.estimators_features_, strict=True)
        for f, t in zip(estimator.tree_.feature, estimator.tree_.threshold, strict=True)
        if f >= 0
        for f in [features[f]]
    ]
    for i, row in enumerate(on_split):
        feature, threshold = thresholds[rng.integers(len(thresholds))]
        nudge = (0.0, np.float32(threshold) - threshold, 1e-7 * threshold, -1e-7 * threshold)
        row[feature] = threshold + nudge[i % 4]
    odd = x[rng.integers(0, len(x), size=200)].copy()
    odd[::4, rng.integers(x.shape[1])] = np.inf
    odd[1::4, rng.integers(x.shape[1])] = -np.inf
    odd[2::4, rng.integers(x.shape[1])] = np.nan
    odd[3::8] = np.nan  # every value missing
    odd[7::8, 0] = 1e39  # beyond float32: infinity once cast, as scikit-learn casts it
    return np.vstack([x[:500], fresh, on_split, odd])


@pytest.mark.parametrize(
    ("seed", "params"),
    [
        (0, {}),
        (1, {"max_features": 0.5}),  # each tree grown on a subsample of the features
        (2, {"n_estimators": 37, "max_samples": 64}),
    ],
)
def test_flat_trees_score_as_scikit_learn(seed: int, params: dict) -> None:
    x = training(seed)
    model = IForestModel(IForestParams(random_state=seed, **params)).fit(x)
    assert model.forest is not None
    flat = FlatForest(model.forest)
    rows = probes(model.forest, x, seed)
    expected = model.forest.score_samples(rows)
    got = flat.score_samples(rows)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert np.array_equal(got, expected)  # in fact bit for bit
    # One row at a time, as the decisions score, and through the model's own `score`.
    for row in rows[::25]:
        one = row[None, :]
        assert np.array_equal(model.score(one), -model.forest.score_samples(one))


def test_small_inputs_use_the_flat_trees_and_large_ones_scikit_learn() -> None:
    x = training(3, rows=1_000)
    model = IForestModel().fit(x)
    assert model.forest is not None
    for rows in (1, 2, FLAT_MAX_ROWS, FLAT_MAX_ROWS + 1, 1_000):
        assert np.array_equal(model.score(x[:rows]), -model.forest.score_samples(x[:rows]))


def test_a_forest_grown_on_one_row_scores_as_scikit_learn() -> None:
    x = training(4, rows=1)
    model = IForestModel().fit(x)
    assert model.forest is not None
    rows = training(5, rows=5)
    assert np.array_equal(model.score(rows), -model.forest.score_samples(rows))
    assert np.all(model.score(rows) == model.score(rows)[0])  # no path to tell them apart
