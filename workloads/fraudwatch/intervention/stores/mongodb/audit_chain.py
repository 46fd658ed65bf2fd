"""The audit chain in MongoDB: entries ordered by a unique `_id = seq` (two writers racing
for a seq: one gets a duplicate-key error and chains onto the other's entry), the recorded
head in `meta`, the customers' audit keys, erasure and the format 2 migration. The chain's
rules (sealing, commitments, entry formats) are intervention/audit.py's (`audit.` below)."""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from fraudwatch.intervention import audit
from fraudwatch.intervention.stores.mongodb.database import MongoDatabase
from fraudwatch.intervention.stores.records import (
    BLANKED,
    erasure_record,
    format1_count,
    refuse_unverified_chain,
)
from fraudwatch.intervention.stores.repository import AuditFilter


def _entry(doc: dict[str, Any]) -> dict[str, Any]:
    entry = {key: doc.get(key) for key in audit.STORED_FIELDS}
    entry["commitments"] = dict(entry["commitments"] or {})
    entry["erased"] = bool(entry["erased"])
    return entry


def audit_key(db: Database[dict[str, Any]], subject_id: str, *, create: bool) -> bytes | None:
    """The customer's audit key (collection `audit_keys`, `_id` the subject id); created
    when asked (of two racing creators the first insert wins)."""
    doc = db.audit_keys.find_one({"_id": subject_id})
    if doc is not None:
        return bytes(doc["key"])
    if not create:
        return None
    key = audit.new_key()
    try:
        db.audit_keys.insert_one({"_id": subject_id, "key": key, "created_at": audit.now_iso()})
    except DuplicateKeyError:
        doc = db.audit_keys.find_one({"_id": subject_id})
        assert doc is not None
        return bytes(doc["key"])
    return key


def append_entry(db: Database[dict[str, Any]], entry: dict[str, Any]) -> dict[str, Any]:
    """Seal `entry` onto the end of the chain; returns it sealed."""
    customer = audit.customer_of(entry)
    key = audit_key(db, customer, create=True) if customer is not None else None
    while True:
        last = db.audit.find_one(sort=[("_id", DESCENDING)])
        seq, prev = (int(last["_id"]) + 1, last["hash"]) if last else (1, audit.GENESIS_HASH)
        sealed = audit.seal(entry, seq, prev, key)
        try:
            db.audit.insert_one({"_id": seq, **sealed})
        except DuplicateKeyError:
            continue  # another writer took this seq: chain onto its entry instead
        with contextlib.suppress(DuplicateKeyError):
            db.meta.insert_one({"_id": "audit_head", "seq": 0, "hash": audit.GENESIS_HASH})
        db.meta.update_one(
            {"_id": "audit_head", "seq": {"$lt": seq}},
            {"$set": {"seq": seq, "hash": sealed["hash"]}},
        )
        return sealed


class MongoAuditChain(MongoDatabase):
    def append_audit(self, entry: dict[str, Any]) -> dict[str, Any]:
        return append_entry(self.db, entry)

    def _audit_page(
        self, matching: AuditFilter, limit: int | None, newest_first: bool
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"_id": {"$gt": matching.after_seq}}
        if matching.subject_kind is not None:
            query["subject_kind"] = matching.subject_kind
        if matching.subject_id is not None:
            query["subject_id"] = matching.subject_id
        cursor = self.db.audit.find(query).sort("_id", DESCENDING if newest_first else ASCENDING)
        if limit is not None:
            cursor = cursor.limit(int(limit))
        return [_entry(doc) for doc in cursor]

    def audit_head(self) -> tuple[int, str] | None:
        head = self.db.meta.find_one({"_id": "audit_head"})
        return (int(head["seq"]), head["hash"]) if head and head["seq"] else None

    def audit_keys(self) -> dict[str, bytes]:
        return {str(doc["_id"]): bytes(doc["key"]) for doc in self.db.audit_keys.find({})}

    def erase_audit_subject(self, subject_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        # No transaction: each step can be repeated. The erasure entry goes first (a run cut
        # short leaves entries that still name the customer and the key, so the next run
        # finds the same commitment); the key goes last but one, and a second pass catches an
        # entry appended with the key while the first pass ran.
        uid = str(subject_id)
        key = audit_key(self.db, uid, create=True)
        assert key is not None
        tag, record = erasure_record(entry, key, uid)
        sealed = self.append_audit(record)
        about = {
            "subject_kind": {"$in": list(audit.CUSTOMER_KINDS)},
            "subject_id": uid,
            "commitments.subject_id": tag,
            "erased": {"$ne": True},
        }
        blank = {"$set": {**BLANKED, "erased": True}}
        erased = self.db.audit.update_many(about, blank).modified_count
        state = self.db.state.delete_many({"kind": "account", "subject_id": uid}).deleted_count
        self.db.audit_keys.delete_one({"_id": uid})
        erased += self.db.audit.update_many(about, blank).modified_count
        return {"entry": sealed, "entries": int(erased), "state": int(state)}

    def migrate_audit(self) -> dict[str, Any]:
        # No transaction: entries are re-sealed one by one (the service must be stopped).
        # The head before is kept in `meta` first, so a run cut short is finished by the next
        # one (which then skips the check: the half re-sealed chain cannot verify).
        marker = self.db.meta.find_one({"_id": "audit_migration"})
        entries = self._audit_page(AuditFilter(), None, False)
        if marker is None:
            format1 = format1_count(entries)
            if not format1:
                return {"entry": None, "format1": 0, "entries": len(entries)}
            head = self.audit_head()
            refuse_unverified_chain(entries, head, self.audit_keys())
            seq, hash_ = head or (0, audit.GENESIS_HASH)
            self.db.meta.insert_one(
                {"_id": "audit_migration", "seq": seq, "hash": hash_, "format1": format1}
            )
        else:
            head = (int(marker["seq"]), str(marker["hash"]))
            format1 = int(marker["format1"])
        chain = audit.resealed(
            entries, lambda subject: audit_key(self.db, subject, create=True) or b""
        )
        for entry in chain:
            self.db.audit.replace_one({"_id": entry["seq"]}, {"_id": entry["seq"], **entry})
        sealed = self.append_audit(audit.migration_entry(head, format1))
        self.db.meta.delete_one({"_id": "audit_migration"})
        return {"entry": sealed, "format1": format1, "entries": len(chain)}

    def count_audit(self, *, via_prefix: str, action: str, result: str, since: str) -> int:
        docs = self.db.audit.find(
            {"action": action, "result": result, "ts": {"$gte": since}}, {"via": 1}
        )
        return sum(1 for doc in docs if str(doc.get("via", "")).startswith(via_prefix))
