"""What the policy keeps, in SQLite: the approvals queue (automated actions the circuit
breaker held back) and the settings changed at run time (thresholds)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

from fraudwatch.intervention.audit import now_iso
from fraudwatch.intervention.stores.sqlite.connections import SqliteDatabase


def _approval(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    record.update(json.loads(record.pop("item")))
    return record


class SqlitePolicyState(SqliteDatabase):
    # --- approvals ---------------------------------------------------------------------
    def enqueue_approval(self, item: dict[str, Any]) -> str:
        approval_id = uuid.uuid4().hex
        with self._write() as con:
            con.execute(
                "INSERT INTO approvals (id, created_at, status, item) VALUES (?, ?, 'pending', ?)",
                (approval_id, now_iso(), json.dumps(item)),
            )
        return approval_id

    def list_approvals(self, status: str = "pending") -> list[dict[str, Any]]:
        with self._read() as con:
            rows = con.execute(
                "SELECT * FROM approvals WHERE status = ? ORDER BY created_at", (status,)
            ).fetchall()
        return [_approval(row) for row in rows]

    def get_approval(self, approval_id: str) -> dict[str, Any] | None:
        row = self._read_one("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        return _approval(row) if row else None

    def resolve_approval(self, approval_id: str, status: str, by: str) -> bool:
        with self._write() as con:
            cur = con.execute(
                "UPDATE approvals SET status = ?, resolved_by = ?, resolved_at = ? "
                "WHERE id = ? AND status = 'pending'",
                (status, by, now_iso(), approval_id),
            )
            return cur.rowcount == 1

    # --- settings ----------------------------------------------------------------------
    def get_setting(self, name: str) -> Any:
        row = self._read_one("SELECT value FROM settings WHERE name = ?", (name,))
        return json.loads(row["value"]) if row else None

    def put_setting(self, name: str, value: Any) -> None:
        with self._write() as con:
            con.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, json.dumps(value)),
            )
