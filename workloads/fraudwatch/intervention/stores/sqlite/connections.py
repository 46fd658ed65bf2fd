"""The SQLite state store's file and connections: one connection per thread, kept; writes in
`BEGIN IMMEDIATE` transactions queued on a process lock."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fraudwatch.intervention.stores.sqlite.schema import create_schema


def where_clause(conditions: tuple[tuple[str, object], ...]) -> tuple[str, list[object]]:
    """The WHERE clause of the conditions (`column op ?`, value) whose value is not None,
    and its arguments."""
    where: list[str] = ["TRUE"]
    args: list[object] = []
    for condition, value in conditions:
        if value is not None:
            where.append(condition)
            args.append(value)
    return " AND ".join(where), args


class SqliteDatabase:
    """The file (created readable by its owner only, schema brought up to date) and the
    connections every part of the SQLite store reads and writes through."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        if not self.path.exists():
            # Created readable by its owner only (tokens' hashes, sessions, the audit log);
            # SQLite gives the -wal and -shm files the same mode.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        # One connection per thread, kept (opening one and reading the schema on every call
        # cost more than the queries); writers of this process queue on a lock instead of
        # SQLite's sleeping busy handler (other processes still meet that, with `timeout`).
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        with self._read() as con:
            con.execute("PRAGMA journal_mode=WAL")
            create_schema(con)

    def _connect(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            con.row_factory = sqlite3.Row
            self._local.con = con
            with self._connections_lock:
                self._connections.append(con)
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        with self._write_lock:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # Autocommit: every statement reads the newest committed state (WAL).
        yield self._connect()

    def _read_one(self, sql: str, args: tuple[object, ...]) -> sqlite3.Row | None:
        """The first row `sql` reads, or None."""
        with self._read() as con:
            row: sqlite3.Row | None = con.execute(sql, args).fetchone()
        return row

    def _read_page(
        self,
        table: str,
        columns: str,
        condition: str,
        args: list[object],
        order: str,
        offset: int,
        limit: int | None,
    ) -> tuple[list[sqlite3.Row], int]:
        """One page of `table`'s rows matching `condition` in `order`, and how many match."""
        sql = f"SELECT {columns} FROM {table} WHERE {condition} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        elif offset:
            sql += f" LIMIT -1 OFFSET {int(offset)}"  # SQLite wants a LIMIT before an OFFSET
        with self._read() as con:
            rows = con.execute(sql, args).fetchall()
            total = con.execute(f"SELECT COUNT(*) FROM {table} WHERE {condition}", args)
            return rows, int(total.fetchone()[0])

    def close(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for con in connections:
            con.close()
        self._local = threading.local()
