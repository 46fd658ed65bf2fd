"""State stores of the intervention service: one interface, SQLite (default) and MongoDB."""

from __future__ import annotations

from fraudwatch.errors import UserError
from fraudwatch.intervention.stores.repository import StateStore


def open_store(url: str) -> StateStore:
    """Open the store a `state.url` names: `sqlite:///PATH` or `mongodb://HOST:PORT/DB`."""
    if url.startswith("sqlite:///"):
        from fraudwatch.intervention.stores.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from fraudwatch.intervention.stores.mongodb import MongoStore

        return MongoStore(url)
    raise UserError(
        f"state store URL {url!r} is not supported: use sqlite:///PATH or mongodb://HOST:PORT/DB"
    )


__all__ = ["StateStore", "open_store"]
