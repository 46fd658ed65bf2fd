"""`fraudwatch evaluate`: the models on any labelled table of numeric features.

Unsupervised, as in the literature: fit on all rows without the label, score all rows, then
compare the ranking with the label. Parquet or CSV; every column but the label must be numeric.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from fraudwatch.errors import UserError
from fraudwatch.evaluation.metrics import ranking_metrics
from fraudwatch.models.bundle import LevelModels, ModelSettings, check_models
from fraudwatch.models.iforest import IForestParams

TABULAR_MODELS = ("iforest", "copod", "autoencoder")


def load_labelled(path: Path, label_column: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"--input {path} does not exist or is not a file; give a Parquet or CSV file"
        )
    suffix = path.suffix.lower()
    reader = {
        ".parquet": "read_parquet",
        ".pq": "read_parquet",
        ".csv": "read_csv_auto",
        ".tsv": "read_csv_auto",
    }.get(suffix)
    if reader is None:
        raise UserError(f"--input {path}: unsupported file type {suffix!r}; use .parquet or .csv")
    try:
        table: pa.Table = (
            duckdb.connect().sql(f"SELECT * FROM {reader}(?)", params=[str(path)]).to_arrow_table()
        )
    except duckdb.Error as exc:
        raise UserError(f"--input {path} could not be read: {str(exc).splitlines()[0]}") from None
    if label_column not in table.column_names:
        raise UserError(
            f"--label-column {label_column!r} is not in {path.name}; columns: {', '.join(table.column_names[:20])}"
        )
    if table.num_rows == 0:
        raise UserError(f"--input {path} has no rows")
    features = [c for c in table.column_names if c != label_column]
    bad = [
        c
        for c in features
        if not (
            str(table.schema.field(c).type).startswith(
                ("int", "uint", "float", "double", "decimal", "bool")
            )
        )
    ]
    if bad:
        raise UserError(
            f"non-numeric feature column(s) {', '.join(bad)} in {path.name}; drop or encode them first"
        )
    if not features:
        raise UserError(f"{path.name} has no feature columns besides {label_column!r}")
    raw_label = table[label_column].to_numpy(zero_copy_only=False)
    try:
        label = np.asarray(raw_label, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"--label-column {label_column!r} must be 0/1 or true/false") from None
    if np.isnan(label).any() or not set(np.unique(label)) <= {0.0, 1.0}:
        raise UserError(f"--label-column {label_column!r} must hold only 0 and 1 (1 = anomaly)")
    x = np.column_stack(
        [table[c].to_numpy(zero_copy_only=False).astype(np.float64) for c in features]
    )
    return x, label.astype(int), features


def evaluate_table(
    path: Path, label_column: str, models: list[str], repeats: int = 1, k: int | None = None
) -> dict:
    """{model: {roc_auc, pr_auc, precision_at_k, recall_at_k}} averaged over `repeats` seeds."""
    models = check_models(models)
    if "lstm" in models:
        raise UserError(
            "the lstm model reads per-user transaction sequences; a flat table has none. Use --models iforest,autoencoder"
        )
    if repeats < 1:
        raise UserError("--repeats must be at least 1")
    x, label, features = load_labelled(path, label_column)
    if label.sum() == 0:
        raise UserError(
            f"--label-column {label_column!r} has no anomalies (no 1s); nothing to evaluate"
        )
    runs: dict[str, list[dict]] = {}
    for seed in range(repeats):
        settings = ModelSettings(iforest=IForestParams(random_state=seed))
        settings.autoencoder = type(settings.autoencoder)(random_state=seed)
        fitted = LevelModels.fit("rows", features, x, models, settings)
        _, calibrated, ensemble = fitted.score(x)
        raw = fitted.raw_scores(x)
        for name, scores in raw.items():
            runs.setdefault(name, []).append(ranking_metrics(label, scores, k))
        if len(calibrated) > 1:
            runs.setdefault("ensemble", []).append(ranking_metrics(label, ensemble, k))
    return {name: _mean(results) for name, results in runs.items()}


def _mean(results: list[dict]) -> dict:
    keys = ("roc_auc", "pr_auc", "precision_at_k", "recall_at_k")
    out = {k: round(float(np.mean([r[k] for r in results])), 4) for k in keys}
    out["k"] = results[0]["k"]
    return out
