"""`fraudwatch land` without a broker: arguments, how a day's partition replaces the previous
one on local disk, and how a malformed record is dated for its dead-letter file."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from fraudwatch import landing
from fraudwatch.errors import UserError
from typer.testing import CliRunner


def test_dates_and_durations_parse_or_say_what_is_expected():
    assert landing.parse_day("2026-03-02") == date(2026, 3, 2)
    with pytest.raises(UserError, match=r"--date '2026-3-2x' is not a date; use YYYY-MM-DD"):
        landing.parse_day("2026-3-2x")
    assert landing.parse_duration("90m") == timedelta(minutes=90)
    assert landing.parse_duration("6h") == timedelta(hours=6)
    assert landing.parse_duration("2d") == timedelta(days=2)
    assert landing.parse_duration("") is None
    with pytest.raises(UserError, match=r"use e\.g\. 30m, 6h or 2d"):
        landing.parse_duration("6 hours")


def _stage(tmp_path, day: str, rows: int):
    import pyarrow as pa

    staging = tmp_path / f"staging-{rows}"
    tables = {
        "transactions": pa.table({"tx_id": list(range(rows))}),
        "logins": pa.table({"event_id": list(range(rows))}),
        "api_calls": pa.table({"event_id": list(range(rows))}),
    }
    letters = [{"reason": "bad"}] * (rows % 2)
    landing._write_staged(staging, day, tables, letters, {"counts": {"rows": rows}})
    return staging


def test_a_day_replaces_its_own_partition_and_leaves_other_days(tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "raw"
    landing._place(_stage(tmp_path, "2026-03-01", 3), out, "2026-03-01")
    landing._place(_stage(tmp_path, "2026-03-02", 5), out, "2026-03-02")
    landing._place(_stage(tmp_path, "2026-03-02", 2), out, "2026-03-02")
    day2 = out / "transactions" / "date=2026-03-02"
    assert [p.name for p in day2.iterdir()] == [landing.PART_NAME]
    assert pq.read_table(day2).num_rows == 2
    assert pq.read_table(out / "transactions" / "date=2026-03-01").num_rows == 3
    manifest = out / "_landing" / "date=2026-03-02" / "manifest.json"
    assert json.loads(manifest.read_text()) == {"counts": {"rows": 2}}
    assert (out / "_landing" / "date=2026-03-02" / "dead-letter.jsonl").read_text() == ""
    assert landing.landing_manifest(out, "2026-03-01") == {"counts": {"rows": 3}}
    assert landing.landing_manifest(out, "2026-03-03") is None
    hidden = [p for p in out.rglob(".*")]
    assert hidden == []  # no staging or replaced folders left behind


def test_a_malformed_record_is_dated_by_its_event_time_when_readable():
    value = json.dumps({"event": {"ts": "2026-03-02T23:59:59Z", "amount": -1}}).encode()
    assert landing._event_time_of(value) == datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC)
    assert landing._event_time_of(b"\xff") is None
    assert landing._event_time_of(b'{"event": {"ts": "2026-03-02T10:00:00"}}') is None  # no zone
    assert landing._event_time_of(None) is None


def test_the_command_refuses_bad_arguments_before_contacting_kafka(tmp_path):
    from fraudwatch.cli import app

    result = CliRunner().invoke(
        app, ["land", "--date", "yesterday", "--out", str(tmp_path / "raw")]
    )
    assert result.exit_code == 2
    assert "--date 'yesterday' is not a date" in result.output
    result = CliRunner().invoke(app, ["land", "--date", "2026-03-02", "--out", "s3://bucket-only"])
    assert result.exit_code == 2
    assert "use s3://BUCKET/PREFIX" in result.output
    assert not (tmp_path / "raw").exists()
