"""Verdicts in MongoDB: analysts' dispositions on accounts and the inline decisions on
transactions (`POST /v1/decisions`)."""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from fraudwatch.intervention.stores.mongodb.audit_chain import append_entry
from fraudwatch.intervention.stores.mongodb.database import MongoDatabase
from fraudwatch.intervention.stores.records import decision_record, disposition_record
from fraudwatch.intervention.stores.repository import (
    DECISION_FIELDS,
    DISPOSITION_FIELDS,
    DecisionFilter,
    DispositionFilter,
    utc_iso,
)


def _page(
    collection: Collection[dict[str, Any]],
    query: dict[str, Any],
    order: list[tuple[str, int]],
    offset: int,
    limit: int | None,
    fields: tuple[str, ...],
) -> tuple[list[dict[str, Any]], int]:
    """One page of the matching documents (only `fields`) and how many match in all."""
    cursor = collection.find(query).sort(order).skip(int(offset))
    if limit is not None:
        cursor = cursor.limit(int(limit))
    items = [{key: doc.get(key) for key in fields} for doc in cursor]
    return items, int(collection.count_documents(query))


class MongoVerdicts(MongoDatabase):
    # --- dispositions ------------------------------------------------------------------
    def record_disposition(
        self, entry: dict[str, Any], disposition: dict[str, Any]
    ) -> dict[str, Any]:
        # No multi-document transaction: the audit entry goes first, so the chain records
        # every disposition that exists (a crash in between leaves an entry without one).
        sealed = append_entry(self.db, entry)
        record = disposition_record(disposition, sealed["seq"])
        self.db.dispositions.insert_one({"_id": record["id"], **record})
        return record

    def _disposition_page(
        self, matching: DispositionFilter, offset: int, limit: int | None
    ) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {}
        if matching.user_id is not None:
            query["user_id"] = int(matching.user_id)
        if matching.label is not None:
            query["label"] = matching.label
        if matching.model_version is not None:
            query["model_version"] = matching.model_version
        window: dict[str, str] = {}
        if matching.since is not None:
            window["$gte"] = matching.since
        if matching.until is not None:
            window["$lte"] = matching.until
        if window:
            query["ts"] = window
        order = [("ts", DESCENDING), ("audit_seq", DESCENDING)]
        return _page(self.db.dispositions, query, order, offset, limit, DISPOSITION_FIELDS)

    def users_with_disposition(self) -> list[int]:
        return sorted({int(u) for u in self.db.dispositions.distinct("user_id")})

    # --- inline decisions --------------------------------------------------------------
    def record_decision(self, decision: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        record = decision_record(decision)
        try:
            # `_id` is the tx_id: the unique index makes the insert the atomic "first wins".
            self.db.decisions.insert_one({"_id": record["tx_id"], **record})
        except DuplicateKeyError:
            stored = self.db.decisions.find_one({"_id": record["tx_id"]})
            assert stored is not None
            return {key: stored.get(key) for key in DECISION_FIELDS}, False
        return record, True

    def get_decision(self, tx_id: str) -> dict[str, Any] | None:
        doc = self.db.decisions.find_one({"_id": str(tx_id)})
        return {key: doc.get(key) for key in DECISION_FIELDS} if doc else None

    def _decision_page(
        self, matching: DecisionFilter, offset: int, limit: int | None
    ) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {}
        if matching.user_id is not None:
            query["user_id"] = matching.user_id
        if matching.since is not None:
            query["decided_at"] = {"$gte": matching.since}
        order = [("decided_at", DESCENDING), ("_id", DESCENDING)]
        return _page(self.db.decisions, query, order, offset, limit, DECISION_FIELDS)

    def prune_decisions(self, before: str) -> int:
        result = self.db.decisions.delete_many(
            {"decided_at": {"$lt": str(utc_iso(before, "microseconds"))}}
        )
        return int(result.deleted_count)
