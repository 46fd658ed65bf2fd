"""SQLite state store: the embedded default. One file, safe across threads and processes
(every write runs in a `BEGIN IMMEDIATE` transaction, so interventions are serialised)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    LEASE_SECONDS,
    StateStore,
    utc_iso,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, actor TEXT, role TEXT, via TEXT, action TEXT,
    subject_kind TEXT, subject_id TEXT, reason TEXT, alert_id TEXT, result TEXT, detail TEXT,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL, v INTEGER, commitments TEXT,
    erased INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject_kind, subject_id);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action, result, ts);
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER,
    hash TEXT);
CREATE TABLE IF NOT EXISTS audit_keys (subject_id TEXT PRIMARY KEY, key BLOB NOT NULL,
    created_at TEXT);
CREATE TABLE IF NOT EXISTS state (kind TEXT, subject_id TEXT, field TEXT, value INTEGER,
    seq INTEGER, PRIMARY KEY (kind, subject_id, field));
CREATE TABLE IF NOT EXISTS idempotency (principal TEXT, key TEXT, fingerprint TEXT,
    status TEXT, status_code INTEGER, response TEXT, created_at TEXT, lease_until REAL,
    PRIMARY KEY (principal, key));
CREATE TABLE IF NOT EXISTS tokens (token_id TEXT PRIMARY KEY, token_hash TEXT UNIQUE,
    role TEXT, name TEXT, created_at TEXT, revoked INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, created_at TEXT, status TEXT,
    item TEXT, resolved_by TEXT, resolved_at TEXT);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS sessions (session_hash TEXT PRIMARY KEY, actor TEXT, role TEXT,
    csrf TEXT, expires_at REAL, created_at TEXT);
CREATE INDEX IF NOT EXISTS sessions_actor ON sessions (actor);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL,
    expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS seen_expiry ON seen (expires_at);
CREATE TABLE IF NOT EXISTS profiles (user_id TEXT PRIMARY KEY, persona TEXT, last_seen TEXT,
    locked INTEGER NOT NULL DEFAULT 0, step_up INTEGER NOT NULL DEFAULT 0, updated_at TEXT);
CREATE TABLE IF NOT EXISTS dispositions (id TEXT PRIMARY KEY, ts TEXT NOT NULL, actor TEXT,
    role TEXT, via TEXT, user_id INTEGER NOT NULL, tx_id TEXT, label TEXT NOT NULL,
    reason TEXT, model_version TEXT, audit_seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS dispositions_user ON dispositions (user_id);
CREATE INDEX IF NOT EXISTS dispositions_ts ON dispositions (ts);
CREATE TABLE IF NOT EXISTS decisions (tx_id TEXT PRIMARY KEY, user_id INTEGER NOT NULL,
    decided_at TEXT NOT NULL, decision TEXT NOT NULL, score REAL, model_version TEXT,
    fallback INTEGER NOT NULL, fallback_reason TEXT, actor TEXT, fingerprint TEXT NOT NULL,
    answer TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_user ON decisions (user_id, decided_at);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions (decided_at);
"""

AUDIT_COLUMNS = STORED_FIELDS


class SqliteStore(StateStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        if not self.path.exists():
            # Created readable by its owner only (tokens' hashes, sessions, the audit log);
            # SQLite gives the -wal and -shm files the same mode.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        # One connection per thread, kept (opening one and reading the schema on every call
        # cost more than the queries); writers of this process queue on a lock instead of
        # SQLite's sleeping busy handler (other processes still meet that, with `timeout`).
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        with self._read() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)
            self._migrate(con)

    @staticmethod
    def _migrate(con: sqlite3.Connection) -> None:
        """Columns added since the first schema (a store created by an older version)."""
        added = [
            ("idempotency", "lease_until", "REAL"),
            # audit entry format 2 (audit.py): format 1 rows keep v NULL
            ("audit", "v", "INTEGER"),
            ("audit", "commitments", "TEXT"),
            ("audit", "erased", "INTEGER NOT NULL DEFAULT 0"),
        ]
        for table, column, kind in added:
            names = {row["name"] for row in con.execute(f"PRAGMA table_info({table})")}
            if column not in names:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _connect(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            con.row_factory = sqlite3.Row
            self._local.con = con
            with self._connections_lock:
                self._connections.append(con)
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        with self._write_lock:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # Autocommit: every statement reads the newest committed state (WAL).
        yield self._connect()

    def close(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for con in connections:
            con.close()
        self._local = threading.local()

    # --- audit -------------------------------------------------------------------------
    @staticmethod
    def _key(con: sqlite3.Connection, subject_id: str, *, create: bool) -> bytes | None:
        """The customer's audit key; created (in the caller's transaction) when asked."""
        row = con.execute(
            "SELECT key FROM audit_keys WHERE subject_id = ?", (subject_id,)
        ).fetchone()
        if row is not None:
            return bytes(row["key"])
        if not create:
            return None
        key = new_key()
        con.execute(
            "INSERT INTO audit_keys (subject_id, key, created_at) VALUES (?, ?, ?)",
            (subject_id, key, now_iso()),
        )
        return key

    @staticmethod
    def _row(sealed: dict[str, Any]) -> list[Any]:
        values = dict(sealed)
        values["commitments"] = json.dumps(sealed.get("commitments") or {}, sort_keys=True)
        values["erased"] = int(bool(sealed.get("erased")))
        return [values.get(c) for c in AUDIT_COLUMNS]

    @staticmethod
    def _entry(row: sqlite3.Row) -> dict[str, Any]:
        entry = {c: row[c] for c in AUDIT_COLUMNS}
        entry["commitments"] = json.loads(entry["commitments"]) if entry["commitments"] else {}
        entry["erased"] = bool(entry["erased"])
        return entry

    def _append(self, con: sqlite3.Connection, entry: dict[str, Any]) -> dict[str, Any]:
        last = con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS_HASH)
        customer = customer_of(entry)
        key = self._key(con, customer, create=True) if customer is not None else None
        sealed = seal(entry, seq, prev, key)
        con.execute(
            f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in AUDIT_COLUMNS)})",
            self._row(sealed),
        )
        con.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            (seq, sealed["hash"]),
        )
        return sealed

    def append_audit(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._write() as con:
            return self._append(con, entry)

    def audit_entries(
        self,
        *,
        subject_kind: str | None = None,
        subject_id: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        where: list[str] = ["seq > ?"]
        args: list[object] = [after_seq]
        if subject_kind is not None:
            where.append("subject_kind = ?")
            args.append(subject_kind)
        if subject_id is not None:
            where.append("subject_id = ?")
            args.append(str(subject_id))
        sql = f"SELECT * FROM audit WHERE {' AND '.join(where)} ORDER BY seq"
        sql += " DESC" if newest_first else ""
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._read() as con:
            return [self._entry(row) for row in con.execute(sql, args)]

    def audit_head(self) -> tuple[int, str] | None:
        with self._read() as con:
            row = con.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
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
            key = self._key(con, uid, create=True)
            assert key is not None
            tag = commitment(key, "subject_id", uid)
            sealed = self._append(con, {**entry, "subject_kind": ERASURE_KIND, "subject_id": tag})
            kinds = ", ".join("?" for _ in CUSTOMER_KINDS)
            erased = con.execute(
                f"UPDATE audit SET {', '.join(f'{f} = ?' for f in PERSONAL_FIELDS)}, erased = 1 "
                f"WHERE subject_kind IN ({kinds}) AND subject_id = ? AND v IS NOT NULL "
                "AND erased = 0 AND json_extract(commitments, '$.subject_id') = ?",
                (*(ERASED for _ in PERSONAL_FIELDS), *CUSTOMER_KINDS, uid, tag),
            ).rowcount
            state = con.execute(
                "DELETE FROM state WHERE kind = 'account' AND subject_id = ?", (uid,)
            ).rowcount
            con.execute("DELETE FROM audit_keys WHERE subject_id = ?", (uid,))
        return {"entry": sealed, "entries": int(erased), "state": int(state)}

    def migrate_audit(self) -> dict[str, Any]:
        with self._write() as con:  # one transaction: no entry is appended meanwhile
            entries = [self._entry(r) for r in con.execute("SELECT * FROM audit ORDER BY seq")]
            format1 = sum(1 for e in entries if not e.get("v"))
            if not format1:
                return {"entry": None, "format1": 0, "entries": len(entries)}
            row = con.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            head = (int(row["seq"]), str(row["hash"])) if row else None
            keys = {
                r["subject_id"]: bytes(r["key"])
                for r in con.execute("SELECT subject_id, key FROM audit_keys")
            }
            check = verify_chain(entries, head, keys)
            if not check.ok:
                raise MigrationRefused(check.problem)
            chain = resealed(entries, lambda subject: self._key(con, subject, create=True) or b"")
            columns = [c for c in AUDIT_COLUMNS if c != "seq"]
            for entry in chain:
                values = dict(zip(AUDIT_COLUMNS, self._row(entry), strict=True))
                con.execute(
                    f"UPDATE audit SET {', '.join(f'{c} = ?' for c in columns)} WHERE seq = ?",
                    [*(values[c] for c in columns), entry["seq"]],
                )
            sealed = self._append(con, migration_entry(head, format1))
        return {"entry": sealed, "format1": format1, "entries": len(chain)}

    def count_audit(self, *, via_prefix: str, action: str, result: str, since: str) -> int:
        with self._read() as con:
            row = con.execute(
                "SELECT COUNT(*) FROM audit WHERE via LIKE ? AND action = ? AND result = ? "
                "AND ts >= ?",
                (via_prefix + "%", action, result, since),
            ).fetchone()
        return int(row[0])

    # --- interventions -----------------------------------------------------------------
    def apply_intervention(self, entry: dict[str, Any], subject_id: str) -> dict[str, Any]:
        kind, field, value = ACTION_EFFECTS[entry["action"]]
        with self._write() as con:
            row = con.execute(
                "SELECT value FROM state WHERE kind = ? AND subject_id = ? AND field = ?",
                (kind, str(subject_id), field),
            ).fetchone()
            current = bool(row["value"]) if row else False
            entry = {**entry, "subject_kind": kind, "subject_id": str(subject_id)}
            entry["result"] = "applied" if current != value else "no_change"
            sealed = self._append(con, entry)
            con.execute(
                "INSERT INTO state (kind, subject_id, field, value, seq) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (kind, subject_id, field) DO UPDATE SET value = excluded.value, "
                "seq = excluded.seq",
                (kind, str(subject_id), field, int(value), sealed["seq"]),
            )
            if kind == "account":
                self._ensure_profile(con, str(subject_id))
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
        with self._read() as con:
            row = con.execute(
                "SELECT token_id, token_hash, role, name, created_at FROM tokens "
                "WHERE token_hash = ? AND revoked = 0",
                (token_hash,),
            ).fetchone()
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

    # --- approvals ---------------------------------------------------------------------
    def enqueue_approval(self, item: dict[str, Any]) -> str:
        approval_id = uuid.uuid4().hex
        with self._write() as con:
            con.execute(
                "INSERT INTO approvals (id, created_at, status, item) VALUES (?, ?, 'pending', ?)",
                (approval_id, now_iso(), json.dumps(item)),
            )
        return approval_id

    @staticmethod
    def _approval(row: sqlite3.Row) -> dict[str, Any]:
        record = dict(row)
        record.update(json.loads(record.pop("item")))
        return record

    def list_approvals(self, status: str = "pending") -> list[dict[str, Any]]:
        with self._read() as con:
            rows = con.execute(
                "SELECT * FROM approvals WHERE status = ? ORDER BY created_at", (status,)
            ).fetchall()
        return [self._approval(row) for row in rows]

    def get_approval(self, approval_id: str) -> dict[str, Any] | None:
        with self._read() as con:
            row = con.execute("SELECT * FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        return self._approval(row) if row else None

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
        with self._read() as con:
            row = con.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return json.loads(row["value"]) if row else None

    def put_setting(self, name: str, value: Any) -> None:
        with self._write() as con:
            con.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, json.dumps(value)),
            )

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
        with self._read() as con:
            row = con.execute(
                "SELECT actor, role, csrf, expires_at, created_at FROM sessions "
                "WHERE session_hash = ?",
                (session_hash,),
            ).fetchone()
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

    # --- user profiles -----------------------------------------------------------------
    def _ensure_profile(self, con: sqlite3.Connection, user_id: str) -> None:
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

    def touch_profile(
        self, user_id: str, *, persona: str | None = None, last_seen: str | None = None
    ) -> dict[str, Any]:
        last_seen = utc_iso(last_seen)
        with self._write() as con:
            self._ensure_profile(con, str(user_id))
            con.execute(
                "UPDATE profiles SET persona = COALESCE(?, persona), "
                "last_seen = CASE WHEN last_seen IS NULL OR ? > last_seen THEN COALESCE(?, "
                "last_seen) ELSE last_seen END, updated_at = ? WHERE user_id = ?",
                (persona, last_seen, last_seen, now_iso(), str(user_id)),
            )
            row = con.execute(
                "SELECT * FROM profiles WHERE user_id = ?", (str(user_id),)
            ).fetchone()
        return self._profile(row)

    @staticmethod
    def _profile(row: sqlite3.Row) -> dict[str, Any]:
        record = dict(row)
        return {
            "user_id": record["user_id"],
            "persona": record["persona"],
            "last_seen": record["last_seen"],
            "state": {flag: bool(record[flag]) for flag in ACCOUNT_FLAGS},
            "updated_at": record["updated_at"],
        }

    def get_profile(self, user_id: str) -> dict[str, Any] | None:
        with self._read() as con:
            row = con.execute(
                "SELECT * FROM profiles WHERE user_id = ?", (str(user_id),)
            ).fetchone()
        return self._profile(row) if row else None

    # --- dispositions ------------------------------------------------------------------
    def record_disposition(
        self, entry: dict[str, Any], disposition: dict[str, Any]
    ) -> dict[str, Any]:
        with self._write() as con:
            sealed = self._append(con, entry)
            record = {key: disposition.get(key) for key in DISPOSITION_FIELDS}
            record["audit_seq"] = sealed["seq"]
            con.execute(
                f"INSERT INTO dispositions ({', '.join(DISPOSITION_FIELDS)}) "
                f"VALUES ({', '.join('?' for _ in DISPOSITION_FIELDS)})",
                [record[key] for key in DISPOSITION_FIELDS],
            )
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
        where: list[str] = ["TRUE"]
        args: list[object] = []
        for column, value in (
            ("user_id = ?", user_id),
            ("label = ?", label),
            ("ts >= ?", utc_iso(since, "microseconds")),
            ("ts <= ?", utc_iso(until, "microseconds")),
            ("model_version = ?", model_version),
        ):
            if value is not None:
                where.append(column)
                args.append(value)
        condition = " AND ".join(where)
        sql = (
            f"SELECT {', '.join(DISPOSITION_FIELDS)} FROM dispositions WHERE {condition} "
            "ORDER BY ts DESC, audit_seq DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        elif offset:
            sql += f" LIMIT -1 OFFSET {int(offset)}"
        with self._read() as con:
            rows = [dict(row) for row in con.execute(sql, args)]
            total = con.execute(
                f"SELECT COUNT(*) FROM dispositions WHERE {condition}", args
            ).fetchone()[0]
        return rows, int(total)

    def users_with_disposition(self) -> list[int]:
        with self._read() as con:
            rows = con.execute(
                "SELECT DISTINCT user_id FROM dispositions ORDER BY user_id"
            ).fetchall()
        return [int(row["user_id"]) for row in rows]

    # --- inline decisions --------------------------------------------------------------
    @staticmethod
    def _decision(row: sqlite3.Row) -> dict[str, Any]:
        record = dict(row)
        record["fallback"] = bool(record["fallback"])
        record["answer"] = json.loads(record["answer"])
        return record

    def record_decision(self, decision: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        record = {key: decision.get(key) for key in DECISION_FIELDS}
        record["tx_id"] = str(record["tx_id"])
        record["decided_at"] = utc_iso(record["decided_at"], "microseconds")
        values = {**record, "fallback": int(bool(record["fallback"]))}
        values["answer"] = json.dumps(record["answer"], sort_keys=True)
        with self._write() as con:
            inserted = con.execute(
                f"INSERT OR IGNORE INTO decisions ({', '.join(DECISION_FIELDS)}) "
                f"VALUES ({', '.join('?' for _ in DECISION_FIELDS)})",
                [values[key] for key in DECISION_FIELDS],
            ).rowcount
            row = con.execute(
                "SELECT * FROM decisions WHERE tx_id = ?", (record["tx_id"],)
            ).fetchone()
        return self._decision(row), inserted == 1

    def get_decision(self, tx_id: str) -> dict[str, Any] | None:
        with self._read() as con:
            row = con.execute("SELECT * FROM decisions WHERE tx_id = ?", (str(tx_id),)).fetchone()
        return self._decision(row) if row else None

    def decisions(
        self,
        *,
        user_id: int | None = None,
        since: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        where: list[str] = ["TRUE"]
        args: list[object] = []
        if user_id is not None:
            where.append("user_id = ?")
            args.append(int(user_id))
        if since is not None:
            where.append("decided_at >= ?")
            args.append(utc_iso(since, "microseconds"))
        condition = " AND ".join(where)
        sql = f"SELECT * FROM decisions WHERE {condition} ORDER BY decided_at DESC, tx_id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        elif offset:
            sql += f" LIMIT -1 OFFSET {int(offset)}"
        with self._read() as con:
            rows = [self._decision(row) for row in con.execute(sql, args)]
            total = con.execute(
                f"SELECT COUNT(*) FROM decisions WHERE {condition}", args
            ).fetchone()[0]
        return rows, int(total)

    def prune_decisions(self, before: str) -> int:
        with self._write() as con:
            deleted = con.execute(
                "DELETE FROM decisions WHERE decided_at < ?", (utc_iso(before, "microseconds"),)
            ).rowcount
        return int(deleted)
