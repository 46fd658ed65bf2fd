"""SQLite state store (the embedded default): `SqliteStore(path)`, built in store.py from one
module per part."""

from fraudwatch.intervention.stores.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
