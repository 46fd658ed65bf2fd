"""MongoDB state store (the cluster setup). Works on MongoDB and on FerretDB.

No multi-document transactions are needed: the audit chain is ordered by a unique `_id = seq`
(two writers racing for the same seq: one gets a duplicate-key error and retries), and each
intervention holds a short per-subject lease document while it reads state, appends the
audit entry and writes the new state, so concurrent lock/unlock on one account serialise.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from fraudwatch.intervention.audit import (
    CUSTOMER_KINDS,
    ERASED,
    ERASURE_KIND,
    GENESIS_HASH,
    PERSONAL_FIELDS,
    STORED_FIELDS,
    MigrationRefused,
    commitment,
    customer_of,
    migration_entry,
    new_key,
    now_iso,
    resealed,
    seal,
    verify_chain,
)
from fraudwatch.intervention.stores.repository import (
    ACCOUNT_FLAGS,
    ACTION_EFFECTS,
    DECISION_FIELDS,
    DISPOSITION_FIELDS,
    IDEMPOTENCY_LEASE_SECONDS,
    StateStore,
    utc_iso,
)

LEASE_SECONDS = 30


def _clean(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    doc = dict(doc)
    doc.pop("_id", None)
    return doc


class MongoStore(StateStore):
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

    # --- audit -------------------------------------------------------------------------
    def _key(self, subject_id: str, *, create: bool) -> bytes | None:
        """The customer's audit key (collection `audit_keys`, `_id` the subject id); created
        when asked (of two racing creators the first insert wins)."""
        doc = self.db.audit_keys.find_one({"_id": subject_id})
        if doc is not None:
            return bytes(doc["key"])
        if not create:
            return None
        key = new_key()
        try:
            self.db.audit_keys.insert_one({"_id": subject_id, "key": key, "created_at": now_iso()})
        except DuplicateKeyError:
            doc = self.db.audit_keys.find_one({"_id": subject_id})
            assert doc is not None
            return bytes(doc["key"])
        return key

    def append_audit(self, entry: dict[str, Any]) -> dict[str, Any]:
        customer = customer_of(entry)
        key = self._key(customer, create=True) if customer is not None else None
        while True:
            last = self.db.audit.find_one(sort=[("_id", DESCENDING)])
            seq, prev = (int(last["_id"]) + 1, last["hash"]) if last else (1, GENESIS_HASH)
            sealed = seal(entry, seq, prev, key)
            try:
                self.db.audit.insert_one({"_id": seq, **sealed})
            except DuplicateKeyError:
                continue  # another writer took this seq: chain onto its entry instead
            with contextlib.suppress(DuplicateKeyError):
                self.db.meta.insert_one({"_id": "audit_head", "seq": 0, "hash": GENESIS_HASH})
            self.db.meta.update_one(
                {"_id": "audit_head", "seq": {"$lt": seq}},
                {"$set": {"seq": seq, "hash": sealed["hash"]}},
            )
            return sealed

    def audit_entries(
        self,
        *,
        subject_kind: str | None = None,
        subject_id: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"_id": {"$gt": after_seq}}
        if subject_kind is not None:
            query["subject_kind"] = subject_kind
        if subject_id is not None:
            query["subject_id"] = str(subject_id)
        cursor = self.db.audit.find(query).sort("_id", DESCENDING if newest_first else ASCENDING)
        if limit is not None:
            cursor = cursor.limit(int(limit))
        return [self._entry(doc) for doc in cursor]

    @staticmethod
    def _entry(doc: dict[str, Any]) -> dict[str, Any]:
        entry = {key: doc.get(key) for key in STORED_FIELDS}
        entry["commitments"] = dict(entry["commitments"] or {})
        entry["erased"] = bool(entry["erased"])
        return entry

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
        key = self._key(uid, create=True)
        assert key is not None
        tag = commitment(key, "subject_id", uid)
        sealed = self.append_audit({**entry, "subject_kind": ERASURE_KIND, "subject_id": tag})
        about = {
            "subject_kind": {"$in": list(CUSTOMER_KINDS)},
            "subject_id": uid,
            "commitments.subject_id": tag,
            "erased": {"$ne": True},
        }
        blank = {"$set": {**dict.fromkeys(PERSONAL_FIELDS, ERASED), "erased": True}}
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
        entries = self.audit_entries()
        if marker is None:
            format1 = sum(1 for e in entries if not e.get("v"))
            if not format1:
                return {"entry": None, "format1": 0, "entries": len(entries)}
            head = self.audit_head()
            check = verify_chain(entries, head, self.audit_keys())
            if not check.ok:
                raise MigrationRefused(check.problem)
            seq, hash_ = head or (0, GENESIS_HASH)
            self.db.meta.insert_one(
                {"_id": "audit_migration", "seq": seq, "hash": hash_, "format1": format1}
            )
        else:
            head = (int(marker["seq"]), str(marker["hash"]))
            format1 = int(marker["format1"])
        chain = resealed(entries, lambda subject: self._key(subject, create=True) or b"")
        for entry in chain:
            self.db.audit.replace_one({"_id": entry["seq"]}, {"_id": entry["seq"], **entry})
        sealed = self.append_audit(migration_entry(head, format1))
        self.db.meta.delete_one({"_id": "audit_migration"})
        return {"entry": sealed, "format1": format1, "entries": len(chain)}

    def count_audit(self, *, via_prefix: str, action: str, result: str, since: str) -> int:
        docs = self.db.audit.find(
            {"action": action, "result": result, "ts": {"$gte": since}}, {"via": 1}
        )
        return sum(1 for doc in docs if str(doc.get("via", "")).startswith(via_prefix))

    # --- interventions -----------------------------------------------------------------
    def _acquire(self, lease_id: str) -> str:
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + LEASE_SECONDS
        while True:
            now = datetime.now(UTC)
            try:
                self.db.leases.insert_one(
                    {
                        "_id": lease_id,
                        "owner": owner,
                        "expires": now + timedelta(seconds=LEASE_SECONDS),
                    }
                )
                return owner
            except DuplicateKeyError:
                # A holder that died leaves an expired lease: take it over.
                self.db.leases.delete_one({"_id": lease_id, "expires": {"$lt": now}})
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not acquire {lease_id} within {LEASE_SECONDS}s")
            time.sleep(0.005)

    @contextlib.contextmanager
    def lease(self, name: str) -> Iterator[None]:
        lease_id = f"lease:{name}"
        owner = self._acquire(lease_id)
        try:
            yield
        finally:
            self.db.leases.delete_one({"_id": lease_id, "owner": owner})

    def apply_intervention(self, entry: dict[str, Any], subject_id: str) -> dict[str, Any]:
        kind, field, value = ACTION_EFFECTS[entry["action"]]
        lease_id = f"{kind}:{subject_id}"
        owner = self._acquire(lease_id)
        try:
            doc = self.db.state.find_one({"_id": f"{kind}:{subject_id}:{field}"})
            current = bool(doc["value"]) if doc else False
            entry = {**entry, "subject_kind": kind, "subject_id": str(subject_id)}
            entry["result"] = "applied" if current != value else "no_change"
            sealed = self.append_audit(entry)
            self.db.state.update_one(
                {"_id": f"{kind}:{subject_id}:{field}"},
                {
                    "$set": {
                        "kind": kind,
                        "subject_id": str(subject_id),
                        "field": field,
                        "value": value,
                        "seq": sealed["seq"],
                    }
                },
                upsert=True,
            )
            if kind == "account":
                self._ensure_profile(str(subject_id))
                self.db.profiles.update_one(
                    {"_id": str(subject_id)},
                    {"$set": {f"state.{field}": value, "updated_at": now_iso()}},
                )
            return sealed
        finally:
            self.db.leases.delete_one({"_id": lease_id, "owner": owner})

    def get_state(self, kind: str, subject_id: str) -> dict[str, bool]:
        docs = self.db.state.find({"kind": kind, "subject_id": str(subject_id)})
        return {doc["field"]: bool(doc["value"]) for doc in docs}

    def states_of(self, kind: str, subject_ids: list[str]) -> dict[str, dict[str, bool]]:
        found: dict[str, dict[str, bool]] = {str(i): {} for i in subject_ids}
        if found:
            docs = self.db.state.find({"kind": kind, "subject_id": {"$in": list(found)}})
            for doc in docs:
                found[doc["subject_id"]][doc["field"]] = bool(doc["value"])
        return found

    def state_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "kind": doc.get("kind"),
                "subject_id": doc.get("subject_id"),
                "field": doc.get("field"),
                "value": bool(doc.get("value")),
                "seq": doc.get("seq"),
            }
            for doc in self.db.state.find({})
        ]

    def subjects_with(self, kind: str, field: str) -> list[str]:
        docs = self.db.state.find({"kind": kind, "field": field, "value": True})
        return [doc["subject_id"] for doc in docs]

    # --- idempotency -------------------------------------------------------------------
    def claim_idempotency(
        self, principal: str, key: str, fingerprint: str, now: float | None = None
    ) -> dict[str, Any] | None:
        now = time.time() if now is None else now
        doc_id = f"{principal}\x00{key}"
        try:
            self.db.idempotency.insert_one(
                {
                    "_id": doc_id,
                    "fingerprint": fingerprint,
                    "status": "pending",
                    "status_code": None,
                    "response": None,
                    "created_at": now_iso(),
                    "lease_until": now + IDEMPOTENCY_LEASE_SECONDS,
                }
            )
            return None
        except DuplicateKeyError:
            pass
        # A pending claim whose holder died (lease ran out): take it over, atomically.
        taken = self.db.idempotency.find_one_and_update(
            {
                "_id": doc_id,
                "status": "pending",
                "fingerprint": fingerprint,
                "$or": [{"lease_until": {"$lte": now}}, {"lease_until": None}],
            },
            {"$set": {"lease_until": now + IDEMPOTENCY_LEASE_SECONDS}},
        )
        if taken is not None:
            return None
        record = _clean(self.db.idempotency.find_one({"_id": doc_id}))
        if record is not None:
            record.pop("lease_until", None)
        return record

    def complete_idempotency(
        self, principal: str, key: str, status_code: int, response: dict[str, Any]
    ) -> None:
        self.db.idempotency.update_one(
            {"_id": f"{principal}\x00{key}"},
            {"$set": {"status": "done", "status_code": status_code, "response": response}},
        )

    def release_idempotency(self, principal: str, key: str) -> None:
        self.db.idempotency.delete_one({"_id": f"{principal}\x00{key}", "status": "pending"})

    # --- things seen once ---------------------------------------------------------------
    def remember_once(self, key: str, expires_at: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        self.db.seen.delete_many({"expires_at": {"$lte": now}})
        try:
            self.db.seen.insert_one({"_id": key, "expires_at": float(expires_at)})
        except DuplicateKeyError:
            return False
        return True

    def forget(self, key: str) -> None:
        self.db.seen.delete_one({"_id": key})

    # --- tokens ------------------------------------------------------------------------
    def put_token(self, record: dict[str, Any]) -> None:
        self.db.tokens.insert_one({"_id": record["token_id"], **record, "revoked": False})

    def get_token(self, token_hash: str) -> dict[str, Any] | None:
        doc = _clean(self.db.tokens.find_one({"token_hash": token_hash, "revoked": False}))
        if doc:
            doc.pop("revoked", None)
        return doc

    def list_tokens(self) -> list[dict[str, Any]]:
        docs = self.db.tokens.find({}, {"token_hash": 0}).sort("created_at", ASCENDING)
        return [d for d in (_clean(doc) for doc in docs) if d is not None]

    def revoke_token(self, token_id: str) -> bool:
        res = self.db.tokens.update_one(
            {"_id": token_id, "revoked": False}, {"$set": {"revoked": True}}
        )
        self.db.sessions.delete_many({"actor": f"token:{token_id}"})
        return res.modified_count == 1

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
        return [d for d in (_clean(doc) for doc in docs) if d is not None]

    def get_approval(self, approval_id: str) -> dict[str, Any] | None:
        return _clean(self.db.approvals.find_one({"_id": approval_id}))

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
        return _clean(doc)

    def delete_session(self, session_hash: str) -> bool:
        return self.db.sessions.delete_one({"_id": session_hash}).deleted_count == 1

    # --- user profiles -----------------------------------------------------------------
    def _ensure_profile(self, user_id: str) -> None:
        """Create the profile with the account's current state unless it exists."""
        state = self.get_state("account", user_id)
        with contextlib.suppress(DuplicateKeyError):
            self.db.profiles.insert_one(
                {
                    "_id": user_id,
                    "user_id": user_id,
                    "persona": None,
                    "last_seen": None,
                    "state": {flag: state.get(flag, False) for flag in ACCOUNT_FLAGS},
                    "updated_at": now_iso(),
                }
            )

    @staticmethod
    def _profile(doc: dict[str, Any]) -> dict[str, Any]:
        state = doc.get("state") or {}
        return {
            "user_id": doc["user_id"],
            "persona": doc.get("persona"),
            "last_seen": doc.get("last_seen"),
            "state": {flag: bool(state.get(flag, False)) for flag in ACCOUNT_FLAGS},
            "updated_at": doc.get("updated_at"),
        }

    def touch_profile(
        self, user_id: str, *, persona: str | None = None, last_seen: str | None = None
    ) -> dict[str, Any]:
        user_id = str(user_id)
        last_seen = utc_iso(last_seen)
        self._ensure_profile(user_id)
        changes: dict[str, Any] = {"updated_at": now_iso()}
        if persona is not None:
            changes["persona"] = persona
        self.db.profiles.update_one({"_id": user_id}, {"$set": changes})
        if last_seen is not None:
            # Only ever forward: the filter makes the update conditional (no $max needed).
            self.db.profiles.update_one(
                {
                    "_id": user_id,
                    "$or": [{"last_seen": None}, {"last_seen": {"$lt": last_seen}}],
                },
                {"$set": {"last_seen": last_seen}},
            )
        profile = self.get_profile(user_id)
        assert profile is not None
        return profile

    def get_profile(self, user_id: str) -> dict[str, Any] | None:
        doc = self.db.profiles.find_one({"_id": str(user_id)})
        return self._profile(doc) if doc else None

    # --- dispositions ------------------------------------------------------------------
    def record_disposition(
        self, entry: dict[str, Any], disposition: dict[str, Any]
    ) -> dict[str, Any]:
        # No multi-document transaction: the audit entry goes first, so the chain records
        # every disposition that exists (a crash in between leaves an entry without one).
        sealed = self.append_audit(entry)
        record = {key: disposition.get(key) for key in DISPOSITION_FIELDS}
        record["audit_seq"] = sealed["seq"]
        self.db.dispositions.insert_one({"_id": record["id"], **record})
        return record

    def dispositions(
        self,
        *,
        user_id: int | None = None,
        label: str | None = None,
        since: str | None = None,
        until: str | None = None,
        model_version: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {}
        if user_id is not None:
            query["user_id"] = int(user_id)
        if label is not None:
            query["label"] = label
        if model_version is not None:
            query["model_version"] = model_version
        window: dict[str, str] = {}
        if since is not None:
            window["$gte"] = str(utc_iso(since, "microseconds"))
        if until is not None:
            window["$lte"] = str(utc_iso(until, "microseconds"))
        if window:
            query["ts"] = window
        cursor = (
            self.db.dispositions.find(query)
            .sort([("ts", DESCENDING), ("audit_seq", DESCENDING)])
            .skip(int(offset))
        )
        if limit is not None:
            cursor = cursor.limit(int(limit))
        items = [{key: doc.get(key) for key in DISPOSITION_FIELDS} for doc in cursor]
        return items, int(self.db.dispositions.count_documents(query))

    def users_with_disposition(self) -> list[int]:
        return sorted({int(u) for u in self.db.dispositions.distinct("user_id")})

    # --- inline decisions --------------------------------------------------------------
    @staticmethod
    def _decision(doc: dict[str, Any]) -> dict[str, Any]:
        return {key: doc.get(key) for key in DECISION_FIELDS}

    def record_decision(self, decision: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        record = {key: decision.get(key) for key in DECISION_FIELDS}
        record["tx_id"] = str(record["tx_id"])
        record["decided_at"] = utc_iso(record["decided_at"], "microseconds")
        record["fallback"] = bool(record["fallback"])
        try:
            # `_id` is the tx_id: the unique index makes the insert the atomic "first wins".
            self.db.decisions.insert_one({"_id": record["tx_id"], **record})
        except DuplicateKeyError:
            stored = self.db.decisions.find_one({"_id": record["tx_id"]})
            assert stored is not None
            return self._decision(stored), False
        return record, True

    def get_decision(self, tx_id: str) -> dict[str, Any] | None:
        doc = self.db.decisions.find_one({"_id": str(tx_id)})
        return self._decision(doc) if doc else None

    def decisions(
        self,
        *,
        user_id: int | None = None,
        since: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {}
        if user_id is not None:
            query["user_id"] = int(user_id)
        if since is not None:
            query["decided_at"] = {"$gte": str(utc_iso(since, "microseconds"))}
        cursor = (
            self.db.decisions.find(query)
            .sort([("decided_at", DESCENDING), ("_id", DESCENDING)])
            .skip(int(offset))
        )
        if limit is not None:
            cursor = cursor.limit(int(limit))
        items = [self._decision(doc) for doc in cursor]
        return items, int(self.db.decisions.count_documents(query))

    def prune_decisions(self, before: str) -> int:
        result = self.db.decisions.delete_many(
            {"decided_at": {"$lt": str(utc_iso(before, "microseconds"))}}
        )
        return int(result.deleted_count)
