"""The scoring job's output: the data contract, ranking, reasons, models, quality."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow.parquet as pq
from fraudwatch.scoring.pipeline import ScoreOptions, score
from fraudwatch.scoring.thresholds import THRESHOLDS

from .conftest import run_cli


def _users(scored_dir):
    return pq.read_table(scored_dir / "users.parquet")


def test_contract_columns_and_ranking(scored_dir):
    users = _users(scored_dir)
    for column in (
        "rank",
        "user_id",
        "persona",
        "ensemble_score",
        "iforest_score",
        "copod_score",
        "autoencoder_score",
        "lstm_score",
        "flagged",
        "reasons",
        "top_features",
        "tx_count",
        "label",
        "scenario",
    ):
        assert column in users.column_names, column
    scores = users["ensemble_score"].to_numpy()
    assert np.all(np.diff(scores) <= 0), "users are sorted by ensemble score, descending"
    assert users["rank"].to_pylist() == list(range(1, users.num_rows + 1))
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    tx = duckdb.sql(
        f"SELECT * FROM read_parquet('{scored_dir}/transactions/*.parquet')"
    ).fetch_arrow_table()
    assert tx.num_rows == 60_000
    assert np.all(np.diff(tx["ensemble_score"].to_numpy()) <= 0)
    flagged = tx["flagged"].to_numpy().mean()
    assert 0.009 < flagged < 0.011  # the flagged share, 0.01 (scoring/thresholds.py)
    for column in (
        "tx_id",
        "user_id",
        "ts",
        "amount",
        "tx_type",
        "channel",
        "country",
        "persona",
        "hour",
        "reasons",
        "top_features",
    ):
        assert column in tx.column_names, column


def test_top_rows_have_reasons_naming_features(scored_dir):
    top = _users(scored_dir).slice(0, 20).to_pylist()
    assert all(r["reasons"] and "σ" in r["reasons"] for r in top)
    assert all(r["top_features"] and r["top_features"][0] in r["reasons"] for r in top)


def test_ensemble_finds_the_injected_anomalies(scored_dir):
    evaluation = json.loads((scored_dir / "evaluation.json").read_text())
    for level in ("users", "transactions"):
        for model in ("iforest", "copod", "autoencoder", "lstm", "ensemble"):
            assert evaluation[level][model]["roc_auc"] > 0.5, (level, model)
        assert evaluation[level]["ensemble"]["roc_auc"] > 0.9
    assert evaluation["transactions"]["ensemble"]["pr_auc"] > 0.3
    by_scenario = evaluation["transactions"]["by_scenario"]
    caught = [s for s, v in by_scenario.items() if v["recall_top_1pct"] >= 0.5]
    assert len(caught) >= 3, by_scenario  # persona drift hides inside the aggressive range


def test_insights_show_where_anomalies_concentrate(scored_dir):
    insights = json.loads((scored_dir / "insights.json").read_text())
    for key in ("by_hour", "by_tx_type", "by_persona", "by_country", "by_channel"):
        assert insights[key] and {"key", "flagged", "total", "share", "lift"} <= set(
            insights[key][0]
        )
    assert sum(r["total"] for r in insights["by_hour"]) == 60_000
    assert len(insights["by_persona"]) == 4


def test_model_manifest_and_reuse_give_the_same_scores(scored_dir, raw_dir, tmp_path):
    (version_dir,) = (scored_dir / "models").iterdir()
    manifest = json.loads((version_dir / "manifest.json").read_text())
    tx_level = manifest["levels"]["transactions"]
    assert set(tx_level["models"]) == {"iforest", "copod", "autoencoder", "lstm"}
    assert tx_level["models"]["iforest"]["params"] == {
        "n_estimators": 100,
        "max_samples": 256,
        "max_features": 1.0,
        "random_state": 0,
    }
    # Every member is calibrated and weighted; the thresholds in force are recorded.
    assert set(tx_level["calibration"]) == {"iforest", "copod", "autoencoder", "lstm"}
    assert set(tx_level["ensemble"]["weights"]) == set(tx_level["calibration"])
    assert abs(sum(tx_level["ensemble"]["weights"].values()) - 1) < 1e-9
    assert "lstm" in manifest["levels"]["users"]["calibration"]
    assert manifest["thresholds"] == THRESHOLDS.as_json()
    assert "amount_to_user_median" in tx_level["features"]
    assert (
        manifest["training"]["source_fingerprint"]
        == json.loads((raw_dir / "manifest.json").read_text())["fingerprint"]
    )
    assert manifest["metrics"]["transactions"]["ensemble"]["roc_auc"] > 0.9
    rescored = score(raw_dir, tmp_path / "again", ScoreOptions(models_dir=version_dir))
    assert rescored.model_version == manifest["version"]
    before = _users(scored_dir).sort_by("user_id")["ensemble_score"].to_numpy()
    after = _users(tmp_path / "again").sort_by("user_id")["ensemble_score"].to_numpy()
    np.testing.assert_allclose(before, after, atol=1e-9)


def test_single_model_leaves_the_others_empty(raw_dir, tmp_path):
    out = tmp_path / "scored"
    result = run_cli(
        "score",
        "--input",
        str(raw_dir),
        "--out",
        str(out),
        "--models",
        "iforest",
        "--fit-users",
        "1000",
    )
    assert result.returncode == 0, result.stderr
    users = _users(out)
    assert users["autoencoder_score"].null_count == users.num_rows
    assert users["copod_score"].null_count == users.num_rows
    # One member: the ensemble is that member's calibrated score (an affine standardisation
    # does not change a calibration).
    np.testing.assert_allclose(
        users["ensemble_score"].to_numpy(), users["iforest_score"].to_numpy(), atol=1e-9
    )


def test_top_n_is_printed_and_written(scored_dir):
    lines = (scored_dir / "top_users.csv").read_text().splitlines()
    assert len(lines) == 1 + 5 and lines[0].startswith("rank,user_id")


def test_lstm_scores_every_transaction_but_each_users_first(scored_dir):
    tx = duckdb.sql(
        f"""SELECT user_id, lstm_score, row_number() OVER (PARTITION BY user_id ORDER BY ts, tx_id)
            AS position FROM read_parquet('{scored_dir}/transactions/*.parquet')"""
    ).fetch_arrow_table()
    first = tx["position"].to_numpy() == 1
    missing = np.isnan(tx["lstm_score"].to_numpy(zero_copy_only=False).astype(float))
    assert np.array_equal(missing, first)


def test_every_model_has_recall_per_scenario(scored_dir):
    evaluation = json.loads((scored_dir / "evaluation.json").read_text())
    for level in ("users", "transactions"):
        for scenario, figures in evaluation[level]["by_scenario"].items():
            assert set(figures["models"]) >= {"iforest", "copod", "autoencoder", "ensemble"}
            for model in figures["models"].values():
                assert {"recall_top_1pct", "recall_at_budget"} <= set(model), scenario
