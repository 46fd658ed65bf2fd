"""MongoDB state store (the cluster setup; MongoDB or FerretDB): `MongoStore(url)`, built in
store.py from one module per part."""

from fraudwatch.intervention.stores.mongodb.store import MongoStore

__all__ = ["MongoStore"]
