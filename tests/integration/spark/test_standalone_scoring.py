"""`fraudwatch score --engine spark` on a Spark standalone cluster (a master and a worker on
127.0.0.1, not local[N]) gives the results `--engine duckdb` gives: the users ranking, the
ranked transactions and their flagged set, the top-N, the insights and the evaluation; and the
job really ran on that cluster (the master lists it as a finished application)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.servers.spark_standalone import StandaloneCluster

pytestmark = pytest.mark.spark

USERS, TRANSACTIONS, TOP = "2000", "10000", "25"
# The LSTM brings the per-user aggregate of transaction scores into play. COPOD is left out:
# its empirical distribution functions are steps at the training sample's values, and the two
# engines' features differ in the last bit (their logarithms), which moves the sample's own
# rows across a step by up to 0.003 of score: not a float tolerance.
MODELS = "iforest,lstm"
SCORES = ("ensemble_score", "iforest_score", "copod_score", "autoencoder_score", "lstm_score")


def fraudwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fraudwatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("standalone") / "raw"
    result = fraudwatch(
        "generate", "--out", str(out), "--users", USERS, "--transactions", TRANSACTIONS,
        "--seed", "11", "--days", "14", "--fraud-rate", "0.004",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _score(raw: Path, out: Path, engine: str, env: dict[str, str] | None = None) -> Path:
    result = fraudwatch(
        "score", "--input", str(raw), "--out", str(out), "--engine", engine,
        "--models", MODELS, "--fit-users", "1000", "--top", TOP,
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    return out


@pytest.fixture(scope="module")
def duckdb_scored(raw: Path) -> Path:
    return _score(raw, raw.parent / "scored-duckdb", "duckdb")


@pytest.fixture(scope="module")
def spark_scored(raw: Path, spark_cluster: StandaloneCluster) -> Path:
    env = {
        "FRAUDWATCH_SPARK_MASTER": spark_cluster.master_url,
        "SPARK_LOCAL_IP": "127.0.0.1",  # the driver listens on loopback for the executor
        "FRAUDWATCH_SPARK_DRIVER_MEMORY": "1g",
        "FRAUDWATCH_SPARK_EXECUTOR_MEMORY": "1g",  # the worker offers 1 GiB
        "FRAUDWATCH_SPARK_PARTITIONS": "2",
    }
    return _score(raw, raw.parent / "scored-spark", "spark", env)


def _transactions(scored: Path) -> pa.Table:
    """The ranked transactions, files read in name order (the contract's rank order)."""
    parts = sorted((scored / "transactions").glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts])


def _assert_close(a: pa.Table, b: pa.Table, columns) -> None:
    for column in columns:
        x = a[column].to_numpy(zero_copy_only=False).astype(float)
        y = b[column].to_numpy(zero_copy_only=False).astype(float)
        assert np.array_equal(np.isnan(x), np.isnan(y)), f"{column}: missing values differ"
        ok = ~np.isnan(x)
        np.testing.assert_allclose(x[ok], y[ok], rtol=1e-6, atol=1e-9, err_msg=column)


def test_the_spark_job_ran_on_the_standalone_cluster(spark_scored, spark_cluster):
    run = json.loads((spark_scored / "run.json").read_text())
    assert run["engine"] == "spark"
    assert run["spark"]["master"] == spark_cluster.master_url
    app_id = run["spark"]["application_id"]
    deadline = time.monotonic() + 60
    while True:  # the master marks the application finished once the driver has gone
        finished = {a["id"]: a for a in spark_cluster.status().get("completedapps", [])}
        if app_id in finished or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert app_id in finished, spark_cluster.status()
    assert finished[app_id]["name"] == "fraudwatch"
    assert finished[app_id]["state"] == "FINISHED"


def test_the_same_files(duckdb_scored, spark_scored):
    def names(scored: Path) -> set[str]:
        return {p.name for p in scored.iterdir()} - {"run.json"}

    assert names(spark_scored) == names(duckdb_scored)
    spark_parts = sorted(p.name for p in (spark_scored / "transactions").iterdir())
    assert spark_parts[0] == "part-0.parquet"
    assert all(p.startswith("part-") and p.endswith(".parquet") for p in spark_parts)
    for table in ("users.parquet", "transactions/part-0.parquet"):
        duck, spark = (pq.read_schema(s / table) for s in (duckdb_scored, spark_scored))
        assert spark.names == duck.names, table
        for d, s in zip(duck, spark, strict=True):
            if d.name == "hour":  # int32 as the contract says; the DuckDB path writes int64
                assert pa.types.is_integer(d.type) and s.type == pa.int32()
            else:
                assert s.type == d.type, (table, d, s)


def test_users_ranking_and_flagged_set(duckdb_scored, spark_scored):
    duck, spark = (pq.read_table(s / "users.parquet") for s in (duckdb_scored, spark_scored))
    assert duck.num_rows == spark.num_rows > 0.9 * int(USERS)  # users with transactions
    assert spark["rank"].to_pylist() == list(range(1, spark.num_rows + 1))
    assert spark["user_id"].equals(duck["user_id"])
    assert spark["flagged"].equals(duck["flagged"])
    assert spark["reasons"].equals(duck["reasons"])
    _assert_close(duck, spark, SCORES)


def test_transactions_ranking_and_flagged_set(duckdb_scored, spark_scored):
    duck, spark = _transactions(duckdb_scored), _transactions(spark_scored)
    assert duck.num_rows == spark.num_rows == int(TRANSACTIONS)
    # Rank order across Spark's files, as the DuckDB path's one file has it.
    assert spark["rank"].to_pylist() == list(range(1, int(TRANSACTIONS) + 1))
    assert spark["tx_id"].equals(duck["tx_id"])
    assert spark["flagged"].equals(duck["flagged"])
    assert int(np.sum(spark["flagged"].to_numpy(zero_copy_only=False))) == 100  # 1 % of 10,000
    assert spark["reasons"].equals(duck["reasons"])
    assert spark["ts"].equals(duck["ts"])
    _assert_close(duck, spark, SCORES)


def test_top_users(duckdb_scored, spark_scored):
    def rows(scored: Path) -> list[dict]:
        with (scored / "top_users.csv").open() as f:
            return list(csv.DictReader(f))

    duck, spark = rows(duckdb_scored), rows(spark_scored)
    assert len(spark) == int(TOP)
    assert [r["user_id"] for r in spark] == [r["user_id"] for r in duck]
    np.testing.assert_allclose(
        [float(r["score"]) for r in spark], [float(r["score"]) for r in duck], atol=1e-4
    )


def test_insights_and_evaluation(duckdb_scored, spark_scored):
    def read(scored: Path, name: str) -> dict:
        return json.loads((scored / name).read_text())

    assert read(spark_scored, "insights.json") == read(duckdb_scored, "insights.json")
    _assert_nested_close(
        read(spark_scored, "evaluation.json"), read(duckdb_scored, "evaluation.json")
    )


def _assert_nested_close(actual, expected, where: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), where
        for key in expected:
            _assert_nested_close(actual[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, abs=1e-6), where
    else:
        assert actual == expected, where


@pytest.mark.parametrize(
    ("master", "says"),
    [
        ("spark//127.0.0.1", "is not a Spark master URL"),
        ("spark://127.0.0.1:{port}", "no Spark master answers"),
    ],
)
def test_a_bad_master_is_a_one_line_error_naming_the_setting(raw, tmp_path, master, says):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = fraudwatch(
        "score", "--input", str(raw), "--out", str(tmp_path / "scored"), "--engine", "spark",
        env={"FRAUDWATCH_SPARK_MASTER": master.format(port=port)},
    )  # fmt: skip
    assert result.returncode == 2
    assert "FRAUDWATCH_SPARK_MASTER" in result.stderr and says in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "scored").exists()
