"""The stream's features come from the batch job's Ibis expression compiled once to SQL
(`streaming.compiled_features.feature_query`, issue 19): they must be exactly what building and running the
expression afresh on every call gives (`batch_features_uncompiled`), with and without the
users' history, for every row or only the batch's, on any thread, and under other reporting
thresholds than those of the first compilation; on the connection for micro-batches and on
the one for few rows (a decision's: lookups from MAP variables, fewer optimizer passes)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fraudwatch.contract.regulatory import ENV_REPORTING_THRESHOLDS
from fraudwatch.generator.population import GeneratorConfig
from fraudwatch.generator.writer import generate
from fraudwatch.streaming import compiled_features
from fraudwatch.streaming.batch_validation import RAW_TRANSACTION_SCHEMA
from fraudwatch.streaming.compiled_features import (
    batch_features,
    batch_features_uncompiled,
    feature_query,
)
from fraudwatch.streaming.user_history import UserHistory


@pytest.fixture(autouse=True, params=["few rows", "micro-batch"])
def connection(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test on both connections: every input counts as few rows, or none does."""
    rows = 10**9 if request.param == "few rows" else 0
    monkeypatch.setattr(compiled_features, "SMALL_INPUT_ROWS", rows)
    return str(request.param)


@pytest.fixture(scope="module")
def transactions(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    out = tmp_path_factory.mktemp("compiled-features") / "raw"
    generate(GeneratorConfig(users=40, transactions=1_200, seed=5, days=10), out)
    table = pq.read_table(out / "transactions").select(RAW_TRANSACTION_SCHEMA.names)
    return table.cast(RAW_TRANSACTION_SCHEMA).sort_by([("ts", "ascending"), ("tx_id", "ascending")])


@pytest.fixture
def history(tmp_path: Path, transactions: pa.Table) -> UserHistory:
    """The first 900 transactions kept; the rest arrive later."""
    kept = UserHistory(tmp_path / "history.duckdb", RAW_TRANSACTION_SCHEMA)
    kept.remember(transactions.slice(0, 900))
    yield kept
    kept.close()


def assert_same(compiled: pa.Table, fresh: pa.Table) -> None:
    assert compiled.schema == fresh.schema
    assert compiled.num_rows == fresh.num_rows > 0
    for name in fresh.column_names:  # column by column: a failure names the feature
        assert compiled[name].equals(fresh[name]), name


@pytest.mark.parametrize("context", [False, True])
def test_compiled_features_equal_a_fresh_build_with_history(
    transactions: pa.Table, history: UserHistory, context: bool
) -> None:
    batch = transactions.slice(900, 150)
    assert_same(
        batch_features(batch, history, context=context),
        batch_features_uncompiled(batch, history, context=context),
    )
    if context:  # the history's rows come too, told apart from the batch's
        flags = batch_features(batch, history, context=True)["in_batch"]
        assert pc.sum(flags).as_py() == batch.num_rows < len(flags)


def test_one_transaction_at_a_time_as_the_decisions_score(
    transactions: pa.Table, history: UserHistory
) -> None:
    for row in range(900, 910):
        one = transactions.slice(row, 1)
        assert_same(
            batch_features(one, history, context=True),
            batch_features_uncompiled(one, history, context=True),
        )
        history.remember(one)


def travelled(transactions: pa.Table) -> pa.Table:
    """The transactions and, for one user, two more ten minutes apart after the last: one
    in a far country, then one in a country the location table does not know."""
    last = transactions.filter(pc.equal(transactions["user_id"], transactions["user_id"][0]))
    last = last.slice(last.num_rows - 1).to_pylist()[0]
    top = pc.max(transactions["tx_id"]).as_py()
    far = "AU" if last["country"] != "AU" else "US"
    extra = [
        {
            **last,
            "tx_id": top + 1 + i,
            "ts": last["ts"] + timedelta(minutes=10 * (i + 1)),
            "country": country,
        }
        for i, country in enumerate([far, "XX"])
    ]
    rows = pa.Table.from_pylist(extra, schema=transactions.schema)
    return pa.concat_tables([transactions, rows])


def test_compiled_features_equal_a_fresh_build_without_history(transactions: pa.Table) -> None:
    table = travelled(transactions)
    fresh = batch_features_uncompiled(table)
    assert_same(batch_features(table), fresh)
    # The country coordinates are read from lookup tables in the compiled SQL: travel,
    # impossible travel and an unknown country (null distance) all come out the same.
    assert pc.max(fresh["travel_km"]).as_py() > 0
    assert pc.sum(fresh["impossible_travel"]).as_py() > 0
    assert fresh["travel_km"].null_count > 0
    # Another input schema (no ground truth columns) compiles its own query.
    raw = transactions.drop_columns(["label", "scenario"])
    assert_same(batch_features(raw), batch_features_uncompiled(raw))
    assert "label" not in batch_features(raw).column_names


def test_threads_get_the_same_features(transactions: pa.Table) -> None:
    batches = [transactions.slice(start, 200) for start in range(0, 1_200, 200)]
    expected = [batch_features_uncompiled(b) for b in batches]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(2):
            for got, want in zip(pool.map(batch_features, batches), expected, strict=True):
                assert_same(got, want)


def test_other_reporting_thresholds_compile_another_query(
    transactions: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = feature_query(RAW_TRANSACTION_SCHEMA, pa.int64(), False)
    near_before = pc.sum(batch_features(transactions)["near_reporting_threshold"]).as_py()
    # A threshold just above the median amount in every currency: many transactions come
    # near it, and near_reporting_threshold changes.
    threshold = round(pc.approximate_median(transactions["amount"]).as_py() * 1.05, 2)
    currencies = pc.unique(transactions["currency"]).to_pylist()
    monkeypatch.setenv(
        ENV_REPORTING_THRESHOLDS, ",".join(f"{c}={threshold}" for c in [*currencies, "*"])
    )
    after = feature_query(RAW_TRANSACTION_SCHEMA, pa.int64(), False)
    assert after is not before and after.sql != before.sql
    compiled = batch_features(transactions)
    assert pc.sum(compiled["near_reporting_threshold"]).as_py() != near_before
    assert_same(compiled, batch_features_uncompiled(transactions))
