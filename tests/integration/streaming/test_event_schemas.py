"""The committed JSON Schemas match the models, and streamed documents fit the index mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fraudwatch.streaming.es_documents import DOCUMENT_FIELDS
from fraudwatch.streaming.schemas import InvalidEvent, schema_files, validate

REPO = Path(__file__).resolve().parents[3]


def test_committed_json_schemas_are_current():
    for path, text in schema_files().items():
        assert path.is_file(), f"{path} missing: run python -m fraudwatch.streaming.schemas"
        assert path.read_text() == text, f"{path} stale: run python -m fraudwatch.streaming.schemas"


def test_streamed_fields_are_mapped_by_the_transactions_template():
    template = REPO / "dashboards/elasticsearch/index-templates/fraudwatch-transactions.json"
    mapped = set(json.loads(template.read_text())["template"]["mappings"]["properties"])
    assert set(DOCUMENT_FIELDS) <= mapped


def test_a_login_with_a_naive_timestamp_is_refused_with_the_fix():
    value = {
        "schema_version": 1,
        "event_type": "login",
        "event": {
            "event_id": 1,
            "user_id": 1,
            "ts": "2026-01-01T10:00:00",
            "ip": "10.0.0.1",
            "device_id": "dev-1",
            "country": "DE",
            "method": "otp",
            "success": True,
        },
    }
    with pytest.raises(InvalidEvent, match="needs a UTC offset"):
        validate("logins", json.dumps(value).encode())


TRANSACTION = {
    "tx_id": 7,
    "user_id": 1,
    "ts": "2026-01-01T10:00:00Z",
    "amount": 12.5,
    "currency": "EUR",
    "tx_type": "payment",
    "channel": "web",
    "ip": "10.0.0.1",
    "device_id": "dev-1",
    "country": "DE",
    "counterparty": "shop-1",
    "status": "completed",
}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        # Ids are int64 in the raw tables: a larger one would fail the whole micro-batch
        # (and every retry of it) when the batch is converted, so it is refused here.
        ({"tx_id": 2**64}, "tx_id"),
        ({"user_id": 2**63}, "user_id"),
        ({"ts": "0001-01-01T00:00:00+01:00"}, "out of range once converted to UTC"),
    ],
)
def test_a_transaction_the_raw_tables_cannot_hold_is_refused(change, needle):
    value = {
        "schema_version": 1,
        "event_type": "transaction",
        "event": {**TRANSACTION, **change},
    }
    with pytest.raises(InvalidEvent, match=needle):
        validate("transactions", json.dumps(value).encode())
    ok = {**value, "event": TRANSACTION}
    assert validate("transactions", json.dumps(ok).encode())["tx_id"] == 7
