"""Calibrated scores keep their resolution past the training range; the ensemble's weights
follow the members' agreement; the copula member ranks rare values first."""

from __future__ import annotations

import numpy as np
from fraudwatch.models.calibration import TailCalibration
from fraudwatch.models.copod import CopodModel
from fraudwatch.models.ensemble import Ensemble, consensus_weights


def test_scores_beyond_the_training_range_still_rank():
    training = np.random.default_rng(0).normal(size=20_000)
    calibration = TailCalibration.fit(training)
    beyond = np.array([training.max() + d for d in (0.5, 1.0, 2.0, 4.0)])
    scores = calibration.score(beyond)
    assert np.all(np.diff(scores) > 0), scores  # a percentile would tie them all at 1.0
    assert np.all(scores < 1.0)


def test_a_calibrated_score_is_the_share_of_training_below():
    training = np.random.default_rng(1).exponential(size=50_000)
    calibration = TailCalibration.fit(training)
    fresh = np.random.default_rng(2).exponential(size=50_000)
    for threshold in (0.5, 0.9, 0.99, 0.999):
        share_above = float((calibration.score(fresh) >= threshold).mean())
        assert abs(share_above - (1 - threshold)) < 0.25 * (1 - threshold) + 0.002, threshold
    assert np.isnan(calibration.score(np.array([np.nan]))[0])


def test_a_member_that_disagrees_with_the_others_weighs_less():
    rng = np.random.default_rng(3)
    signal = rng.normal(size=5_000)
    members = {
        "iforest": signal + rng.normal(scale=0.3, size=5_000),
        "copod": signal + rng.normal(scale=0.3, size=5_000),
        "autoencoder": rng.normal(size=5_000),  # noise
    }
    weights = consensus_weights(members)
    assert weights["autoencoder"] < 0.1 < weights["iforest"]
    assert abs(sum(weights.values()) - 1) < 1e-9


def test_the_ensemble_uses_the_members_present_in_each_row():
    rng = np.random.default_rng(4)
    raw = {"iforest": rng.random(1_000), "lstm": rng.random(1_000)}
    ensemble = Ensemble.fit(raw)
    rows = {"iforest": np.array([0.2, 0.9]), "lstm": np.array([np.nan, np.nan])}
    scores = ensemble.score(rows)
    assert np.all(np.isfinite(scores)) and scores[1] > scores[0]
    assert Ensemble.from_json(ensemble.as_json()).score(rows).tolist() == scores.tolist()


def test_copod_ranks_a_rare_value_above_common_ones():
    rng = np.random.default_rng(5)
    x = np.column_stack(
        [rng.normal(size=5_000), rng.integers(0, 2, 5_000) * (rng.random(5_000) < 0.03)]
    )
    model = CopodModel().fit(x)
    rows = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 1.0], [30.0, 1.0]])
    scores = model.score(rows)
    assert scores[0] < scores[1] < scores[2] < scores[3], scores
