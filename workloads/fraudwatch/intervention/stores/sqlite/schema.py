"""The SQLite state store's tables and the columns added to them since the first schema."""

from __future__ import annotations

import sqlite3

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

#: Columns added since the first schema: (table, column, declaration). A store created by an
#: older version gains them when it is opened.
ADDED_COLUMNS = (
    ("idempotency", "lease_until", "REAL"),
    # audit entry format 2 (audit.py): format 1 rows keep v NULL
    ("audit", "v", "INTEGER"),
    ("audit", "commitments", "TEXT"),
    ("audit", "erased", "INTEGER NOT NULL DEFAULT 0"),
)


def create_schema(con: sqlite3.Connection) -> None:
    """Create what is missing: tables and indexes, then the columns added since."""
    con.executescript(SCHEMA)
    for table, column, kind in ADDED_COLUMNS:
        names = {row["name"] for row in con.execute(f"PRAGMA table_info({table})")}
        if column not in names:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
