"""The stream's per-user history: a transaction scored in a later micro-batch is compared with
its user's earlier transactions, as in the batch job (no Kafka or Spark needed for this part;
the end-to-end stream is in tests/integration/streaming)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fraudwatch.features.transactions import LOOKBACK_ROWS
from fraudwatch.generator.population import GeneratorConfig
from fraudwatch.generator.writer import generate
from fraudwatch.streaming.batch_validation import RAW_TRANSACTION_SCHEMA
from fraudwatch.streaming.compiled_features import batch_features
from fraudwatch.streaming.user_history import DEFAULT_PER_USER, UserHistory

#: Features that look back at earlier transactions: with the history they must equal the
#: batch job's; the user aggregates (median, mean, type share) are documented as windowed.
LOOKBACK = (
    "gap_prev_s",
    "gap_change_log",
    "velocity_1h",
    "new_ip",
    "new_device",
    "new_country",
    "new_counterparty",
    "country_switch_fast",
    "amount_vs_baseline_log",
    "recent_amount_shift",
    "recent_risky_shift",
    "geo_velocity_kmh_log",
    "impossible_travel",
)
#: Look-back features over a bounded number of earlier transactions (at most
#: LOOKBACK_ROWS): the default kept history holds all they read, so they are exact.
BOUNDED = (
    "gap_prev_s",
    "gap_change_log",
    "velocity_1h",
    "country_switch_fast",
    "amount_vs_baseline_log",
    "recent_amount_shift",
    "recent_risky_shift",
    "geo_velocity_kmh_log",
    "impossible_travel",
)


@pytest.fixture(scope="module")
def transactions(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    out = tmp_path_factory.mktemp("stream-history") / "raw"
    generate(GeneratorConfig(users=50, transactions=1_500, seed=11, days=10), out)
    table = pq.read_table(out / "transactions").select(RAW_TRANSACTION_SCHEMA.names)
    return table.cast(RAW_TRANSACTION_SCHEMA).sort_by([("ts", "ascending"), ("tx_id", "ascending")])


def micro_batches(table: pa.Table, n: int) -> list[pa.Table]:
    """Arrival order = event time, cut into n micro-batches."""
    size = -(-table.num_rows // n)
    return [table.slice(i, size) for i in range(0, table.num_rows, size)]


def by_tx(features: pa.Table) -> dict[int, dict]:
    return {row["tx_id"]: row for row in features.select(["tx_id", *LOOKBACK]).to_pylist()}


def stream_features(table: pa.Table, state: Path, batches: int, per_user: int) -> dict[int, dict]:
    """Feed the micro-batches in order, closing and reopening the history between batches
    (a restart), and remembering each batch only after its features are computed."""
    seen: dict[int, dict] = {}
    for batch in micro_batches(table, batches):
        history = UserHistory(state, RAW_TRANSACTION_SCHEMA, per_user)
        seen.update(by_tx(batch_features(batch, history)))
        history.remember(batch)
        history.close()
    return seen


def test_lookback_features_match_the_batch_job_across_micro_batches(
    transactions: pa.Table, tmp_path: Path
) -> None:
    batch_job = by_tx(batch_features(transactions))
    streamed = stream_features(transactions, tmp_path / "h.duckdb", batches=6, per_user=1_000)

    assert streamed.keys() == batch_job.keys()
    mismatched = [tx for tx in batch_job if streamed[tx] != pytest.approx(batch_job[tx])]
    assert mismatched == []


def test_bounded_lookback_features_are_exact_with_the_default_history(
    transactions: pa.Table, tmp_path: Path
) -> None:
    """The default kept history covers the longest bounded look-back (recent window plus
    baseline), so those features equal the batch job's even for users with longer histories."""
    assert LOOKBACK_ROWS < DEFAULT_PER_USER
    per_user = LOOKBACK_ROWS + 1
    longest = max(pc.value_counts(transactions["user_id"]).field("counts").to_pylist())
    assert longest > 2 * per_user  # some users' histories are longer than what is kept
    batch_job = {
        tx: {k: row[k] for k in BOUNDED} for tx, row in by_tx(batch_features(transactions)).items()
    }
    streamed = stream_features(transactions, tmp_path / "h.duckdb", batches=6, per_user=per_user)
    streamed = {tx: {k: row[k] for k in BOUNDED} for tx, row in streamed.items()}
    mismatched = [tx for tx in batch_job if streamed[tx] != pytest.approx(batch_job[tx])]
    assert mismatched == []


def test_without_history_a_later_batch_sees_old_devices_as_new(transactions: pa.Table) -> None:
    """What the history fixes: scored alone, each batch's first transactions look like new
    devices and have no gap to the previous transaction."""
    batch_job = by_tx(batch_features(transactions))
    alone: dict[int, dict] = {}
    for batch in micro_batches(transactions, 6):
        alone.update(by_tx(batch_features(batch)))
    new_devices_alone = sum(row["new_device"] for row in alone.values())
    assert new_devices_alone > sum(row["new_device"] for row in batch_job.values())


def test_a_re_run_batch_gets_the_same_features_as_the_first_time(
    transactions: pa.Table, tmp_path: Path
) -> None:
    first, second = micro_batches(transactions, 2)
    history = UserHistory(tmp_path / "h.duckdb", RAW_TRANSACTION_SCHEMA, per_user=1_000)
    history.remember(first)
    before = by_tx(batch_features(second, history))
    history.remember(second)  # the crash came after `remember`: Spark re-runs the batch
    again = by_tx(batch_features(second, history))
    assert again == before
    assert history.count() == transactions.num_rows  # nothing doubled


def test_history_keeps_only_each_users_newest_transactions(
    transactions: pa.Table, tmp_path: Path
) -> None:
    history = UserHistory(tmp_path / "h.duckdb", RAW_TRANSACTION_SCHEMA, per_user=5)
    for batch in micro_batches(transactions, 3):
        history.remember(batch)
    users = pc.count_distinct(transactions["user_id"]).as_py()
    assert history.count() <= users * 5

    user = transactions["user_id"][0].as_py()
    theirs = transactions.filter(pc.equal(transactions["user_id"], user))
    probe = theirs.slice(0, 1).set_column(0, "tx_id", pa.array([-1], pa.int64()))
    kept = history.earlier(probe)
    newest_five = sorted(
        theirs["tx_id"].to_pylist(),
        key=dict(zip(theirs["tx_id"].to_pylist(), theirs["ts"].to_pylist(), strict=True)).get,
    )[-5:]
    assert sorted(kept["tx_id"].to_pylist()) == sorted(newest_five)
