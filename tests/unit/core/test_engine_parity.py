"""The same Ibis feature expressions give the same features on DuckDB and on Spark."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from fraudwatch.features.engine import connect, read_raw
from fraudwatch.features.transactions import (
    REQUIRED_COLUMNS,
    TRANSACTION_FEATURES,
    transaction_features,
)
from fraudwatch.features.users import USER_FEATURES, user_features

pytestmark = pytest.mark.spark


def _features(engine: str, raw_dir):
    con = connect(engine)
    tx = read_raw(con, raw_dir, "transactions", REQUIRED_COLUMNS)
    logins = read_raw(con, raw_dir, "logins", {"user_id": "int"})
    txf = transaction_features(tx)
    return (
        txf.select("tx_id", *TRANSACTION_FEATURES).to_pyarrow().sort_by("tx_id"),
        user_features(txf, logins).to_pyarrow().sort_by("user_id"),
    )


def _assert_same(a: pa.Table, b: pa.Table, columns, key: str) -> None:
    assert a.num_rows == b.num_rows > 0
    assert a[key].equals(b[key])
    for column in columns:
        x = a[column].to_numpy(zero_copy_only=False).astype(float)
        y = b[column].to_numpy(zero_copy_only=False).astype(float)
        assert np.array_equal(np.isnan(x), np.isnan(y)), f"{column}: missing values differ"
        ok = ~np.isnan(x)
        np.testing.assert_allclose(x[ok], y[ok], rtol=1e-9, atol=1e-9, err_msg=column)


def test_duckdb_and_spark_compute_identical_features(raw_dir):
    pytest.importorskip("pyspark")
    duck_tx, duck_users = _features("duckdb", raw_dir)
    spark_tx, spark_users = _features("spark", raw_dir)
    _assert_same(duck_tx, spark_tx, TRANSACTION_FEATURES, "tx_id")
    _assert_same(duck_users, spark_users, USER_FEATURES, "user_id")
