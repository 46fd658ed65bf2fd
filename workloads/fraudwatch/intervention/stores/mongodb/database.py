"""The MongoDB state store's client, database and indexes (MongoDB or FerretDB)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient


def without_id(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored document as the store returns it: a copy without its `_id`."""
    if doc is None:
        return None
    doc = dict(doc)
    doc.pop("_id", None)
    return doc


class MongoDatabase:
    """The client and database every part of the MongoDB store reads and writes through;
    the indexes are created when it is opened."""

    def __init__(self, url: str, database: str | None = None) -> None:
        self.client: MongoClient[dict[str, Any]] = MongoClient(
            url, serverSelectionTimeoutMS=5000, tz_aware=True
        )
        default_db = self.client.get_default_database(default="fraudwatch")
        self.db = self.client[database] if database else default_db
        self.db.tokens.create_index("token_hash", unique=True)
        self.db.audit.create_index([("subject_kind", ASCENDING), ("subject_id", ASCENDING)])
        # The circuit breaker counts automated locks in its window on every alert.
        self.db.audit.create_index(
            [("action", ASCENDING), ("result", ASCENDING), ("ts", ASCENDING)]
        )
        self.db.sessions.create_index("actor")
        # get_state, states_of (a page of the anomaly list) and subjects_with read by these.
        self.db.state.create_index([("kind", ASCENDING), ("subject_id", ASCENDING)])
        self.db.state.create_index([("kind", ASCENDING), ("field", ASCENDING)])
        self.db.seen.create_index("expires_at")
        self.db.dispositions.create_index("user_id")
        self.db.dispositions.create_index([("ts", DESCENDING), ("audit_seq", DESCENDING)])
        self.db.decisions.create_index([("user_id", ASCENDING), ("decided_at", DESCENDING)])
        self.db.decisions.create_index("decided_at")

    def close(self) -> None:
        self.client.close()
