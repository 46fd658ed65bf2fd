"""The records both state stores write and return, built once: the audit entry an
intervention appends, a disposition, an inline decision, a user profile; the record of an
erasure and the values it blanks; what is checked before the audit chain is re-sealed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fraudwatch.intervention.audit import (
    ERASED,
    ERASURE_KIND,
    PERSONAL_FIELDS,
    MigrationRefused,
    commitment,
    verify_chain,
)
from fraudwatch.intervention.stores.repository import (
    ACCOUNT_FLAGS,
    DECISION_FIELDS,
    DISPOSITION_FIELDS,
    utc_iso,
)


def intervention_entry(
    entry: dict[str, Any], kind: str, subject_id: str, current: bool, value: bool
) -> dict[str, Any]:
    """The audit entry of an intervention on one subject: `applied` when it changes the
    subject's flag, `no_change` when the flag already had the value."""
    entry = {**entry, "subject_kind": kind, "subject_id": str(subject_id)}
    entry["result"] = "applied" if current != value else "no_change"
    return entry


def disposition_record(disposition: dict[str, Any], audit_seq: int) -> dict[str, Any]:
    """The stored disposition (DISPOSITION_FIELDS) recorded by the audit entry `audit_seq`."""
    record = {key: disposition.get(key) for key in DISPOSITION_FIELDS}
    record["audit_seq"] = audit_seq
    return record


def decision_record(decision: dict[str, Any]) -> dict[str, Any]:
    """The stored decision (DECISION_FIELDS): `tx_id` as text, `decided_at` in UTC with
    microseconds, `fallback` a bool."""
    record = {key: decision.get(key) for key in DECISION_FIELDS}
    record["tx_id"] = str(record["tx_id"])
    record["decided_at"] = utc_iso(record["decided_at"], "microseconds")
    record["fallback"] = bool(record["fallback"])
    return record


def profile_view(
    user_id: str,
    persona: str | None,
    last_seen: str | None,
    flags: Mapping[str, Any],
    updated_at: str | None,
) -> dict[str, Any]:
    """A user profile as the stores return it; `flags` holds the account flags (missing ones
    are False)."""
    return {
        "user_id": user_id,
        "persona": persona,
        "last_seen": last_seen,
        "state": {flag: bool(flags.get(flag, False)) for flag in ACCOUNT_FLAGS},
        "updated_at": updated_at,
    }


def refuse_unverified_chain(
    entries: list[dict[str, Any]], head: tuple[int, str] | None, keys: dict[str, bytes]
) -> None:
    """Before re-sealing the chain (`migrate_audit`): MigrationRefused unless it verifies."""
    check = verify_chain(entries, head, keys)
    if not check.ok:
        raise MigrationRefused(check.problem)


#: What an erasure writes over the personal fields of a customer's format 2 entries.
BLANKED = dict.fromkeys(PERSONAL_FIELDS, ERASED)


def erasure_record(
    entry: dict[str, Any], key: bytes, subject_id: str
) -> tuple[str, dict[str, Any]]:
    """The customer's `subject_id` commitment under their key, and the erasure's own audit
    entry: `entry` about that commitment (never the id), of kind ERASURE_KIND."""
    tag = commitment(key, "subject_id", subject_id)
    return tag, {**entry, "subject_kind": ERASURE_KIND, "subject_id": tag}


def format1_count(entries: list[dict[str, Any]]) -> int:
    """How many entries are in format 1 (no `v`): what `migrate_audit` re-seals."""
    return sum(1 for e in entries if not e.get("v"))
