"""Read ranked anomalies: the interface every results reader implements, and the embedded
reader over the scored Parquet (docs/data-contract.md), served from the index built when the
scored version is loaded (results_index.py). `results_source.open_results` picks the reader.

The Elasticsearch reader (`elasticsearch_results.py`) answers the same questions from what
`fraudwatch publish --to elasticsearch` indexed; one contract test suite runs on both.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb

from fraudwatch.contract.scored_output import (
    GROUND_TRUTH_COLUMNS,
    MODEL_SCORE_COLUMNS,
    SCORE_COLUMNS,
    TRANSACTION_COLUMNS,
    score_column,
)
from fraudwatch.intervention.results_index import (
    FACETS,
    HISTORY_COLUMNS,
    ensure_index,
    user_column_kinds,
    users_file,
)

#: The scores the API and the admin page show: every score column of the contract but COPOD's,
#: which the admin page's per-model bar chart has no room for yet (templates/user.html).
SHOWN_SCORES = tuple(c for c in SCORE_COLUMNS if c != score_column("copod"))
USER_SUMMARY = ("rank", "user_id", "persona", *SHOWN_SCORES, "flagged", "reasons", "scenario")
#: A scored transaction in a list: its columns but the device and payment identifiers, the
#: per-model scores, top_features and the label.
TX_SUMMARY = tuple(
    c
    for c in TRANSACTION_COLUMNS
    if c not in {"ip", "device_id", "counterparty", *MODEL_SCORE_COLUMNS, "top_features", "label"}
)
# Not the user's features: everything else in users.parquet is shown as a feature.
USER_NON_FEATURES = {*USER_SUMMARY, "top_features", *GROUND_TRUTH_COLUMNS}
#: The columns of a user's transaction history (newest first).
USER_TX_COLUMNS = HISTORY_COLUMNS


#: How many filters' match counts the Parquet reader keeps.
MAX_CACHED_COUNTS = 4096


class ResultsUnavailable(Exception):
    """The results backend cannot answer right now (e.g. Elasticsearch is down); the API
    turns it into a 503 with this one-line message."""


class ResultsReader(Protocol):
    """What the API and the admin page ask of the scored results."""

    def anomalies(
        self,
        flt: AnomalyFilter,
        *,
        level: str = "users",
        offset: int = 0,
        limit: int = 50,
        include_ids: list[str] | None = None,
        exclude_ids: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]: ...

    def user(self, user_id: int) -> dict[str, Any] | None: ...

    def user_exists(self, user_id: int) -> bool: ...

    def transactions_of(self, user_id: int, limit: int = 200) -> list[dict[str, Any]]: ...

    def transaction(self, tx_id: int) -> dict[str, Any] | None: ...

    def facets(self) -> dict[str, list[Any]]: ...

    def describe(self) -> str: ...


def user_view(row: dict[str, Any], features: dict[str, Any]) -> dict[str, Any]:
    """The user detail both readers return (features without a value are left out)."""
    return {
        "user_id": row["user_id"],
        "rank": row.get("rank"),
        "persona": row.get("persona"),
        "scores": {k: row.get(k) for k in SHOWN_SCORES},
        "flagged": row.get("flagged"),
        "reasons": [r for r in str(row.get("reasons") or "").split("; ") if r],
        "top_features": row.get("top_features") or [],
        "features": {k: v for k, v in features.items() if v is not None},
        "scenario": row.get("scenario"),
    }


@dataclass(frozen=True)
class AnomalyFilter:
    score_min: float | None = None
    score_max: float | None = None
    persona: str | None = None
    scenario: str | None = None
    hour: int | None = None
    tx_type: str | None = None
    country: str | None = None
    flagged: bool | None = None


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _from_sqlite(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "bool":
        return bool(value)
    if kind == "list":
        return json.loads(value)
    return _jsonable(value)


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description or []]
    return [{n: _jsonable(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


class ScoredResults:
    """The scored Parquet (SCORED/users.parquet, SCORED/transactions/part-*.parquet) served
    from its index (results_index.py), built when the service loads the scored version: the
    user level from a SQLite file, the transaction level from a DuckDB file, each opened
    read-only with one connection per thread."""

    def __init__(self, scored_dir: Path, home: Path | None = None) -> None:
        from fraudwatch.locations.home import fraudwatch_home

        self.dir = Path(scored_dir)
        self.index_path = ensure_index(self.dir, home or fraudwatch_home())
        self._users_uri = f"{users_file(self.index_path).as_uri()}?mode=ro&immutable=1"
        self._con = duckdb.connect(str(self.index_path), read_only=True)
        # Timestamps come back in UTC whatever the host's zone (the same text as Elasticsearch).
        self._con.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self._local = threading.local()
        self._sqlite: list[sqlite3.Connection] = []
        self._kinds = user_column_kinds(self.index_path)
        self.user_columns = list(self._kinds)
        self._tx_columns = [r[0] for r in self._con.execute("DESCRIBE tx").fetchall()]
        self._tx_columns = [c for c in self._tx_columns if c not in ("pos", "label")]
        # The scored version does not change under a running service: how many rows match a
        # filter is counted once (ids of accounts in a given state are counted per request).
        self._counts: dict[tuple[str, AnomalyFilter], int] = {}
        self._facets: dict[str, list[Any]] | None = None

    def close(self) -> None:
        with self._lock:
            for con in self._sqlite:
                con.close()
            self._sqlite = []
        self._con.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        # DuckDB connections are not shared across threads: one cursor per thread, reused.
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            with self._lock:
                cur = self._con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
        return cur

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The transaction level, from DuckDB."""
        return _rows(self._cursor().execute(sql, list(args)))

    def _users(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The user level, from SQLite: booleans and lists as the Parquet holds them."""
        con: sqlite3.Connection | None = getattr(self._local, "users", None)
        if con is None:
            con = sqlite3.connect(self._users_uri, uri=True, check_same_thread=False)
            with self._lock:
                self._sqlite.append(con)
            self._local.users = con
        cur = con.execute(sql, list(args))
        names = [d[0] for d in cur.description or []]
        kinds = [self._kinds.get(n, "number") for n in names]
        return [
            {n: _from_sqlite(k, v) for n, k, v in zip(names, kinds, row, strict=True)}
            for row in cur.fetchall()
        ]

    def _where(self, flt: AnomalyFilter, level: str) -> tuple[str, list[Any]]:
        where: list[str] = ["TRUE"]
        args: list[Any] = []
        if flt.score_min is not None:
            where.append("ensemble_score >= ?")
            args.append(flt.score_min)
        if flt.score_max is not None:
            where.append("ensemble_score <= ?")
            args.append(flt.score_max)
        for column in ("persona", "scenario"):
            value = getattr(flt, column)
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if flt.flagged is not None:
            where.append("flagged = ?")
            args.append(flt.flagged)
        tx_conditions: list[str] = []
        tx_args: list[Any] = []
        for column, value in (
            ("hour", flt.hour),
            ("tx_type", flt.tx_type),
            ("country", flt.country),
        ):
            if value is not None:
                tx_conditions.append(f"{column} = ?")
                tx_args.append(value)
        if tx_conditions and level == "transactions":
            where.extend(tx_conditions)
            args.extend(tx_args)
        elif tx_conditions:
            # A user matches when one of their flagged transactions does.
            where.append(
                "user_id IN (SELECT user_id FROM flagged_tx WHERE "
                + " AND ".join(tx_conditions)
                + ")"
            )
            args.extend(tx_args)
        return " AND ".join(where), args

    @staticmethod
    def _ids(ids: list[str]) -> list[int]:
        # Ids that cannot be a BIGINT cannot be in the results either.
        return [i for i in (int(x) for x in ids) if -(2**63) <= i < 2**63]

    def anomalies(
        self,
        flt: AnomalyFilter,
        *,
        level: str = "users",
        offset: int = 0,
        limit: int = 50,
        include_ids: list[str] | None = None,
        exclude_ids: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of anomalies ranked by ensemble score (ties: rank), and the total that
        match. `include_ids`/`exclude_ids` restrict to / leave out user or transaction ids."""
        columns: tuple[str, ...]
        if level == "transactions":
            query, table, columns, id_column = self._query, "tx", TX_SUMMARY, "tx_id"
            id_list = "(SELECT UNNEST(?::BIGINT[]))"

            def ids(values: list[str]) -> Any:
                return self._ids(values)
        else:
            query, table, columns, id_column = self._users, "users", USER_SUMMARY, "user_id"
            id_list = "(SELECT value FROM json_each(?))"

            def ids(values: list[str]) -> Any:
                return json.dumps(self._ids(values))

        where, args = self._where(flt, level)
        if include_ids is not None:
            where += f" AND {id_column} IN {id_list}"
            args = [*args, ids(include_ids)]
            total = int(query(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", args)[0]["n"])
        else:
            key = (level, flt)
            if key not in self._counts:
                if len(self._counts) >= MAX_CACHED_COUNTS:  # filters are free text: bounded
                    self._counts.clear()
                sql = f"SELECT COUNT(*) AS n FROM {table} WHERE {where}"
                self._counts[key] = int(query(sql, args)[0]["n"])
            total = self._counts[key]
            if exclude_ids:
                left_out = [*args, ids(exclude_ids)]
                where_out = f"{where} AND {id_column} IN {id_list}"
                sql = f"SELECT COUNT(*) AS n FROM {table} WHERE {where_out}"
                total -= int(query(sql, left_out)[0]["n"])
                where += f" AND {id_column} NOT IN {id_list}"
                args = left_out
        if where == "TRUE":
            # The whole ranking: the page is a range of places.
            rows = query(
                f"SELECT {', '.join(columns)} FROM {table} WHERE pos > ? AND pos <= ? ORDER BY pos",
                [offset, offset + limit],
            )
        else:
            rows = query(
                f"SELECT {', '.join(columns)} FROM {table} WHERE {where} "
                "ORDER BY pos LIMIT ? OFFSET ?",
                [*args, limit, offset],
            )
        return rows, total

    def user(self, user_id: int) -> dict[str, Any] | None:
        if not -(2**63) <= user_id < 2**63:
            return None
        columns = ", ".join(f'"{c}"' for c in self.user_columns)
        rows = self._users(f"SELECT {columns} FROM users WHERE user_id = ?", [user_id])
        if not rows:
            return None
        row = rows[0]
        return user_view(row, {k: v for k, v in row.items() if k not in USER_NON_FEATURES})

    def user_exists(self, user_id: int) -> bool:
        if not -(2**63) <= user_id < 2**63:
            return False
        return bool(self._users("SELECT 1 AS x FROM users WHERE user_id = ? LIMIT 1", [user_id]))

    def transactions_of(self, user_id: int, limit: int = 200) -> list[dict[str, Any]]:
        if not -(2**63) <= user_id < 2**63:
            return []
        # tx_id breaks ties in ts, so every reader returns the same order.
        return self._query(
            f"SELECT {', '.join(USER_TX_COLUMNS)} FROM history WHERE user_id = ? "
            "ORDER BY ts DESC, tx_id DESC LIMIT ?",
            [user_id, limit],
        )

    def transaction(self, tx_id: int) -> dict[str, Any] | None:
        if not -(2**63) <= tx_id < 2**63:
            return None
        rows = self._query(f"SELECT {', '.join(self._tx_columns)} FROM tx WHERE tx_id = ?", [tx_id])
        return rows[0] if rows else None

    def describe(self) -> str:
        return f"results {self.dir} (serving index {self.index_path.name})"

    def facets(self) -> dict[str, list[Any]]:
        """Values the admin page offers in its filter drop-downs (stored in the index)."""
        if self._facets is None:
            found: dict[str, list[Any]] = {name: [] for name, _ in FACETS}
            for row in self._query("SELECT name, value FROM facets ORDER BY name, value"):
                found[row["name"]].append(row["value"])
            self._facets = found
        return self._facets
