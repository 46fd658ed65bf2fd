"""The Elasticsearch documents of a scored micro-batch, serialised as vectors by DuckDB.

Turning 20,000 scored rows into Python dicts and then into JSON text was about a quarter of
the stream's time (docs/benchmarks.md). DuckDB writes each document's JSON from the Arrow
columns instead (`to_json` per field, nulls left out and NaN as null, as before), so only the finished
lines reach Python. The text differs from `json.dumps`'s (shortest round-trip numbers, UTF-8
rather than \\u escapes) but decodes to the same document: tests/unit/core/
test_stream_documents.py compares them field by field with the row-by-row construction kept
here as `documents_one_by_one`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from fraudwatch.contract.scored_output import (
    ENSEMBLE_SCORE,
    MODEL_SCORE_COLUMNS,
    TRANSACTION_CONTEXT_COLUMNS,
)
from fraudwatch.elasticsearch.client import document_value

#: The fields of a streamed document: those of the fraudwatch-transactions index template
#: (dashboards/elasticsearch/), which maps strictly. A test checks the two agree.
DOCUMENT_FIELDS = (
    *TRANSACTION_CONTEXT_COLUMNS,
    "persona",
    "hour",
    "label",
    "scenario",
    *MODEL_SCORE_COLUMNS,
    ENSEMBLE_SCORE,
    "reasons",
    "top_features",
    "flagged",
    "model_version",
    "record_type",
    "scored_at",
)
#: Fields every document of a batch shares, given as parameters.
_CONSTANT_FIELDS = ("model_version", "record_type", "scored_at")
_SCORED = "fraudwatch_scored"


@dataclass
class ScoredDocuments:
    """A batch's documents: ids `<tx_id>:<model_version>`, JSON sources, flags."""

    ids: list[str]
    sources: list[str]
    flagged: np.ndarray
    tx_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def flagged_documents(self) -> list[tuple[str, dict[str, Any]]]:
        """(id, source) of the flagged documents, as the alert hook takes them."""
        return [(self.ids[n], json.loads(self.sources[n])) for n in np.flatnonzero(self.flagged)]


def _field_sql(name: str, arrow_type: pa.DataType) -> str:
    """The `,"name":value` fragment of one column; empty when the value is null."""
    column = f'"{name}"'
    if pa.types.is_timestamp(arrow_type):
        # As datetime.isoformat in UTC with a Z: microseconds only when there are some.
        value = (
            f"lpad(CAST(year({column}) AS VARCHAR), 4, '0') "
            f"|| strftime({column}, '-%m-%dT%H:%M:%S') "
            f"|| CASE WHEN microsecond({column}) % 1000000 = 0 THEN '' ELSE '.' "
            f"|| lpad(CAST(microsecond({column}) % 1000000 AS VARCHAR), 6, '0') END || 'Z'"
        )
        value = f"'\"' || {value} || '\"'"
    else:
        value = f"CAST(to_json({column}) AS VARCHAR)"
    key = f"',{json.dumps(name)}:'"
    if pa.types.is_floating(arrow_type):
        # NaN is written as null, as json.dumps of the row's dict wrote it.
        return (
            f"CASE WHEN {column} IS NULL THEN '' WHEN isnan({column}) THEN {key} || 'null' "
            f"ELSE {key} || {value} END"
        )
    return f"CASE WHEN {column} IS NULL THEN '' ELSE {key} || {value} END"


class DocumentBuilder:
    """Builds the documents of scored micro-batches on its own DuckDB connection (one per
    thread: registered tables are per connection)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._queries: dict[pa.Schema, str] = {}

    def _db(self) -> Any:
        db = getattr(self._local, "db", None)
        if db is None:
            import duckdb

            db = self._local.db = duckdb.connect()
            db.execute("SET TimeZone = 'UTC'")
        return db

    def _query(self, schema: pa.Schema) -> str:
        query = self._queries.get(schema)
        if query is None:
            parts = []
            for name in DOCUMENT_FIELDS:
                if name == "flagged":
                    parts.append(
                        "',\"flagged\":' || CASE WHEN ensemble_score >= $threshold "
                        "AND NOT isnan(ensemble_score) THEN 'true' ELSE 'false' END"
                    )
                elif name in _CONSTANT_FIELDS:
                    parts.append(f"',{json.dumps(name)}:' || ${name}")
                elif name in schema.names:
                    parts.append(_field_sql(name, schema.field(name).type))
            source = "'{' || ltrim(concat(" + ", ".join(parts) + "), ',') || '}'"
            query = self._queries[schema] = (
                f"SELECT CAST(tx_id AS VARCHAR) || ':' || $model_version_text AS id, "
                f"{source} AS source, "
                "ensemble_score >= $threshold AND NOT isnan(ensemble_score) AS flagged, "
                f"tx_id FROM {_SCORED}"
            )
        return query

    def build(
        self, scored: pa.Table, model_version: str, threshold: float, scored_at: str
    ) -> ScoredDocuments:
        if "ts" in scored.column_names:  # as naive UTC: formatted without a time zone
            position = scored.schema.get_field_index("ts")
            scored = scored.set_column(position, "ts", scored["ts"].cast(pa.timestamp("us")))
        db = self._db()
        db.register(_SCORED, scored)
        try:
            result = db.sql(
                self._query(scored.schema),
                params={
                    "threshold": threshold,
                    "model_version_text": model_version,
                    "model_version": json.dumps(model_version),
                    "record_type": json.dumps("transaction"),
                    "scored_at": json.dumps(scored_at),
                },
            ).to_arrow_table()
        finally:
            db.unregister(_SCORED)
        return ScoredDocuments(
            ids=result["id"].to_pylist(),
            sources=result["source"].to_pylist(),
            flagged=result["flagged"].to_numpy(zero_copy_only=False).astype(bool),
            tx_ids=result["tx_id"].to_numpy(zero_copy_only=False),
        )


def documents_one_by_one(
    scored: pa.Table, model_version: str, threshold: float, scored_at: str
) -> list[tuple[str, dict[str, Any]]]:
    """The documents built row by row in Python, as the stream did before `DocumentBuilder`:
    the reference its test compares with."""
    out = []
    for row in scored.to_pylist():
        row["flagged"] = bool(row["ensemble_score"] >= threshold)
        row["model_version"] = model_version
        row["record_type"] = "transaction"
        row["scored_at"] = scored_at
        source = {k: document_value(row.get(k)) for k in DOCUMENT_FIELDS if row.get(k) is not None}
        out.append((f"{row['tx_id']}:{model_version}", source))
    return out
