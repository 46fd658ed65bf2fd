"""Verdicts in SQLite: analysts' dispositions on accounts (each in one transaction with its
audit entry) and the inline decisions on transactions (`POST /v1/decisions`)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from fraudwatch.intervention.stores.records import decision_record, disposition_record
from fraudwatch.intervention.stores.repository import (
    DECISION_FIELDS,
    DISPOSITION_FIELDS,
    DecisionFilter,
    DispositionFilter,
    utc_iso,
)
from fraudwatch.intervention.stores.sqlite.audit_chain import append_entry
from fraudwatch.intervention.stores.sqlite.connections import SqliteDatabase, where_clause


def _decision(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    record["fallback"] = bool(record["fallback"])
    record["answer"] = json.loads(record["answer"])
    return record


class SqliteVerdicts(SqliteDatabase):
    # --- dispositions ------------------------------------------------------------------
    def record_disposition(
        self, entry: dict[str, Any], disposition: dict[str, Any]
    ) -> dict[str, Any]:
        with self._write() as con:
            sealed = append_entry(con, entry)
            record = disposition_record(disposition, sealed["seq"])
            con.execute(
                f"INSERT INTO dispositions ({', '.join(DISPOSITION_FIELDS)}) "
                f"VALUES ({', '.join('?' for _ in DISPOSITION_FIELDS)})",
                [record[key] for key in DISPOSITION_FIELDS],
            )
        return record

    def _disposition_page(
        self, matching: DispositionFilter, offset: int, limit: int | None
    ) -> tuple[list[dict[str, Any]], int]:
        condition, args = where_clause(
            (
                ("user_id = ?", matching.user_id),
                ("label = ?", matching.label),
                ("ts >= ?", matching.since),
                ("ts <= ?", matching.until),
                ("model_version = ?", matching.model_version),
            )
        )
        columns, order = ", ".join(DISPOSITION_FIELDS), "ts DESC, audit_seq DESC"
        rows, total = self._read_page(
            "dispositions", columns, condition, args, order, offset, limit
        )
        return [dict(row) for row in rows], total

    def users_with_disposition(self) -> list[int]:
        with self._read() as con:
            rows = con.execute(
                "SELECT DISTINCT user_id FROM dispositions ORDER BY user_id"
            ).fetchall()
        return [int(row["user_id"]) for row in rows]

    # --- inline decisions --------------------------------------------------------------
    def record_decision(self, decision: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        record = decision_record(decision)
        values = {**record, "fallback": int(record["fallback"])}
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
        return _decision(row), inserted == 1

    def get_decision(self, tx_id: str) -> dict[str, Any] | None:
        row = self._read_one("SELECT * FROM decisions WHERE tx_id = ?", (str(tx_id),))
        return _decision(row) if row else None

    def _decision_page(
        self, matching: DecisionFilter, offset: int, limit: int | None
    ) -> tuple[list[dict[str, Any]], int]:
        condition, args = where_clause(
            (("user_id = ?", matching.user_id), ("decided_at >= ?", matching.since))
        )
        order = "decided_at DESC, tx_id DESC"
        rows, total = self._read_page("decisions", "*", condition, args, order, offset, limit)
        return [_decision(row) for row in rows], total

    def prune_decisions(self, before: str) -> int:
        with self._write() as con:
            deleted = con.execute(
                "DELETE FROM decisions WHERE decided_at < ?", (utc_iso(before, "microseconds"),)
            ).rowcount
        return int(deleted)
