"""The stream's Elasticsearch documents, written as vectors by DuckDB (`DocumentBuilder`,
issue 19), decode to exactly the documents built row by row in Python before
(`documents_one_by_one`): same ids, same fields, same values bit for bit, nulls left out and
NaN as null, timestamps in the same ISO form, strings escaped."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from fraudwatch.streaming.es_documents import (
    DOCUMENT_FIELDS,
    DocumentBuilder,
    documents_one_by_one,
)

NAN = math.nan


def scored_table() -> pa.Table:
    """Rows shaped as `score_transactions` returns them, with the awkward values."""
    rows = [
        {
            "tx_id": 1,
            "user_id": 11,
            "ts": datetime(2026, 1, 1, 1, 56, 31, 1750, tzinfo=UTC),
            "amount": 322.18,
            "currency": "GBP",
            "tx_type": "payment",
            "channel": "web",
            "country": "GB",
            "ip": "86.235.123.99",
            "device_id": "dev-176",
            "counterparty": 'cp "quoted" \\ back\nslash \u00e9 \u0001',
            "status": "completed",
            "persona": None,
            "hour": 1,
            "label": 0,
            "scenario": None,
            "iforest_score": 0.9417073622284945,
            "copod_score": 0.1 + 0.2,
            "autoencoder_score": 1e-7,
            "lstm_score": NAN,
            "ensemble_score": 0.99,
            "reasons": "new_country=1 (+3.7\u03c3); hour=1 (-3.3\u03c3)",
            "top_features": ["new_country", "hour"],
        },
        {
            "tx_id": 2**62,
            "user_id": 12,
            "ts": datetime(2026, 3, 1, 0, 0, 0, tzinfo=UTC),
            "amount": 0.0,
            "currency": "EUR",
            "tx_type": "withdrawal",
            "channel": "atm",
            "country": "FR",
            "ip": "10.0.0.1",
            "device_id": "dev-1",
            "counterparty": "cp-1",
            "status": "completed",
            "persona": "loose_passive",
            "hour": 0,
            "label": 1,
            "scenario": "account_takeover",
            "iforest_score": 123456789.12345679,
            "copod_score": None,
            "autoencoder_score": 5e-324,
            "lstm_score": 0.5,
            "ensemble_score": 0.98999999,
            "reasons": "",
            "top_features": [],
        },
    ]
    schema = pa.schema(
        [
            ("tx_id", pa.int64()),
            ("user_id", pa.int64()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("amount", pa.float64()),
            *[(c, pa.string()) for c in ("currency", "tx_type", "channel", "country")],
            *[(c, pa.string()) for c in ("ip", "device_id", "counterparty", "status")],
            ("persona", pa.string()),
            ("hour", pa.int32()),
            ("label", pa.int8()),
            ("scenario", pa.string()),
            *[
                (f"{m}_score", pa.float64())
                for m in ("iforest", "copod", "autoencoder", "lstm", "ensemble")
            ],
            ("reasons", pa.string()),
            ("top_features", pa.list_(pa.string())),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


@pytest.mark.parametrize("threshold", [0.99, 0.5, 1.0])
def test_vectorised_documents_decode_to_the_row_by_row_ones(threshold: float) -> None:
    table = scored_table()
    expected = documents_one_by_one(table, 'v1-"x"', threshold, "2026-12-07T10:00:00Z")
    got = DocumentBuilder().build(table, 'v1-"x"', threshold, "2026-12-07T10:00:00Z")
    assert got.ids == [doc_id for doc_id, _ in expected]
    decoded = [json.loads(source) for source in got.sources]
    assert decoded == [source for _, source in expected]
    for mine, theirs in zip(decoded, expected, strict=True):
        assert list(mine) == list(theirs[1])  # and the fields in the same order
        for name, value in theirs[1].items():  # floats bit for bit, not just ==
            assert repr(mine[name]) == repr(value), name
    assert list(got.flagged) == [source["flagged"] for _, source in expected]
    assert got.flagged_documents() == [(i, s) for i, s in expected if s["flagged"]]


def test_every_document_field_is_written_when_present() -> None:
    got = DocumentBuilder().build(scored_table(), "v1", 0.5, "2026-12-07T10:00:00Z")
    fields = set(json.loads(got.sources[1]))
    assert fields == set(DOCUMENT_FIELDS) - {"copod_score"}  # null: left out
