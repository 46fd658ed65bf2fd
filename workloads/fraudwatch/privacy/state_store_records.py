"""Retention in the intervention service's state store (SQLite or MongoDB/FerretDB).

The store's own interface has no "delete records older than" call (only decisions are pruned,
by the service, after `decisions.retention_days`), so the job speaks to the same database the
store opens — the `state.url` the service uses — with one delete per collection:

| records | removed when (`alerts_and_interventions` cut-off) |
|---|---|
| dispositions | `ts` before the cut-off |
| decisions | `decided_at` before the cut-off |
| approvals | resolved (not pending) and `created_at` before the cut-off |
| idempotency | completed and `created_at` before the cut-off (they hold stored responses) |
| profiles | `last_seen` (or, never seen, `updated_at`) before the cut-off, and the account is neither locked nor under step-up (an open case keeps its profile) |
| sessions | expired (`expires_at` past): they can never be used again, whatever the policy |

Left alone: the audit chain (removing entries would break `fraudwatch audit verify`; its
Elasticsearch copy follows the `audit` policy), account state (it is the lock itself), tokens,
settings and hook replay keys (`hooks.dedupe_seconds`).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudwatch.errors import UserError

log = logging.getLogger("fraudwatch.privacy.retain")

#: collection → (SQL condition, parameter kind) with `?` the cut-off or the current time.
_SQL = {
    "dispositions": "ts < ?",
    "decisions": "decided_at < ?",
    "approvals": "status != 'pending' AND created_at < ?",
    "idempotency": "status = 'done' AND created_at < ?",
    "profiles": "COALESCE(last_seen, updated_at) < ? AND locked = 0 AND step_up = 0",
    "sessions": "expires_at <= ?",
}
#: Collections whose records age by the policy (the others: by their own expiry).
BY_POLICY = ("dispositions", "decisions", "approvals", "idempotency", "profiles")
COLLECTIONS = (*BY_POLICY, "sessions")


def _mongo_filter(collection: str, cutoff: str, now: float) -> dict[str, Any]:
    before = {"$lt": cutoff}
    filters: dict[str, dict[str, Any]] = {
        "dispositions": {"ts": before},
        "decisions": {"decided_at": before},
        "approvals": {"status": {"$ne": "pending"}, "created_at": before},
        "idempotency": {"status": "done", "created_at": before},
        "profiles": {
            "$or": [{"last_seen": before}, {"last_seen": None, "updated_at": before}],
            "state.locked": {"$ne": True},
            "state.step_up": {"$ne": True},
        },
        "sessions": {"expires_at": {"$lte": now}},
    }
    return filters[collection]


@dataclass(frozen=True)
class StoreRecords:
    """Old records of one collection."""

    collection: str
    count: int


class StateStoreRetention:
    """Counts and removes old records in the store a `state.url` names.

    `cutoff` is the first kept day as `YYYY-MM-DD`: the store keeps times as ISO 8601 text in
    UTC, so a time sorts before the day exactly when it lies before that day's midnight."""

    def __init__(self, url: str, cutoff: str, now: float | None = None) -> None:
        self.url = url
        self.cutoff = cutoff
        self.now = time.time() if now is None else now
        if url.startswith("sqlite:///"):
            self.kind = "sqlite"
            self.path = Path(url.removeprefix("sqlite:///"))
            if not self.path.is_file():
                raise UserError(
                    f"state store {url}: no such file; give the service's state.url "
                    "(--state-url or FRAUDWATCH_STATE_URL)"
                )
        elif url.startswith(("mongodb://", "mongodb+srv://")):
            self.kind = "mongodb"
        else:
            raise UserError(
                f"state store URL {url!r} is not supported: use sqlite:///PATH or "
                "mongodb://HOST:PORT/DB"
            )

    def _value(self, collection: str) -> Any:
        return self.now if collection == "sessions" else self.cutoff

    def _sqlite(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        return con

    def _mongo(self) -> tuple[Any, Any]:
        from pymongo import MongoClient

        client: Any = MongoClient(self.url, serverSelectionTimeoutMS=5000)
        return client, client.get_default_database(default="fraudwatch")

    def old_records(self) -> list[StoreRecords]:
        """How many records of each collection are due (collections that do not exist: 0)."""
        found = []
        if self.kind == "sqlite":
            con = self._sqlite()
            try:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
                for c in COLLECTIONS:
                    n = 0
                    if c in tables:
                        sql = f"SELECT count(*) FROM {c} WHERE {_SQL[c]}"
                        n = con.execute(sql, (self._value(c),)).fetchone()[0]
                    found.append(StoreRecords(c, int(n)))
            finally:
                con.close()
            return found
        client, db = self._mongo()
        try:
            for c in COLLECTIONS:
                n = db[c].count_documents(_mongo_filter(c, self.cutoff, self.now))
                found.append(StoreRecords(c, int(n)))
        except Exception as exc:  # pymongo's errors: unreachable, refused
            raise UserError(f"state store {_redacted(self.url)} did not answer ({exc})") from None
        finally:
            client.close()
        return found

    def remove(self, collection: str) -> int:
        """Delete the collection's old records in one statement; how many went."""
        if self.kind == "sqlite":
            con = self._sqlite()
            try:
                con.execute("BEGIN IMMEDIATE")
                cur = con.execute(
                    f"DELETE FROM {collection} WHERE {_SQL[collection]}", (self._value(collection),)
                )
                con.execute("COMMIT")
                removed = int(cur.rowcount)
            finally:
                con.close()
        else:
            client, db = self._mongo()
            try:
                filter_ = _mongo_filter(collection, self.cutoff, self.now)
                removed = int(db[collection].delete_many(filter_).deleted_count)
            finally:
                client.close()
        log.info(
            "removed %d %s record(s) from the state store (before %s)",
            removed,
            collection,
            "now" if collection == "sessions" else self.cutoff,
        )
        return removed


def _redacted(url: str) -> str:
    """The URL without a password (`mongodb://user:secret@host` → `mongodb://user:***@host`)."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
