"""What keeps concurrent requests and processes apart, in MongoDB: leases (a document per
held name, taken over when its holder died), Idempotency-Key claims (leased) and keys seen
once (signed-hook nonces, alert firings)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from fraudwatch.intervention.audit import now_iso
from fraudwatch.intervention.stores.mongodb.database import MongoDatabase, without_id
from fraudwatch.intervention.stores.repository import IDEMPOTENCY_LEASE_SECONDS, LEASE_SECONDS


def acquire_lease(db: Database[dict[str, Any]], lease_id: str) -> str:
    """Hold `lease_id` (waiting up to LEASE_SECONDS); returns the owner to release it with."""
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + LEASE_SECONDS
    while True:
        now = datetime.now(UTC)
        try:
            db.leases.insert_one(
                {
                    "_id": lease_id,
                    "owner": owner,
                    "expires": now + timedelta(seconds=LEASE_SECONDS),
                }
            )
            return owner
        except DuplicateKeyError:
            # A holder that died leaves an expired lease: take it over.
            db.leases.delete_one({"_id": lease_id, "expires": {"$lt": now}})
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not acquire {lease_id} within {LEASE_SECONDS}s")
        time.sleep(0.005)


def release_lease(db: Database[dict[str, Any]], lease_id: str, owner: str) -> None:
    db.leases.delete_one({"_id": lease_id, "owner": owner})


class MongoCoordination(MongoDatabase):
    # --- leases -------------------------------------------------------------------------
    @contextlib.contextmanager
    def lease(self, name: str) -> Iterator[None]:
        lease_id = f"lease:{name}"
        owner = acquire_lease(self.db, lease_id)
        try:
            yield
        finally:
            release_lease(self.db, lease_id, owner)

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
        record = without_id(self.db.idempotency.find_one({"_id": doc_id}))
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
