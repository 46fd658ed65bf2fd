"""Read ranked anomalies: the interface every results reader implements, and the embedded
reader over the scored Parquet (docs/data-contract.md) through DuckDB.

The Elasticsearch reader (`elasticsearch_results.py`) answers the same questions from what
`fraudwatch publish --to elasticsearch` indexed; one contract test suite runs on both.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb

from fraudwatch.errors import UserError

USER_SUMMARY = (
    "rank",
    "user_id",
    "persona",
    "ensemble_score",
    "iforest_score",
    "autoencoder_score",
    "lstm_score",
    "flagged",
    "reasons",
    "scenario",
)
TX_SUMMARY = (
    "rank",
    "tx_id",
    "user_id",
    "ts",
    "amount",
    "currency",
    "tx_type",
    "channel",
    "country",
    "status",
    "persona",
    "hour",
    "ensemble_score",
    "flagged",
    "reasons",
    "scenario",
)
# Not the user's features: everything else in users.parquet is shown as a feature.
USER_NON_FEATURES = {*USER_SUMMARY, "top_features", "label"}
#: The columns of a user's transaction history (newest first).
USER_TX_COLUMNS = (
    "tx_id",
    "ts",
    "amount",
    "currency",
    "tx_type",
    "channel",
    "country",
    "ip",
    "device_id",
    "status",
    "hour",
    "ensemble_score",
    "flagged",
    "reasons",
)


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
        "scores": {
            k: row.get(k)
            for k in ("ensemble_score", "iforest_score", "autoencoder_score", "lstm_score")
        },
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


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description or []]
    return [{n: _jsonable(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


class ScoredResults:
    """Queries over SCORED/users.parquet and SCORED/transactions/part-*.parquet."""

    def __init__(self, scored_dir: Path) -> None:
        self.dir = Path(scored_dir)
        users = self.dir / "users.parquet"
        tx_dir = self.dir / "transactions"
        if not users.is_file() or not any(tx_dir.glob("part-*.parquet")):
            raise UserError(
                f"no scored results in {self.dir} (need users.parquet and "
                "transactions/part-*.parquet): run `fraudwatch demo` or pass --scored DIR"
            )
        self._con = duckdb.connect()
        # Timestamps come back in UTC whatever the host's zone (the same text as Elasticsearch).
        self._con.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()
        users_sql = str(users).replace("'", "''")
        tx_sql = str(tx_dir / "part-*.parquet").replace("'", "''")
        self._con.execute(f"CREATE VIEW users AS SELECT * FROM read_parquet('{users_sql}')")
        self._con.execute(f"CREATE VIEW tx AS SELECT * FROM read_parquet('{tx_sql}')")
        self.user_columns = [r[0] for r in self._con.execute("DESCRIBE users").fetchall()]
        self._facets: dict[str, list[Any]] | None = None

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        # A cursor per query: DuckDB connections are not shared across threads.
        with self._lock:
            cur = self._con.cursor()
        try:
            return _rows(cur.execute(sql, list(args)))
        finally:
            cur.close()

    def _where(
        self, flt: AnomalyFilter, level: str, include: list[str] | None, exclude: list[str] | None
    ) -> tuple[str, list[Any]]:
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
        if flt.hour is not None:
            tx_conditions.append("hour = ?")
            tx_args.append(flt.hour)
        if flt.tx_type is not None:
            tx_conditions.append("tx_type = ?")
            tx_args.append(flt.tx_type)
        if flt.country is not None:
            tx_conditions.append("country = ?")
            tx_args.append(flt.country)
        if tx_conditions and level == "transactions":
            where.extend(tx_conditions)
            args.extend(tx_args)
        elif tx_conditions:
            # A user matches when one of their flagged transactions does.
            where.append(
                "user_id IN (SELECT user_id FROM tx WHERE flagged AND "
                + " AND ".join(tx_conditions)
                + ")"
            )
            args.extend(tx_args)
        id_column = "tx_id" if level == "transactions" else "user_id"
        if include is not None:
            where.append(f"{id_column} IN (SELECT UNNEST(?::BIGINT[]))")
            args.append([int(i) for i in include])
        if exclude:
            where.append(f"{id_column} NOT IN (SELECT UNNEST(?::BIGINT[]))")
            args.append([int(i) for i in exclude])
        return " AND ".join(where), args

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
        table, columns = ("tx", TX_SUMMARY) if level == "transactions" else ("users", USER_SUMMARY)
        where, args = self._where(flt, level, include_ids, exclude_ids)
        total = self._query(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", args)[0]["n"]
        rows = self._query(
            f"SELECT {', '.join(columns)} FROM {table} WHERE {where} "
            "ORDER BY ensemble_score DESC, rank LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return rows, int(total)

    def user(self, user_id: int) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM users WHERE user_id = ?", [user_id])
        if not rows:
            return None
        row = rows[0]
        return user_view(row, {k: v for k, v in row.items() if k not in USER_NON_FEATURES})

    def user_exists(self, user_id: int) -> bool:
        return bool(self._query("SELECT 1 AS x FROM users WHERE user_id = ? LIMIT 1", [user_id]))

    def transactions_of(self, user_id: int, limit: int = 200) -> list[dict[str, Any]]:
        # tx_id breaks ties in ts, so every reader returns the same order.
        return self._query(
            f"SELECT {', '.join(USER_TX_COLUMNS)} FROM tx WHERE user_id = ? "
            "ORDER BY ts DESC, tx_id DESC LIMIT ?",
            [user_id, limit],
        )

    def transaction(self, tx_id: int) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM tx WHERE tx_id = ?", [tx_id])
        if not rows:
            return None
        row = rows[0]
        row.pop("label", None)
        return row

    def describe(self) -> str:
        return f"results {self.dir}"

    def facets(self) -> dict[str, list[Any]]:
        """Values the admin page offers in its filter drop-downs (computed once: the scored
        files do not change under a running service)."""
        if self._facets is None:
            self._facets = self._compute_facets()
        return self._facets

    def _compute_facets(self) -> dict[str, list[Any]]:
        return {
            "persona": [
                r["v"]
                for r in self._query(
                    "SELECT DISTINCT persona AS v FROM users WHERE persona IS NOT NULL ORDER BY 1"
                )
            ],
            "scenario": [
                r["v"]
                for r in self._query(
                    "SELECT DISTINCT scenario AS v FROM users WHERE scenario IS NOT NULL ORDER BY 1"
                )
            ],
            "tx_type": [
                r["v"]
                for r in self._query(
                    "SELECT DISTINCT tx_type AS v FROM tx WHERE tx_type IS NOT NULL ORDER BY 1"
                )
            ],
            "country": [
                r["v"]
                for r in self._query(
                    "SELECT DISTINCT country AS v FROM tx WHERE country IS NOT NULL ORDER BY 1"
                )
            ],
        }


def open_results(settings: Any) -> ResultsReader:
    """The reader the settings select: Elasticsearch when `results.elasticsearch_url` is set,
    else the scored Parquet in `results.scored`."""
    if settings.elasticsearch.url:
        from fraudwatch.intervention.elasticsearch_results import ElasticsearchResults

        return ElasticsearchResults.from_settings(settings.elasticsearch)
    return ScoredResults(settings.scored_dir)
