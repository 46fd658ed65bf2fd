"""What the policy keeps, in MongoDB: the approvals queue (automated actions the circuit
breaker held back) and the settings changed at run time (thresholds)."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from fraudwatch.intervention.audit import now_iso
from fraudwatch.intervention.stores.mongodb.database import MongoDatabase, without_id


class MongoPolicyState(MongoDatabase):
    # --- approvals ---------------------------------------------------------------------
    def enqueue_approval(self, item: dict[str, Any]) -> str:
        approval_id = uuid.uuid4().hex
        self.db.approvals.insert_one(
            {
                "_id": approval_id,
                "id": approval_id,
                "created_at": now_iso(),
                "status": "pending",
                "resolved_by": None,
                "resolved_at": None,
                **item,
            }
        )
        return approval_id

    def list_approvals(self, status: str = "pending") -> list[dict[str, Any]]:
        docs = self.db.approvals.find({"status": status}).sort("created_at", ASCENDING)
        return [d for d in (without_id(doc) for doc in docs) if d is not None]

    def get_approval(self, approval_id: str) -> dict[str, Any] | None:
        return without_id(self.db.approvals.find_one({"_id": approval_id}))

    def resolve_approval(self, approval_id: str, status: str, by: str) -> bool:
        doc = self.db.approvals.find_one_and_update(
            {"_id": approval_id, "status": "pending"},
            {"$set": {"status": status, "resolved_by": by, "resolved_at": now_iso()}},
            return_document=ReturnDocument.AFTER,
        )
        return doc is not None

    # --- settings ----------------------------------------------------------------------
    def get_setting(self, name: str) -> Any:
        doc = self.db.settings.find_one({"_id": name})
        return doc["value"] if doc else None

    def put_setting(self, name: str, value: Any) -> None:
        self.db.settings.update_one({"_id": name}, {"$set": {"value": value}}, upsert=True)
