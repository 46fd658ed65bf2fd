"""Per-user history for the stream: each user's most recent transactions, kept across
micro-batches (and restarts) in a DuckDB file beside the checkpoint.

The batch job computes a transaction's features against the user's whole history. The stream
computes them with the same Ibis expression over the micro-batch *plus* the user's last
`per_user` transactions seen before it, then keeps only the micro-batch's rows. Features that
look back (gap to the previous transaction, gap change, velocity in the last hour, previous
country, first use of an IP/device/country/counterparty) therefore match the batch job as long
as the relevant earlier transactions are within the kept history; user aggregates (median,
mean, spread, type share) are over the kept history and the batch so far. docs/streaming.md.

Exactly-once with Spark's at-least-once micro-batches: `features` never reads the batch's own
transactions from the history (they are excluded by tx_id), and `remember` is called only
after the batch's documents are written, in one DuckDB transaction. A batch that Spark re-runs
after a crash therefore sees the same history as the first time, whether or not the crash
came before or after `remember`.

One transaction (an inline decision's) is read and remembered with parameterised
statements on its user and tx_id instead of a registered Arrow table: registering changes
the connection's catalog, which makes DuckDB bind and plan every statement afresh, and the
window over the batch's users that trims the history is then a LIMIT over one user's rows.
Same rows, same order, same transaction (tests/unit/core/test_stream_user_history_one.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_PER_USER = 64
FILE_NAME = "user-history.duckdb"


class UserHistory:
    def __init__(self, path: Path, schema: pa.Schema, per_user: int = DEFAULT_PER_USER) -> None:
        if per_user < 1:
            raise ValueError("per_user must be at least 1")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.per_user = per_user
        self.schema = schema
        # Imported here: the intervention service's settings read DEFAULT_PER_USER where only
        # the standard library is installed (the chart's tests load them).
        import duckdb
        import pyarrow as pa

        self._db = duckdb.connect(str(path))
        self._run("SET TimeZone = 'UTC'")
        self._db.register("empty_history", pa.Table.from_batches([], schema=schema))
        self._run("CREATE TABLE IF NOT EXISTS history AS SELECT * FROM empty_history")
        self._db.unregister("empty_history")

    def _run(self, sql: str, parameters: list[object] | None = None) -> list[tuple]:
        """Execute and read the whole answer (DuckDB refuses new work while one is unread)."""
        return self._db.execute(sql, parameters).fetchall()

    def close(self) -> None:
        self._db.close()

    def count(self) -> int:
        return int(self._run("SELECT count(*) FROM history")[0][0])

    def earlier(self, batch: pa.Table) -> pa.Table:
        """The kept history of the batch's users, without the batch's own transactions."""
        if batch.num_rows != 1:
            return self._earlier_rows(batch)
        columns = ", ".join(f'h."{name}"' for name in self.schema.names)
        return (
            self._db.sql(
                f"SELECT {columns} FROM history h WHERE h.user_id = $user_id AND h.tx_id <> $tx_id",
                params={
                    "user_id": batch["user_id"][0].as_py(),
                    "tx_id": batch["tx_id"][0].as_py(),
                },
            )
            .to_arrow_table()
            .cast(self.schema)
        )

    def _earlier_rows(self, batch: pa.Table) -> pa.Table:
        """`earlier` for any number of transactions, read from the registered table."""
        columns = ", ".join(f'h."{name}"' for name in self.schema.names)
        self._db.register("batch_keys", batch.select(["tx_id", "user_id"]))
        try:
            return (
                self._db.sql(
                    f"SELECT {columns} FROM history h "
                    "WHERE h.user_id IN (SELECT DISTINCT user_id FROM batch_keys) "
                    "AND h.tx_id NOT IN (SELECT tx_id FROM batch_keys)"
                )
                .to_arrow_table()
                .cast(self.schema)
            )
        finally:
            self._db.unregister("batch_keys")

    def with_history(self, batch: pa.Table) -> pa.Table:
        """The batch's transactions together with their users' earlier ones."""
        import pyarrow as pa

        return pa.concat_tables([self.earlier(batch), batch.select(self.schema.names)])

    def remember(self, batch: pa.Table) -> None:
        """Add the batch's transactions and keep only each user's newest `per_user`."""
        if batch.num_rows == 1:
            self._remember_one(batch.select(self.schema.names).to_pylist()[0])
        else:
            self._remember_rows(batch)

    def _remember_rows(self, batch: pa.Table) -> None:
        """`remember` for any number of transactions, read from the registered table."""
        self._db.register("rows", batch.select(self.schema.names))
        self._run("BEGIN TRANSACTION")
        try:
            self._run("DELETE FROM history WHERE tx_id IN (SELECT tx_id FROM rows)")
            self._run("INSERT INTO history SELECT * FROM rows")
            self._run(
                """
                DELETE FROM history WHERE tx_id IN (
                    SELECT tx_id FROM (
                        SELECT tx_id, row_number() OVER (
                            PARTITION BY user_id ORDER BY ts DESC, tx_id DESC) AS newest
                        FROM history
                        WHERE user_id IN (SELECT DISTINCT user_id FROM rows)
                    ) WHERE newest > ?
                )
                """,
                [self.per_user],
            )
            self._run("COMMIT")
        except BaseException:
            self._run("ROLLBACK")
            raise
        finally:
            self._db.unregister("rows")

    def _remember_one(self, row: dict[str, object]) -> None:
        """`remember` for one transaction, with its values as statement parameters."""
        names = self.schema.names
        columns = ", ".join(f'"{name}"' for name in names)
        values = ", ".join(f"${i + 1}" for i in range(len(names)))
        self._run("BEGIN TRANSACTION")
        try:
            self._run("DELETE FROM history WHERE tx_id = $1", [row["tx_id"]])
            self._run(
                f"INSERT INTO history ({columns}) VALUES ({values})",
                [row[name] for name in names],
            )
            # The user's rows past the newest `per_user` (newest by ts, then tx_id, as above).
            self._run(
                """
                DELETE FROM history WHERE user_id = $1 AND tx_id IN (
                    SELECT tx_id FROM history WHERE user_id = $1
                    ORDER BY ts DESC, tx_id DESC OFFSET $2
                )
                """,
                [row["user_id"], self.per_user],
            )
            self._run("COMMIT")
        except BaseException:
            self._run("ROLLBACK")
            raise
