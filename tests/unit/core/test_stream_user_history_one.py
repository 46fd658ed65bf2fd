"""One transaction (an inline decision's) is read from and added to the per-user history
with parameterised statements (`UserHistory.earlier` / `remember` on a one-row table, issue
19): the history must hold and give back exactly what the batch statements do: the same rows
in the same order, the newest `per_user` kept (ties on time broken by tx_id), a re-delivered
transaction kept once and never given back as its own past."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fraudwatch.generator.population import GeneratorConfig
from fraudwatch.generator.writer import generate
from fraudwatch.streaming.batch_validation import RAW_TRANSACTION_SCHEMA
from fraudwatch.streaming.user_history import UserHistory

PER_USER = 5


@pytest.fixture(scope="module")
def transactions(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    out = tmp_path_factory.mktemp("history-one") / "raw"
    generate(GeneratorConfig(users=12, transactions=400, seed=3, days=5), out)
    table = pq.read_table(out / "transactions").select(RAW_TRANSACTION_SCHEMA.names)
    table = table.cast(RAW_TRANSACTION_SCHEMA).sort_by(
        [("ts", "ascending"), ("tx_id", "ascending")]
    )
    # Two transactions of one user at the same time as an earlier one: the tx_id decides
    # which are the newest.
    first = table.slice(0, 1).to_pylist()[0]
    top = pc.max(table["tx_id"]).as_py()
    twins = [{**first, "tx_id": top + 1 + i, "amount": 1.0 + i} for i in range(2)]
    return pa.concat_tables([table, pa.Table.from_pylist(twins, schema=table.schema)]).sort_by(
        [("ts", "ascending"), ("tx_id", "ascending")]
    )


def kept(history: UserHistory) -> pa.Table:
    return (
        history._db.sql("SELECT * FROM history")
        .to_arrow_table()
        .cast(RAW_TRANSACTION_SCHEMA)
        .sort_by("tx_id")
    )


def test_one_transaction_at_a_time_keeps_what_the_batch_statements_keep(
    tmp_path: Path, transactions: pa.Table
) -> None:
    one = UserHistory(tmp_path / "one.duckdb", RAW_TRANSACTION_SCHEMA, PER_USER)
    batched = UserHistory(tmp_path / "batched.duckdb", RAW_TRANSACTION_SCHEMA, PER_USER)
    try:
        for row in range(transactions.num_rows):
            tx = transactions.slice(row, 1)
            # The batch statements on the same transaction.
            assert one.earlier(tx).equals(batched._earlier_rows(tx)), row
            one.remember(tx)
            batched._remember_rows(tx)
            if row % 50 == 0:
                assert kept(one).equals(kept(batched)), row
            if row % 97 == 0:  # delivered again: kept once, not its own past
                one.remember(tx)
                batched._remember_rows(tx)
                assert tx["tx_id"][0] not in one.earlier(tx)["tx_id"]
        assert kept(one).equals(kept(batched))
        users = pc.unique(transactions["user_id"]).to_pylist()
        assert one.count() == PER_USER * len(users)  # every user has more than PER_USER
    finally:
        one.close()
        batched.close()


def test_a_failed_update_leaves_the_history_as_it_was(
    tmp_path: Path, transactions: pa.Table
) -> None:
    history = UserHistory(tmp_path / "h.duckdb", RAW_TRANSACTION_SCHEMA, PER_USER)
    try:
        history.remember(transactions.slice(0, 100))
        before = kept(history)
        broken = transactions.slice(100, 1).to_pylist()[0] | {"ts": "not a time"}
        with pytest.raises(Exception):  # noqa: B017 - DuckDB's conversion error
            history._remember_one(broken)
        assert kept(history).equals(before)
    finally:
        history.close()
