"""The Isolation Forest reproduces the published ROC-AUCs on real labelled data sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_cli

CALIBRATION = Path(__file__).resolve().parents[4] / "shared" / "data" / "calibration"
# ROC-AUC of a correct Isolation Forest (100 trees, 256 samples), from the data sets' README.
REFERENCE_ROC_AUC = {
    "shuttle": 0.997,
    "cardio": 0.926,
    "mammography": 0.861,
    "breastw": 0.988,
    "annthyroid": 0.832,
}


@pytest.mark.parametrize("name", sorted(REFERENCE_ROC_AUC))
def test_iforest_matches_the_reference_and_other_models_beat_chance(name):
    path = CALIBRATION / f"{name}.parquet"
    if not path.is_file():
        pytest.skip(f"calibration data not found at {path} (shared/ sits beside the repository)")
    result = run_cli(
        "evaluate", "--input", str(path), "--label-column", "label", "--repeats", "3", "--json"
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert abs(metrics["iforest"]["roc_auc"] - REFERENCE_ROC_AUC[name]) <= 0.02
    assert metrics["autoencoder"]["roc_auc"] > 0.5
    assert metrics["ensemble"]["roc_auc"] > 0.5
    assert set(metrics["iforest"]) >= {"roc_auc", "pr_auc", "precision_at_k", "recall_at_k"}


def test_evaluate_reads_csv_with_any_label_name(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    normal = rng.normal(0, 1, size=(500, 3))
    outliers = rng.normal(6, 1, size=(10, 3))
    rows = [",".join(f"{v:.4f}" for v in r) + ",0" for r in normal] + [
        ",".join(f"{v:.4f}" for v in r) + ",1" for r in outliers
    ]
    path = tmp_path / "points.csv"
    path.write_text("a,b,c,is_fraud\n" + "\n".join(rows) + "\n")
    result = run_cli("evaluate", "--input", str(path), "--label-column", "is_fraud", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["iforest"]["roc_auc"] > 0.95
