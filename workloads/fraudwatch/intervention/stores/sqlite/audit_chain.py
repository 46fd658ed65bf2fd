"""The audit chain in SQLite: entries sealed onto the chain inside the caller's transaction,
the recorded head, the customers' audit keys, erasure and the format 2 migration. The chain's
rules (sealing, commitments, entry formats) are intervention/audit.py's (`audit.` below)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any

from fraudwatch.intervention import audit
from fraudwatch.intervention.stores.records import (
    BLANKED,
    erasure_record,
    format1_count,
    refuse_unverified_chain,
)
from fraudwatch.intervention.stores.repository import AuditFilter
from fraudwatch.intervention.stores.sqlite.connections import SqliteDatabase, where_clause

AUDIT_COLUMNS = audit.STORED_FIELDS


def audit_key(con: sqlite3.Connection, subject_id: str, *, create: bool) -> bytes | None:
    """The customer's audit key; created (in the caller's transaction) when asked."""
    row = con.execute("SELECT key FROM audit_keys WHERE subject_id = ?", (subject_id,)).fetchone()
    if row is not None:
        return bytes(row["key"])
    if not create:
        return None
    key = audit.new_key()
    con.execute(
        "INSERT INTO audit_keys (subject_id, key, created_at) VALUES (?, ?, ?)",
        (subject_id, key, audit.now_iso()),
    )
    return key


def _row(sealed: dict[str, Any]) -> list[Any]:
    values = dict(sealed)
    values["commitments"] = json.dumps(sealed.get("commitments") or {}, sort_keys=True)
    values["erased"] = int(bool(sealed.get("erased")))
    return [values.get(c) for c in AUDIT_COLUMNS]


def _entry(row: sqlite3.Row) -> dict[str, Any]:
    entry = {c: row[c] for c in AUDIT_COLUMNS}
    entry["commitments"] = json.loads(entry["commitments"]) if entry["commitments"] else {}
    entry["erased"] = bool(entry["erased"])
    return entry


def append_entry(con: sqlite3.Connection, entry: dict[str, Any]) -> dict[str, Any]:
    """Seal `entry` onto the chain in the caller's write transaction; returns it sealed."""
    last = con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, audit.GENESIS_HASH)
    customer = audit.customer_of(entry)
    key = audit_key(con, customer, create=True) if customer is not None else None
    sealed = audit.seal(entry, seq, prev, key)
    con.execute(
        f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in AUDIT_COLUMNS)})",
        _row(sealed),
    )
    con.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (seq, sealed["hash"]),
    )
    return sealed


class SqliteAuditChain(SqliteDatabase):
    def append_audit(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._write() as con:
            return append_entry(con, entry)

    def _audit_page(
        self, matching: AuditFilter, limit: int | None, newest_first: bool
    ) -> list[dict[str, Any]]:
        condition, args = where_clause(
            (
                ("seq > ?", matching.after_seq),
                ("subject_kind = ?", matching.subject_kind),
                ("subject_id = ?", matching.subject_id),
            )
        )
        sql = f"SELECT * FROM audit WHERE {condition} ORDER BY seq"
        sql += " DESC" if newest_first else ""
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._read() as con:
            return [_entry(row) for row in con.execute(sql, args)]

    def audit_head(self) -> tuple[int, str] | None:
        row = self._read_one("SELECT seq, hash FROM audit_head WHERE id = 1", ())
        return (row["seq"], row["hash"]) if row else None

    def audit_keys(self) -> dict[str, bytes]:
        with self._read() as con:
            rows = con.execute("SELECT subject_id, key FROM audit_keys").fetchall()
        return {row["subject_id"]: bytes(row["key"]) for row in rows}

    def erase_audit_subject(self, subject_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        # secure_delete: the freed space of the blanked texts and the deleted key is zeroed
        # (else the key's bytes could be read back from the file's free pages); the WAL is
        # then checkpointed and truncated, so no older page image holds them either.
        connection = self._connect()
        connection.execute("PRAGMA secure_delete = ON")
        try:
            done = self._erase_audit_subject(str(subject_id), entry)
        finally:
            connection.execute("PRAGMA secure_delete = OFF")
        with contextlib.suppress(sqlite3.OperationalError):  # busy: the next checkpoint
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return done

    def _erase_audit_subject(self, uid: str, entry: dict[str, Any]) -> dict[str, Any]:
        with self._write() as con:  # one transaction: all of it or nothing
            key = audit_key(con, uid, create=True)
            assert key is not None
            tag, record = erasure_record(entry, key, uid)
            sealed = append_entry(con, record)
            kinds = ", ".join("?" for _ in audit.CUSTOMER_KINDS)
            erased = con.execute(
                f"UPDATE audit SET {', '.join(f'{f} = ?' for f in BLANKED)}, erased = 1 "
                f"WHERE subject_kind IN ({kinds}) AND subject_id = ? AND v IS NOT NULL "
                "AND erased = 0 AND json_extract(commitments, '$.subject_id') = ?",
                (*BLANKED.values(), *audit.CUSTOMER_KINDS, uid, tag),
            ).rowcount
            state = con.execute(
                "DELETE FROM state WHERE kind = 'account' AND subject_id = ?", (uid,)
            ).rowcount
            con.execute("DELETE FROM audit_keys WHERE subject_id = ?", (uid,))
        return {"entry": sealed, "entries": int(erased), "state": int(state)}

    def migrate_audit(self) -> dict[str, Any]:
        with self._write() as con:  # one transaction: no entry is appended meanwhile
            entries = [_entry(r) for r in con.execute("SELECT * FROM audit ORDER BY seq")]
            format1 = format1_count(entries)
            if not format1:
                return {"entry": None, "format1": 0, "entries": len(entries)}
            row = con.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            head = (int(row["seq"]), str(row["hash"])) if row else None
            keys = {
                r["subject_id"]: bytes(r["key"])
                for r in con.execute("SELECT subject_id, key FROM audit_keys")
            }
            refuse_unverified_chain(entries, head, keys)
            chain = audit.resealed(
                entries, lambda subject: audit_key(con, subject, create=True) or b""
            )
            columns = [c for c in AUDIT_COLUMNS if c != "seq"]
            for entry in chain:
                values = dict(zip(AUDIT_COLUMNS, _row(entry), strict=True))
                con.execute(
                    f"UPDATE audit SET {', '.join(f'{c} = ?' for c in columns)} WHERE seq = ?",
                    [*(values[c] for c in columns), entry["seq"]],
                )
            sealed = append_entry(con, audit.migration_entry(head, format1))
        return {"entry": sealed, "format1": format1, "entries": len(chain)}

    def count_audit(self, *, via_prefix: str, action: str, result: str, since: str) -> int:
        with self._read() as con:
            row = con.execute(
                "SELECT COUNT(*) FROM audit WHERE via LIKE ? AND action = ? AND result = ? "
                "AND ts >= ?",
                (via_prefix + "%", action, result, since),
            ).fetchone()
        return int(row[0])
