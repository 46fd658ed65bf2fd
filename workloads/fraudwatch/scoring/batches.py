"""Scoring a stream of transaction batches with one model version.

The same function runs in the DuckDB path (a Python loop over ordered Arrow batches) and in the
Spark path (inside mapInArrow, with the model version broadcast to executors). Rows must arrive
grouped by user and sorted by time within each user, because the LSTM reads each user's
sequence; `complete_users` makes sure no user is split across two scoring calls."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa

from fraudwatch.contract.scored_output import TRANSACTION_CONTEXT_COLUMNS
from fraudwatch.features.transactions import TRANSACTION_FEATURES
from fraudwatch.models import MODEL_NAMES
from fraudwatch.models.bundle import LevelModels
from fraudwatch.scoring.reasons import explain

PASS_THROUGH = (*TRANSACTION_CONTEXT_COLUMNS, "persona", "hour", "label", "scenario")


def complete_users(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Regroup batches (sorted by user_id) so that every user's rows are in one table."""
    carry: pa.Table | None = None
    for batch in batches:
        table = pa.Table.from_batches([batch])
        if carry is not None and carry.num_rows:
            table = pa.concat_tables([carry, table.cast(carry.schema)])
        if table.num_rows == 0:
            continue
        uid = table["user_id"].to_numpy()
        cut = int(np.searchsorted(uid, uid[-1], side="left"))
        if cut:
            yield table.slice(0, cut)
        carry = table.slice(cut)
    if carry is not None and carry.num_rows:
        yield carry


def feature_matrix(table: pa.Table, features: list[str]) -> np.ndarray:
    return np.column_stack(
        [table[f].to_numpy(zero_copy_only=False).astype(np.float64) for f in features]
    )


def score_table(models: LevelModels, table: pa.Table, keep: np.ndarray | None = None) -> pa.Table:
    """Scores, ensemble and reasons for a table of complete users' transactions.

    `keep` (a boolean mask) marks the rows to score and return; the others are context: the
    stream passes each user's kept history so that the LSTM reads the sequence before the
    micro-batch, and only the micro-batch's rows are scored by the other members."""
    x = feature_matrix(table, models.features)
    uid = table["user_id"].to_numpy()
    external = None
    if keep is not None:
        lstm = models.models.get("lstm")
        if lstm is not None:
            sequence = lstm.score(models.scaler.transform(x), uid)
            external = {"lstm": sequence[keep]}
        table, x, uid = table.filter(pa.array(keep)), x[keep], uid[keep]
    z, calibrated, ensemble = models.score(x, uid, external=external)
    top, reasons = explain(z, x, models.features)
    columns = {c: table[c] for c in PASS_THROUGH if c in table.column_names}
    for name in MODEL_NAMES:
        values = calibrated.get(name)
        columns[f"{name}_score"] = (
            pa.array(values, pa.float64(), mask=np.isnan(values))
            if values is not None
            else pa.nulls(len(table), pa.float64())
        )
    columns["ensemble_score"] = pa.array(ensemble)
    columns["reasons"] = reasons
    columns["top_features"] = top
    return pa.table(columns)


def score_batches(
    models: LevelModels, batches: Iterable[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    for table in complete_users(batches):
        yield from score_table(models, table).to_batches()


__all__ = ["TRANSACTION_FEATURES", "complete_users", "score_batches", "score_table"]
