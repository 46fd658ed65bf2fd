"""The serving index of a scored version: a DuckDB database file built once from the scored
Parquet when the service loads it, so requests read tables laid out for them instead of
scanning Parquet (docs/intervention.md, "Serving path").

What it holds:

- `users` and `tx`: every scored column plus `pos`, the place in the ranking (ensemble score
  descending, ties by rank), stored in `pos` order, so a page of the anomaly list is read
  from the front of the table; unique indexes on `user_id` and `tx_id` for the detail views.
- `history`: each user's transactions (the columns of the user view), stored by user id and
  newest first, so one user's history sits in one block.
- `flagged_tx`: the flagged transactions' user, hour, type and country (the user-level
  filters "a flagged transaction at 02:00" read it, not the whole of `tx`).
- `facets`: the values of the admin page's drop-downs; `meta`: the fingerprint of the scored
  files it was built from.

The user level, which the anomaly list, the account checks of every intervention and the
user view read on each request, is also written to a SQLite file beside the DuckDB one
(`users` keyed by `pos` with indexes on `user_id` and on each filter, and `flagged_tx`):
a small SQLite query costs tens of microseconds where DuckDB spends a millisecond planning
it; DuckDB stays for the ten-times larger transaction level, where its scans win and the
build is fast (docs/intervention.md, "Serving path", has the figures).

The file lives beside the results (`SCORED/.serving-index/`) or, when that directory cannot
be written, under `$FRAUDWATCH_HOME/serving-index/`. It is named after the fingerprint of
the scored files (names, sizes, modification times) and the index format, so a re-scored
directory gets a new index and an unchanged one is opened again without a rebuild. It is
built in a temporary file under an exclusive file lock and moved into place whole: two
service processes starting together build it once, and a killed build leaves no index.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb

from fraudwatch.contract.scored_output import (
    GROUND_TRUTH_COLUMNS,
    MODEL_SCORE_COLUMNS,
    TRANSACTION_COLUMNS,
)
from fraudwatch.errors import UserError

#: Bumped whenever the tables or their layout change: older index files are then rebuilt.
INDEX_FORMAT = 2
INDEX_DIR = ".serving-index"
#: The columns of a user's transaction history, newest first (the API's USER_TX_COLUMNS): a
#: scored transaction's but what the user view shows once (user, persona, ground truth), its
#: rank, counterparty, per-model scores and top_features.
_NOT_IN_HISTORY = {
    "rank",
    "user_id",
    "persona",
    "counterparty",
    *MODEL_SCORE_COLUMNS,
    "top_features",
    *GROUND_TRUTH_COLUMNS,
}
HISTORY_COLUMNS = tuple(c for c in TRANSACTION_COLUMNS if c not in _NOT_IN_HISTORY)
FACETS = (("persona", "users"), ("scenario", "users"), ("tx_type", "tx"), ("country", "tx"))


def scored_files(scored_dir: Path) -> tuple[Path, list[Path]]:
    users = scored_dir / "users.parquet"
    parts = sorted((scored_dir / "transactions").glob("part-*.parquet"))
    if not users.is_file() or not parts:
        raise UserError(
            f"no scored results in {scored_dir} (need users.parquet and "
            "transactions/part-*.parquet): run `fraudwatch demo` or pass --scored DIR"
        )
    return users, parts


def fingerprint(scored_dir: Path) -> str:
    """What identifies one scored version: the index format and each scored file's name,
    size and modification time."""
    users, parts = scored_files(scored_dir)
    digest = hashlib.sha256(f"format {INDEX_FORMAT}".encode())
    for path in (users, *parts):
        stat = path.stat()
        digest.update(
            f"\n{path.relative_to(scored_dir)} {stat.st_size} {stat.st_mtime_ns}".encode()
        )
    return digest.hexdigest()


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def index_dir(scored_dir: Path, home: Path) -> Path:
    """Beside the results when that can be written, else under the service's home."""
    beside = scored_dir / INDEX_DIR
    if _writable_dir(beside):
        return beside
    where = hashlib.sha256(str(scored_dir.resolve()).encode()).hexdigest()[:16]
    cache = home / "serving-index" / where
    cache.mkdir(parents=True, mode=0o700, exist_ok=True)
    return cache


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def users_file(index: Path) -> Path:
    """The SQLite file of the user level beside a DuckDB index file."""
    return index.with_suffix(".sqlite3")


def ensure_index(scored_dir: Path, home: Path) -> Path:
    """The index file of the scored version in `scored_dir`, built unless it exists (the
    SQLite file of the user level, users_file(), beside it)."""
    scored_dir = Path(scored_dir)
    stamp = fingerprint(scored_dir)
    folder = index_dir(scored_dir, home)
    target = folder / f"results-{stamp[:24]}.duckdb"
    if target.is_file():
        return target
    with _exclusive(folder / "build.lock"):
        if target.is_file():  # another process built it while this one waited
            return target
        handle, tmp = tempfile.mkstemp(prefix=".building-", suffix=".duckdb", dir=folder)
        os.close(handle)
        os.unlink(tmp)  # DuckDB creates the file itself
        building = Path(tmp)
        try:
            build_index(scored_dir, building, stamp)
            build_users_file(building, users_file(building))
            # The DuckDB file last: its presence says the index is whole.
            os.replace(users_file(building), users_file(target))
            os.replace(building, target)
        finally:
            for leftover in (building, Path(tmp + ".wal"), users_file(building)):
                leftover.unlink(missing_ok=True)
        for old in folder.glob("results-*"):
            if old not in (target, users_file(target)):
                old.unlink(missing_ok=True)
    return target


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def build_index(scored_dir: Path, target: Path, stamp: str) -> None:
    """Write the tables of the module docstring into a new DuckDB file."""
    users, parts = scored_files(scored_dir)
    users_sql = f"read_parquet('{_sql_path(users)}')"
    tx_sql = "read_parquet([" + ", ".join(f"'{_sql_path(p)}'" for p in parts) + "])"
    con = duckdb.connect(str(target))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET enable_progress_bar = false")
        order = "ORDER BY ensemble_score DESC, rank"
        for table, source in (("users", users_sql), ("tx", tx_sql)):
            con.execute(
                f"CREATE TABLE {table} AS SELECT row_number() OVER ({order}) AS pos, * "
                f"FROM {source} ORDER BY pos"
            )
        con.execute("CREATE UNIQUE INDEX users_user_id ON users (user_id)")
        con.execute("CREATE UNIQUE INDEX tx_tx_id ON tx (tx_id)")
        con.execute(
            f"CREATE TABLE history AS SELECT user_id, {', '.join(HISTORY_COLUMNS)} FROM tx "
            "ORDER BY user_id, ts DESC, tx_id DESC"
        )
        con.execute(
            "CREATE TABLE flagged_tx AS SELECT DISTINCT user_id, hour, tx_type, country "
            "FROM tx WHERE flagged ORDER BY user_id"
        )
        con.execute("CREATE TABLE facets (name VARCHAR, value VARCHAR)")
        for name, table in FACETS:
            con.execute(
                f"INSERT INTO facets SELECT DISTINCT '{name}', {name} FROM {table} "
                f"WHERE {name} IS NOT NULL ORDER BY 2"
            )
        con.execute("CREATE TABLE meta (name VARCHAR PRIMARY KEY, value VARCHAR)")
        sources = {"users": str(users), "transactions": [str(p) for p in parts]}
        con.execute(
            "INSERT INTO meta VALUES ('fingerprint', ?), ('format', ?), ('sources', ?)",
            [stamp, str(INDEX_FORMAT), json.dumps(sources)],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()


#: SQLite's column affinity for each DuckDB type (what is not listed is stored as text).
_AFFINITY = {
    "BOOLEAN": "INTEGER",
    "TINYINT": "INTEGER",
    "SMALLINT": "INTEGER",
    "INTEGER": "INTEGER",
    "BIGINT": "INTEGER",
    "UTINYINT": "INTEGER",
    "USMALLINT": "INTEGER",
    "UINTEGER": "INTEGER",
    "FLOAT": "REAL",
    "DOUBLE": "REAL",
}
#: Columns of `users` the anomaly list filters on: each gets an index with `pos`.
USER_FILTER_COLUMNS = ("persona", "scenario", "flagged", "ensemble_score")


def user_column_kinds(index: Path) -> dict[str, str]:
    """Each column of `users` (but `pos`): `bool`, `list`, `number` or `text`, how the
    SQLite file stores it (booleans as 0/1, lists as JSON)."""
    con = duckdb.connect(str(index), read_only=True)
    try:
        described = con.execute("DESCRIBE users").fetchall()
    finally:
        con.close()
    kinds: dict[str, str] = {}
    for name, kind, *_ in described:
        if name == "pos":
            continue
        kind = str(kind)
        if kind == "BOOLEAN":
            kinds[name] = "bool"
        elif kind.endswith("[]"):
            kinds[name] = "list"
        elif kind in _AFFINITY:
            kinds[name] = "number"
        else:
            kinds[name] = "text"
    return kinds


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def build_users_file(index: Path, target: Path) -> None:
    """Copy `users` and `flagged_tx` of the DuckDB index into a SQLite file."""
    import sqlite3

    src = duckdb.connect(str(index), read_only=True)
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        src.execute("SET TimeZone = 'UTC'")
        described = src.execute("DESCRIBE users").fetchall()
        names = [str(row[0]) for row in described]
        kinds = {str(row[0]): str(row[1]) for row in described}
        columns = ", ".join(
            f'"{n}" ' + ("INTEGER PRIMARY KEY" if n == "pos" else _AFFINITY.get(kinds[n], "TEXT"))
            for n in names
        )
        selected = ", ".join(
            f'to_json("{n}")::VARCHAR' if kinds[n].endswith("[]") else f'"{n}"' for n in names
        )
        # Times and other values SQLite has no type for are stored as their ISO/text form.
        textual = {
            i
            for i, n in enumerate(names)
            if kinds[n] != "VARCHAR" and not kinds[n].endswith("[]") and kinds[n] not in _AFFINITY
        }
        dst.execute("PRAGMA journal_mode = OFF")
        dst.execute("PRAGMA synchronous = OFF")
        dst.execute("BEGIN")
        dst.execute(f"CREATE TABLE users ({columns})")
        insert = f"INSERT INTO users VALUES ({', '.join('?' for _ in names)})"
        cur = src.execute(f"SELECT {selected} FROM users ORDER BY pos")
        while rows := cur.fetchmany(50_000):
            if textual:
                rows = [
                    tuple(_as_text(v) if i in textual else v for i, v in enumerate(row))
                    for row in rows
                ]
            dst.executemany(insert, rows)
        dst.execute("CREATE UNIQUE INDEX users_user_id ON users (user_id)")
        for column in USER_FILTER_COLUMNS:
            dst.execute(f'CREATE INDEX users_{column} ON users ("{column}", pos)')
        dst.execute(
            "CREATE TABLE flagged_tx (user_id INTEGER, hour INTEGER, tx_type TEXT, country TEXT)"
        )
        cur = src.execute("SELECT user_id, hour, tx_type, country FROM flagged_tx")
        while rows := cur.fetchmany(50_000):
            dst.executemany("INSERT INTO flagged_tx VALUES (?, ?, ?, ?)", rows)
        dst.execute("CREATE INDEX flagged_tx_hour ON flagged_tx (hour, user_id)")
        dst.execute("CREATE INDEX flagged_tx_type ON flagged_tx (tx_type, user_id)")
        dst.execute("CREATE INDEX flagged_tx_country ON flagged_tx (country, user_id)")
        dst.execute("COMMIT")
        dst.execute("ANALYZE")
    finally:
        dst.close()
        src.close()
