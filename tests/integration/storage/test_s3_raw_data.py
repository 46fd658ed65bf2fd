"""Raw and scored data on Ceph through its S3 API: generate to S3, score from S3 on both
engines, and get the same data and results as on local disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from fraudwatch.locations import storage

USERS, TRANSACTIONS = "400", "6000"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fraudwatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={
            **os.environ,
            "FRAUDWATCH_SPARK_DRIVER_MEMORY": "1g",
            "FRAUDWATCH_SPARK_PARTITIONS": "2",
        },
    )


@pytest.fixture(scope="module")
def bucket(ceph_s3) -> str:
    return f"fraudwatch-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def raw_on_s3(bucket) -> str:
    target = f"s3://{bucket}/raw"
    result = cli(
        "generate", "--out", target, "--users", USERS, "--transactions", TRANSACTIONS, "--seed", "3"
    )
    assert result.returncode == 0, result.stderr
    return target


def test_generate_writes_the_same_data_to_s3_as_to_disk(raw_on_s3, tmp_path):
    local = tmp_path / "raw"
    result = cli(
        "generate",
        "--out",
        str(local),
        "--users",
        USERS,
        "--transactions",
        TRANSACTIONS,
        "--seed",
        "3",
    )
    assert result.returncode == 0, result.stderr
    remote_manifest = json.loads(storage.read_text(f"{raw_on_s3}/manifest.json"))
    local_manifest = json.loads((local / "manifest.json").read_text())
    assert remote_manifest["fingerprint"] == local_manifest["fingerprint"]
    assert remote_manifest["counts"]["transactions"] == int(TRANSACTIONS)
    remote_files = storage.list_parquet(f"{raw_on_s3}/transactions")
    assert len(remote_files) == len(list((local / "transactions").rglob("*.parquet")))


def test_existing_s3_output_is_kept_without_overwrite(raw_on_s3):
    result = cli("generate", "--out", raw_on_s3, "--users", "40", "--transactions", "400")
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert json.loads(storage.read_text(f"{raw_on_s3}/manifest.json"))["counts"]["users"] == int(
        USERS
    )


def test_score_from_s3_with_duckdb(raw_on_s3, tmp_path):
    out = tmp_path / "scored"
    result = cli(
        "score",
        "--input",
        raw_on_s3,
        "--out",
        str(out),
        "--models",
        "iforest",
        "--fit-users",
        "200",
    )
    assert result.returncode == 0, result.stderr
    assert pq.read_metadata(out / "users.parquet").num_rows == int(USERS)
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["transactions"] == int(TRANSACTIONS) and run["input"] == raw_on_s3


@pytest.mark.spark
def test_score_from_s3_to_s3_with_spark(raw_on_s3, bucket):
    pytest.importorskip("pyspark")
    target = f"s3://{bucket}/scored-spark"
    result = cli(
        "score",
        "--input",
        raw_on_s3,
        "--out",
        target,
        "--engine",
        "spark",
        "--models",
        "iforest",
        "--fit-users",
        "200",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads(storage.read_text(f"{target}/run.json"))
    assert run["engine"] == "spark" and run["counts"]["transactions"] == int(TRANSACTIONS)
    fs = storage.s3_filesystem()
    users = pq.read_table(f"{bucket}/scored-spark/users.parquet", filesystem=fs)
    assert users.num_rows == int(USERS)
    assert users["ensemble_score"].to_pylist() == sorted(
        users["ensemble_score"].to_pylist(), reverse=True
    )
    assert (
        fs.get_file_info(f"{bucket}/scored-spark/transactions/part-0.parquet").type
        == pafs.FileType.File
    )
