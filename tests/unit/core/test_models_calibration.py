"""Calibrated scores keep their resolution past the training range; an anomaly that one
ensemble member alone sees still ranks at the top; the copula member ranks rare values
first."""

from __future__ import annotations

import numpy as np
from fraudwatch.models.calibration import TailCalibration
from fraudwatch.models.copod import CopodModel
from fraudwatch.models.ensemble import Ensemble


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


def _top_percent(ensemble: Ensemble, raw: dict[str, np.ndarray]) -> set[int]:
    """The rows of the top 1 % by ensemble score."""
    n = len(next(iter(raw.values())))
    return set(np.argsort(-ensemble.score(raw), kind="stable")[: n // 100].tolist())


def test_an_anomaly_only_one_member_sees_still_ranks_at_the_top():
    # Two members that resemble each other and one that sees something else: the ensemble must
    # not drown the third (weights fitted to the members' agreement did: the third got almost
    # none, and what only it saw fell out of the top 1 %).
    rng = np.random.default_rng(3)
    n = 5_000
    shared = rng.normal(size=n)
    raw = {
        "iforest": shared + rng.normal(scale=0.3, size=n),
        "copod": shared + rng.normal(scale=0.3, size=n),
        "autoencoder": rng.exponential(size=n),  # a reconstruction error
    }
    # Ordinary for the two that agree, a reconstruction error far past training for the third.
    seen_by_one = np.arange(10)
    raw["iforest"][seen_by_one] = raw["copod"][seen_by_one] = 0.0
    raw["autoencoder"][seen_by_one] = 1e4
    ensemble = Ensemble.fit(raw)
    assert set(ensemble.weights.values()) == {1 / 3}
    assert set(seen_by_one) <= _top_percent(ensemble, raw)


def test_the_sequence_view_is_not_outvoted_by_three_readers_of_one_feature_vector():
    # The three tabular members read the same features and miss what only the user's sequence
    # shows: one vote per view keeps those rows in the top 1 %, one vote per member did not.
    rng = np.random.default_rng(6)
    n = 5_000
    shared = rng.normal(size=n)
    raw = {
        "iforest": shared + rng.normal(scale=0.2, size=n),
        "copod": shared + rng.normal(scale=0.2, size=n),
        "autoencoder": np.exp(shared + rng.normal(scale=0.2, size=n)),
        "lstm": rng.exponential(size=n),
    }
    seen_by_sequence = np.arange(20)
    # Ordinary for the three that read the features, a prediction error far out for the LSTM.
    raw["iforest"][seen_by_sequence] = raw["copod"][seen_by_sequence] = 0.0
    raw["autoencoder"][seen_by_sequence] = 1.0
    raw["lstm"][seen_by_sequence] = 50.0
    ensemble = Ensemble.fit(raw)
    assert ensemble.weights == {
        "iforest": 1 / 6,
        "copod": 1 / 6,
        "autoencoder": 1 / 6,
        "lstm": 1 / 2,
    }
    assert set(seen_by_sequence) <= _top_percent(ensemble, raw)
    per_member = ensemble.reweighted(dict.fromkeys(raw, 0.25), raw)
    assert not set(seen_by_sequence) <= _top_percent(per_member, raw)


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
