"""Ensemble weights learned from analysts' labels (docs/feedback.md, "Learning").

The unsupervised ensemble weighs its members equally (models/ensemble.py). Once enough
labelled users exist, the retraining learns the user-level weights instead: it tries every
weighting on a simplex grid (steps of GRID_STEP) and keeps the one whose weighted statistic
ranks the labelled users best, by average precision (fraud above legitimate). Safeguards:

- at least `min_labels` labelled users in the training data, with MIN_PER_CLASS of each
  verdict, or nothing is learned (the unsupervised weights stay);
- the unsupervised weights are one of the candidates and are replaced only when weights
  chosen on part of the labels beat them by at least MIN_GAIN on the labels they were not
  chosen on (repeated stratified folds, the mean of the held-out gains): the best of a grid
  on the same few labels always looks better than it is (a few dozen frauds make a corner of
  the grid win by chance), and only a gain that survives labels the choice never saw is
  taken as real; the weights learned are then the mean of the folds' choices (bagged), so a
  corner of the grid only some folds choose is pulled back towards what the others chose;
- the ensemble is recalibrated on the whole training population with the new weights, so a
  score still means the share of that population it exceeds and the thresholds keep their
  meaning (scoring/thresholds.py).

Only labels recorded before the candidate's training cut-off reach this module (the caller
splits them with labels.split_by_time).
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import average_precision_score

from fraudwatch.features.users import USER_FEATURES
from fraudwatch.models.bundle import ModelVersion
from fraudwatch.models.ensemble import Ensemble, weighted_mean
from fraudwatch.scoring.batches import feature_matrix

MIN_LABELS = 30  # the default of retrain.min_labels
MIN_PER_CLASS = 5
GRID_STEP = 0.1
MIN_GAIN = 0.01
CV_FOLDS = 5  # at most: never more folds than the rarer verdict has labels
CV_REPEATS = 4


@dataclass
class WeightLearning:
    learned: bool
    reason: str
    labelled: int = 0
    fraud: int = 0
    unsupervised_weights: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    ap_unsupervised: float | None = None
    ap_learned: float | None = None
    held_out_gain: float | None = None  # mean AP gain on labels the weights were not chosen on

    def as_json(self) -> dict:
        return asdict(self)


def simplex_grid(names: list[str], step: float = GRID_STEP) -> list[dict[str, float]]:
    """Every weighting of `names` in multiples of `step` that sums to 1."""
    n = round(1 / step)
    grid = []
    for parts in itertools.product(range(n + 1), repeat=len(names) - 1):
        rest = n - sum(parts)
        if rest >= 0:
            grid.append(
                {name: round(k / n, 6) for name, k in zip(names, (*parts, rest), strict=True)}
            )
    return grid


def labelled_ap(
    standardised: dict[str, np.ndarray], weights: dict[str, float], y: np.ndarray
) -> float:
    """Average precision, on labelled rows, of the ensemble statistic with these weights;
    `standardised` holds the members' standardised scores of those rows only."""
    stat = weighted_mean(standardised, weights)
    finite = np.isfinite(stat)
    floor = stat[finite].min() - 1 if finite.any() else 0.0
    return float(average_precision_score(y, np.where(finite, stat, floor)))


def _best(
    unsupervised_weights: dict[str, float],
    grid: list[dict[str, float]],
    standardised: dict[str, np.ndarray],
    y: np.ndarray,
) -> tuple[dict[str, float], float, float]:
    """(the grid's best weighting on these rows, its AP, the unsupervised weights' AP); the
    unsupervised weights win ties."""
    unsupervised = labelled_ap(standardised, unsupervised_weights, y)
    best, best_ap = dict(unsupervised_weights), unsupervised
    for weights in grid:
        ap = labelled_ap(standardised, weights, y)
        if ap > best_ap + 1e-12:
            best, best_ap = weights, ap
    return best, best_ap, unsupervised


def cross_validated(
    unsupervised_weights: dict[str, float],
    grid: list[dict[str, float]],
    standardised: dict[str, np.ndarray],
    y: np.ndarray,
) -> tuple[float, dict[str, float]]:
    """Over repeated stratified folds: the mean AP gain over the unsupervised weights of the
    weights chosen on the other folds, measured on the held-out fold; and the mean of those
    choices (bagged weights: a corner of the grid that only some folds choose is pulled back
    towards what the others chose)."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    folds = min(CV_FOLDS, int(y.sum()), int(len(y) - y.sum()))
    splits = RepeatedStratifiedKFold(n_splits=folds, n_repeats=CV_REPEATS, random_state=0)
    gains, choices = [], []
    for train, test in splits.split(np.zeros(len(y)), y):
        fold = {n: v[train] for n, v in standardised.items()}
        chosen, _, _ = _best(unsupervised_weights, grid, fold, y[train])
        held = {n: v[test] for n, v in standardised.items()}
        gains.append(
            labelled_ap(held, chosen, y[test]) - labelled_ap(held, unsupervised_weights, y[test])
        )
        choices.append(chosen)
    bagged = {n: round(float(np.mean([c[n] for c in choices])), 6) for n in unsupervised_weights}
    return float(np.mean(gains)), bagged


def choose_weights(
    ensemble: Ensemble, raw: dict[str, np.ndarray], y: np.ndarray, min_labels: int
) -> WeightLearning:
    """The weights to use given the labelled rows' raw member scores `raw` and labels `y`."""
    y = np.asarray(y, dtype=int)
    fraud, n = int(y.sum()), len(y)
    base = WeightLearning(False, "", n, fraud, dict(ensemble.weights), dict(ensemble.weights))
    if len(ensemble.scales) < 2:
        base.reason = "one ensemble member: there are no weights to learn"
        return base
    if n < min_labels or min(fraud, n - fraud) < MIN_PER_CLASS:
        base.reason = (
            f"{n} labelled users ({fraud} fraud) before the cut-off; learning needs at least "
            f"{min_labels} with {MIN_PER_CLASS} of each verdict: the unsupervised weights stay"
        )
        return base
    grid = simplex_grid(list(ensemble.scales))
    # Standardised once: every weighting on the grid, in every fold, averages the same scores.
    standardised = {
        n: ensemble.scales[n].standardise(v) for n, v in raw.items() if n in ensemble.scales
    }
    unsupervised_weights = dict(ensemble.weights)
    _, best_ap, unsupervised = _best(unsupervised_weights, grid, standardised, y)
    base.ap_unsupervised, base.ap_learned = round(unsupervised, 4), round(best_ap, 4)
    if best_ap < unsupervised + MIN_GAIN:
        base.reason = (
            f"no weighting ranks the {n} labelled users better than the unsupervised weights by "
            f"{MIN_GAIN} average precision: the unsupervised weights stay"
        )
        return base
    gain, bagged = cross_validated(unsupervised_weights, grid, standardised, y)
    base.held_out_gain = round(gain, 4)
    if gain < MIN_GAIN:
        base.reason = (
            f"the best weighting ranks the {n} labelled users ({fraud} fraud) better "
            f"({unsupervised:.3f} → {best_ap:.3f}), but weights chosen on part of them gain only "
            f"{gain:+.3f} average precision on the rest (needs {MIN_GAIN}): chance, not signal; "
            "the unsupervised weights stay"
        )
        return base
    base.learned, base.weights = True, bagged
    base.ap_learned = round(labelled_ap(standardised, bagged, y), 4)
    base.reason = (
        f"weights learned from {n} labelled users ({fraud} fraud), the mean of the choices on "
        f"the folds: labelled average precision {unsupervised:.3f} → {base.ap_learned:.3f}, "
        f"{gain:+.3f} on labels held out of the choice"
    )
    return base


def _user_raw_scores(version: ModelVersion, scored: Path) -> tuple[np.ndarray, dict]:
    """(user ids, each user-level member's raw score) of the users of a scored run: the
    population the version was trained on when `scored` is its own training run."""
    users = pq.read_table(scored / "users.parquet", columns=["user_id", *USER_FEATURES])
    level = version.levels["users"]
    user_ids = users["user_id"].to_numpy()
    raw = level.raw_scores(feature_matrix(users, list(USER_FEATURES)))
    if "lstm" in level.calibration:  # as the scoring job: mean calibrated LSTM score per user
        db = duckdb.connect()
        rows = db.sql(
            f"SELECT user_id, avg(lstm_score) FROM read_parquet('{scored}/transactions/*.parquet',"
            " hive_partitioning = false) GROUP BY 1"
        ).fetchall()
        means = {int(u): np.nan if v is None else v for u, v in rows}
        raw["lstm"] = np.array([means.get(int(u), np.nan) for u in user_ids], dtype=np.float64)
    return user_ids, {n: v for n, v in raw.items() if n in level.calibration}


def learn_from_labels(
    version_dir: Path, scored: Path, labels: dict[int, int], min_labels: int = MIN_LABELS
) -> WeightLearning:
    """Learn the user-level ensemble weights of the model version in `version_dir` from
    `labels` (user_id → 1 fraud / 0 legitimate, recorded before its training cut-off) on the
    users of `scored` (the run that fitted it) and rewrite its manifest when they help.
    The manifest records the outcome under extra.label_weights either way."""
    version = ModelVersion.load(version_dir)
    ensemble = version.levels["users"].ensemble
    assert ensemble is not None
    user_ids, raw = _user_raw_scores(version, scored)
    rows = np.array([int(u) in labels for u in user_ids], dtype=bool)
    y = np.array([labels[int(u)] for u in user_ids[rows]], dtype=int)
    result = choose_weights(ensemble, {n: v[rows] for n, v in raw.items()}, y, min_labels)
    path = Path(version_dir) / "manifest.json"
    manifest = json.loads(path.read_text())
    if result.learned:
        learned = ensemble.reweighted(result.weights, raw)
        manifest["levels"]["users"]["ensemble"] = learned.as_json()
    manifest.setdefault("extra", {})["label_weights"] = result.as_json()
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)
    return result
