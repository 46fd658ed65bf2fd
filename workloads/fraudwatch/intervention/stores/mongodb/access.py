"""Who may call the service, in MongoDB: API tokens (their hashes) and admin page sessions."""

from __future__ import annotations

import time
from typing import Any

from pymongo import ASCENDING

from fraudwatch.intervention.audit import now_iso
from fraudwatch.intervention.stores.mongodb.database import MongoDatabase, without_id


class MongoAccess(MongoDatabase):
    # --- tokens ------------------------------------------------------------------------
    def put_token(self, record: dict[str, Any]) -> None:
        self.db.tokens.insert_one({"_id": record["token_id"], **record, "revoked": False})

    def get_token(self, token_hash: str) -> dict[str, Any] | None:
        doc = without_id(self.db.tokens.find_one({"token_hash": token_hash, "revoked": False}))
        if doc:
            doc.pop("revoked", None)
        return doc

    def list_tokens(self) -> list[dict[str, Any]]:
        docs = self.db.tokens.find({}, {"token_hash": 0}).sort("created_at", ASCENDING)
        return [d for d in (without_id(doc) for doc in docs) if d is not None]

    def revoke_token(self, token_id: str) -> bool:
        res = self.db.tokens.update_one(
            {"_id": token_id, "revoked": False}, {"$set": {"revoked": True}}
        )
        self.db.sessions.delete_many({"actor": f"token:{token_id}"})
        return res.modified_count == 1

    # --- admin page sessions -----------------------------------------------------------
    def create_session(self, session_hash: str, record: dict[str, Any]) -> None:
        self.db.sessions.delete_many({"expires_at": {"$lte": time.time()}})
        self.db.sessions.insert_one(
            {
                "_id": session_hash,
                "actor": record["actor"],
                "role": record["role"],
                "csrf": record["csrf"],
                "expires_at": float(record["expires_at"]),
                "created_at": record.get("created_at") or now_iso(),
            }
        )

    def get_session(self, session_hash: str, now: float) -> dict[str, Any] | None:
        doc = self.db.sessions.find_one({"_id": session_hash})
        if doc is None:
            return None
        if float(doc["expires_at"]) <= now:
            self.db.sessions.delete_one({"_id": session_hash, "expires_at": {"$lte": now}})
            return None
        return without_id(doc)

    def delete_session(self, session_hash: str) -> bool:
        return self.db.sessions.delete_one({"_id": session_hash}).deleted_count == 1
