"""What keeps concurrent requests and processes apart, in SQLite: Idempotency-Key claims
(leased), leases on named sections, and keys seen once (signed-hook nonces, alert firings)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fraudwatch.intervention.audit import now_iso
from fraudwatch.intervention.stores.repository import IDEMPOTENCY_LEASE_SECONDS, LEASE_SECONDS
from fraudwatch.intervention.stores.sqlite.connections import SqliteDatabase


class SqliteCoordination(SqliteDatabase):
    # --- idempotency -------------------------------------------------------------------
    def claim_idempotency(
        self, principal: str, key: str, fingerprint: str, now: float | None = None
    ) -> dict[str, Any] | None:
        now = time.time() if now is None else now
        with self._write() as con:
            row = con.execute(
                "SELECT fingerprint, status, status_code, response, lease_until FROM idempotency "
                "WHERE principal = ? AND key = ?",
                (principal, key),
            ).fetchone()
            if row:
                record = dict(row)
                lease = record.pop("lease_until")
                expired = lease is None or float(lease) <= now
                if (
                    record["status"] == "pending"
                    and expired
                    and record["fingerprint"] == fingerprint
                ):
                    con.execute(
                        "UPDATE idempotency SET lease_until = ? WHERE principal = ? AND key = ?",
                        (now + IDEMPOTENCY_LEASE_SECONDS, principal, key),
                    )
                    return None  # its holder died: this call takes the lease over
                record["response"] = json.loads(record["response"] or "null")
                return record
            con.execute(
                "INSERT INTO idempotency (principal, key, fingerprint, status, created_at, "
                "lease_until) VALUES (?, ?, ?, 'pending', ?, ?)",
                (principal, key, fingerprint, now_iso(), now + IDEMPOTENCY_LEASE_SECONDS),
            )
            return None

    def complete_idempotency(
        self, principal: str, key: str, status_code: int, response: dict[str, Any]
    ) -> None:
        with self._write() as con:
            con.execute(
                "UPDATE idempotency SET status = 'done', status_code = ?, response = ? "
                "WHERE principal = ? AND key = ?",
                (status_code, json.dumps(response), principal, key),
            )

    def release_idempotency(self, principal: str, key: str) -> None:
        with self._write() as con:
            con.execute(
                "DELETE FROM idempotency WHERE principal = ? AND key = ? AND status = 'pending'",
                (principal, key),
            )

    # --- leases -------------------------------------------------------------------------
    @contextmanager
    def lease(self, name: str) -> Iterator[None]:
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + LEASE_SECONDS
        while True:
            now = time.time()
            with self._write() as con:
                # A holder that died leaves an expired lease: take it over.
                con.execute("DELETE FROM leases WHERE name = ? AND expires_at <= ?", (name, now))
                taken = con.execute(
                    "INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (name, owner, now + LEASE_SECONDS),
                ).rowcount
            if taken == 1:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not acquire the lease {name} within {LEASE_SECONDS}s")
            time.sleep(0.005)
        try:
            yield
        finally:
            with self._write() as con:
                con.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))

    # --- things seen once ---------------------------------------------------------------
    def remember_once(self, key: str, expires_at: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self._write() as con:
            con.execute("DELETE FROM seen WHERE expires_at <= ?", (now,))
            cur = con.execute(
                "INSERT INTO seen (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (key, float(expires_at)),
            )
            return cur.rowcount == 1

    def forget(self, key: str) -> None:
        with self._write() as con:
            con.execute("DELETE FROM seen WHERE key = ?", (key,))
