"""Who may call the service, in SQLite: API tokens (their hashes) and admin page sessions."""

from __future__ import annotations

import time
from typing import Any

from fraudwatch.intervention.audit import now_iso
from fraudwatch.intervention.stores.sqlite.connections import SqliteDatabase


class SqliteAccess(SqliteDatabase):
    # --- tokens ------------------------------------------------------------------------
    def put_token(self, record: dict[str, Any]) -> None:
        with self._write() as con:
            con.execute(
                "INSERT INTO tokens (token_id, token_hash, role, name, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    record["token_id"],
                    record["token_hash"],
                    record["role"],
                    record["name"],
                    record["created_at"],
                ),
            )

    def get_token(self, token_hash: str) -> dict[str, Any] | None:
        row = self._read_one(
            "SELECT token_id, token_hash, role, name, created_at FROM tokens "
            "WHERE token_hash = ? AND revoked = 0",
            (token_hash,),
        )
        return dict(row) if row else None

    def list_tokens(self) -> list[dict[str, Any]]:
        with self._read() as con:
            rows = con.execute(
                "SELECT token_id, role, name, created_at, revoked FROM tokens ORDER BY created_at"
            ).fetchall()
        return [{**dict(row), "revoked": bool(row["revoked"])} for row in rows]

    def revoke_token(self, token_id: str) -> bool:
        with self._write() as con:
            cur = con.execute(
                "UPDATE tokens SET revoked = 1 WHERE token_id = ? AND revoked = 0", (token_id,)
            )
            con.execute("DELETE FROM sessions WHERE actor = ?", (f"token:{token_id}",))
            return cur.rowcount == 1

    # --- admin page sessions -----------------------------------------------------------
    def create_session(self, session_hash: str, record: dict[str, Any]) -> None:
        with self._write() as con:
            con.execute("DELETE FROM sessions WHERE expires_at <= ?", (time.time(),))
            con.execute(
                "INSERT INTO sessions (session_hash, actor, role, csrf, expires_at, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session_hash,
                    record["actor"],
                    record["role"],
                    record["csrf"],
                    float(record["expires_at"]),
                    record.get("created_at") or now_iso(),
                ),
            )

    def get_session(self, session_hash: str, now: float) -> dict[str, Any] | None:
        row = self._read_one(
            "SELECT actor, role, csrf, expires_at, created_at FROM sessions WHERE session_hash = ?",
            (session_hash,),
        )
        if row is None:
            return None
        if row["expires_at"] <= now:
            with self._write() as con:
                con.execute(
                    "DELETE FROM sessions WHERE session_hash = ? AND expires_at <= ?",
                    (session_hash, now),
                )
            return None
        return dict(row)

    def delete_session(self, session_hash: str) -> bool:
        with self._write() as con:
            cur = con.execute("DELETE FROM sessions WHERE session_hash = ?", (session_hash,))
            return cur.rowcount == 1
