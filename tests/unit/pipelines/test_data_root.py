"""The pipelines' data root without a server: where a day's data lives (local folder or
s3:// prefix), the one-line errors for an unusable S3 data root, and local replacement of a
day's folder (whole, nothing left aside). The S3 side runs against a real Ceph gateway in
tests/airflow/test_daily_s3.py and tests/integration/landing/."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fraudwatch.errors import UserError
from fraudwatch.locations import atomic
from fraudwatch.locations import storage as data_root
from fraudwatch.pipelines import steps
from fraudwatch.pipelines.config import parse_config

S3_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY")  # fmt: skip


def test_the_data_root_defaults_to_home_and_keeps_s3_uris_intact(tmp_path):
    local = parse_config({"home": str(tmp_path)})
    assert local.raw_dir("2026-03-02") == tmp_path / "raw" / "2026-03-02"
    assert not local.data_on_s3
    s3 = parse_config({"home": str(tmp_path), "data_root": "s3://fraud/daily/"})
    assert s3.data_on_s3
    assert s3.raw_dir("2026-03-02") == "s3://fraud/daily/raw/2026-03-02"
    assert s3.scored_dir("2026-03-02") == "s3://fraud/daily/scored/2026-03-02"
    assert s3.registry_root == tmp_path / "models"  # the registry stays local
    assert data_root.join(s3.scored_dir("2026-03-02"), "run.json") == (
        "s3://fraud/daily/scored/2026-03-02/run.json"
    )
    elsewhere = parse_config({"home": str(tmp_path), "data_root": str(tmp_path / "data")})
    assert elsewhere.scored_dir("d") == tmp_path / "data" / "scored" / "d"


def test_a_bucket_alone_is_refused_as_data_root():
    with pytest.raises(UserError, match=r"data_root 's3://fraud': use s3://BUCKET/PREFIX"):
        parse_config({"data_root": "s3://fraud"})


def test_missing_s3_settings_name_the_key_and_the_variables(monkeypatch):
    for variable in S3_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone")
    config = parse_config({"data_root": "s3://fraud/daily"})
    with pytest.raises(UserError) as failure:
        steps.run_step("check_raw", "2026-03-02", config.as_json())
    assert str(failure.value) == (
        "data_root is s3://fraud/daily but the S3 settings are missing from the worker's "
        "environment: set AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL), AWS_SECRET_ACCESS_KEY"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    data_root.check_s3_settings("s3://fraud/daily", "data_root")  # complete now: no error


def test_a_local_day_folder_is_replaced_whole(tmp_path):
    root = tmp_path / "data"
    for rows in (5, 2):
        with atomic.written_whole(root, "scored/2026-03-02", ["run.json"]) as tmp:
            (tmp / "transactions").mkdir()
            pq.write_table(pa.table({"x": list(range(rows))}), tmp / "transactions" / "p.parquet")
            (tmp / "run.json").write_text("{}")
    day = root / "scored" / "2026-03-02"
    assert sorted(p.name for p in day.iterdir()) == ["run.json", "transactions"]
    assert data_root.dataset(day / "transactions").count_rows() == 2
    assert data_root.subfolders(root / "scored") == ["2026-03-02"]
    assert data_root.is_file(day / "run.json") and not data_root.is_file(day / "none.json")
    assert [p for p in root.rglob(".*")] == []  # nothing written aside is left


def test_a_failed_write_leaves_the_previous_day(tmp_path):
    root = tmp_path / "data"
    with atomic.written_whole(root, "features/d") as tmp:
        (tmp / "users.parquet").write_text("old")
    with pytest.raises(RuntimeError), atomic.written_whole(root, "features/d") as tmp:
        (tmp / "users.parquet").write_text("half")
        raise RuntimeError("interrupted")
    assert (root / "features" / "d" / "users.parquet").read_text() == "old"


def test_download_copies_the_tables_and_skips_metadata(tmp_path):
    raw = tmp_path / "raw" / "2026-03-02"
    for table in ("transactions/date=2026-03-02", "users", "_landing/date=2026-03-02"):
        (raw / table).mkdir(parents=True)
        pq.write_table(pa.table({"x": [1]}), raw / table / "part.parquet")
    got = data_root.download(raw, tmp_path / "copy", skip=("users",))
    assert [p.relative_to(tmp_path / "copy") for p in got] == [
        Path("transactions/date=2026-03-02/part.parquet")
    ]
    assert data_root.dataset(tmp_path / "nothing") is None
