"""Dispositions files as labels: the formats the service and the simulator write, clear
errors on bad records, the time split and the latest verdict per user."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fraudwatch.errors import UserError
from fraudwatch.feedback.labels import (
    Disposition,
    read_dispositions,
    split_by_time,
    user_labels,
    write_dispositions,
)

T = datetime(2026, 3, 7, tzinfo=UTC)
ITEMS = [
    Disposition(1, "fraud", datetime(2026, 3, 6, 9, tzinfo=UTC), "17", "ato", "v1", "ann"),
    Disposition(2, "legitimate", datetime(2026, 3, 6, 10, tzinfo=UTC), None, "ok", "v1", "bob"),
    Disposition(1, "unsure", T, None, "hmm", "v2", "ann"),
    Disposition(3, "fraud", datetime(2026, 3, 8, tzinfo=UTC), "5", "x", None, None),
]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_written_files_read_back(tmp_path, suffix):
    path = write_dispositions(tmp_path / f"d{suffix}", ITEMS)
    assert read_dispositions(path) == ITEMS


def test_the_services_answer_reads_as_a_dispositions_file(tmp_path):
    answer = {
        "page": 1,
        "total": 1,
        "items": [
            {
                "id": "ab",
                "ts": "2026-03-06T09:00:00+00:00",
                "actor": "ann",
                "role": "analyst",
                "via": "api",
                "user_id": 1,
                "tx_id": "17",
                "label": "fraud",
                "reason": "ato",
                "model_version": "v1",
                "audit_seq": 4,
            }
        ],
    }
    (tmp_path / "answer.json").write_text(json.dumps(answer))
    assert read_dispositions(tmp_path / "answer.json") == ITEMS[:1]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"user_id": 1, "label": "maybe", "ts": "2026-03-06T09:00:00Z"}, "label 'maybe'"),
        ({"user_id": 1, "label": "fraud"}, "without ts"),
        ({"user_id": "x", "label": "fraud", "ts": "2026-03-06"}, "user_id 'x'"),
        ({"user_id": 1, "label": "fraud", "ts": "yesterday"}, "ts 'yesterday'"),
    ],
)
def test_bad_records_name_the_key(tmp_path, record, message):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(UserError, match=message) as error:
        read_dispositions(path)
    assert "record 1" in str(error.value)


def test_missing_or_unknown_files_are_clear(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_dispositions(tmp_path / "none.jsonl")
    with pytest.raises(UserError, match=r"unknown format '\.csv'"):
        read_dispositions(tmp_path / "d.csv")


def test_time_split_puts_the_cutoff_itself_after():
    before, after = split_by_time(ITEMS, T)
    assert before == ITEMS[:2] and after == ITEMS[2:]
    assert all(d.ts < T for d in before) and all(d.ts >= T for d in after)


def test_latest_verdict_counts_and_unsure_withdraws():
    assert user_labels(ITEMS[:2]) == {1: 1, 2: 0}
    assert user_labels(ITEMS) == {2: 0, 3: 1}  # user 1's later `unsure` withdraws the fraud
