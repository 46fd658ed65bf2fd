"""The committed JSON Schemas match the models, and streamed documents fit the index mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fraudwatch.streaming.job import DOCUMENT_FIELDS
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
