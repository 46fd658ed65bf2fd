"""Interventions in SQLite: the subjects' flags they set (each with the audit entry that set
it, in one transaction) and the user profiles that carry an account's flags."""

from __future__ import annotations

import sqlite3
from typing import Any

from fraudwatch.intervention.audit import now_iso
from fraudwatch.intervention.stores.records import intervention_entry, profile_view
from fraudwatch.intervention.stores.repository import ACTION_EFFECTS, utc_iso
from fraudwatch.intervention.stores.sqlite.audit_chain import append_entry
from fraudwatch.intervention.stores.sqlite.connections import SqliteDatabase


def _ensure_profile(con: sqlite3.Connection, user_id: str) -> None:
    """Create the profile with the account's current state unless it exists."""
    flags = {
        row["field"]: int(row["value"])
        for row in con.execute(
            "SELECT field, value FROM state WHERE kind = 'account' AND subject_id = ?",
            (user_id,),
        )
    }
    con.execute(
        "INSERT INTO profiles (user_id, locked, step_up, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id) DO NOTHING",
        (user_id, flags.get("locked", 0), flags.get("step_up", 0), now_iso()),
    )


def _profile(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    return profile_view(
        record["user_id"], record["persona"], record["last_seen"], record, record["updated_at"]
    )


class SqliteInterventions(SqliteDatabase):
    # --- interventions -----------------------------------------------------------------
    def apply_intervention(self, entry: dict[str, Any], subject_id: str) -> dict[str, Any]:
        kind, field, value = ACTION_EFFECTS[entry["action"]]
        with self._write() as con:
            row = con.execute(
                "SELECT value FROM state WHERE kind = ? AND subject_id = ? AND field = ?",
                (kind, str(subject_id), field),
            ).fetchone()
            current = bool(row["value"]) if row else False
            sealed = append_entry(con, intervention_entry(entry, kind, subject_id, current, value))
            con.execute(
                "INSERT INTO state (kind, subject_id, field, value, seq) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, subject_id, field) DO UPDATE SET value = excluded.value, "
                "seq = excluded.seq",
                (kind, str(subject_id), field, int(value), sealed["seq"]),
            )
            if kind == "account":
                _ensure_profile(con, str(subject_id))
                con.execute(
                    f"UPDATE profiles SET {field} = ?, updated_at = ? WHERE user_id = ?",
                    (int(value), now_iso(), str(subject_id)),
                )
            return sealed

    def get_state(self, kind: str, subject_id: str) -> dict[str, bool]:
        with self._read() as con:
            rows = con.execute(
                "SELECT field, value FROM state WHERE kind = ? AND subject_id = ?",
                (kind, str(subject_id)),
            ).fetchall()
        return {row["field"]: bool(row["value"]) for row in rows}

    def states_of(self, kind: str, subject_ids: list[str]) -> dict[str, dict[str, bool]]:
        found: dict[str, dict[str, bool]] = {str(i): {} for i in subject_ids}
        ids = list(found)
        with self._read() as con:
            for start in range(0, len(ids), 500):  # below SQLite's bound-parameter limit
                chunk = ids[start : start + 500]
                rows = con.execute(
                    "SELECT subject_id, field, value FROM state WHERE kind = ? AND subject_id "
                    f"IN ({', '.join('?' for _ in chunk)})",
                    (kind, *chunk),
                ).fetchall()
                for row in rows:
                    found[row["subject_id"]][row["field"]] = bool(row["value"])
        return found

    def state_rows(self) -> list[dict[str, Any]]:
        with self._read() as con:
            rows = con.execute("SELECT kind, subject_id, field, value, seq FROM state").fetchall()
        return [{**dict(row), "value": bool(row["value"])} for row in rows]

    def subjects_with(self, kind: str, field: str) -> list[str]:
        with self._read() as con:
            rows = con.execute(
                "SELECT subject_id FROM state WHERE kind = ? AND field = ? AND value = 1",
                (kind, field),
            ).fetchall()
        return [row["subject_id"] for row in rows]

    # --- user profiles -----------------------------------------------------------------
    def touch_profile(
        self, user_id: str, *, persona: str | None = None, last_seen: str | None = None
    ) -> dict[str, Any]:
        last_seen = utc_iso(last_seen)
        with self._write() as con:
            _ensure_profile(con, str(user_id))
            con.execute(
                "UPDATE profiles SET persona = COALESCE(?, persona), "
                "last_seen = CASE WHEN last_seen IS NULL OR ? > last_seen THEN COALESCE(?, "
                "last_seen) ELSE last_seen END, updated_at = ? WHERE user_id = ?",
                (persona, last_seen, last_seen, now_iso(), str(user_id)),
            )
            row = con.execute(
                "SELECT * FROM profiles WHERE user_id = ?", (str(user_id),)
            ).fetchone()
        return _profile(row)

    def get_profile(self, user_id: str) -> dict[str, Any] | None:
        row = self._read_one("SELECT * FROM profiles WHERE user_id = ?", (str(user_id),))
        return _profile(row) if row else None
