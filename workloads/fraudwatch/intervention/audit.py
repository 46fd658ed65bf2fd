"""The tamper-evident audit log: each entry carries the hash of the one before it.

An entry's hash is SHA-256 over its canonical JSON (sorted keys, without the `hash` field),
which includes `prev_hash`. Editing an entry breaks its own hash; deleting one breaks the
sequence and the next entry's `prev_hash`; deleting the newest is caught by the stored chain
head. `fraudwatch audit verify` runs :func:`verify_chain` and prints the head hash, which an
operator can copy somewhere the database's owner cannot write (the strongest anchor).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

# The fields every entry has, in the order the docs list them.
ENTRY_FIELDS = (
    "seq",
    "ts",
    "actor",
    "role",
    "via",
    "action",
    "subject_kind",
    "subject_id",
    "reason",
    "alert_id",
    "result",
    "detail",
    "prev_hash",
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_entry(
    *,
    actor: str,
    role: str,
    via: str,
    action: str,
    subject_kind: str = "",
    subject_id: str = "",
    reason: str = "",
    alert_id: str | None = None,
    result: str,
    detail: str = "",
) -> dict[str, Any]:
    """An entry without `seq`, `prev_hash` and `hash`: the store fills those in on append.
    Text from outside (alert bodies) may hold lone surrogates, which no store can keep and
    no hash can encode: they are escaped (`\\ud800`)."""
    return {
        "ts": now_iso(),
        "actor": _escaped(actor),
        "role": _escaped(role),
        "via": _escaped(via),
        "action": _escaped(action),
        "subject_kind": _escaped(subject_kind),
        "subject_id": _escaped(str(subject_id)),
        "reason": _escaped(reason),
        "alert_id": None if alert_id is None else _escaped(alert_id),
        "result": _escaped(result),
        "detail": _escaped(detail),
    }


def _escaped(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def entry_hash(entry: dict[str, Any]) -> str:
    body = {key: entry.get(key) for key in ENTRY_FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: an entry written before escaping existed still hashes (never raises)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def seal(entry: dict[str, Any], seq: int, prev_hash: str) -> dict[str, Any]:
    """Return the entry with its place in the chain and its own hash."""
    sealed = {key: entry.get(key) for key in ENTRY_FIELDS if key not in ("seq", "prev_hash")}
    sealed["seq"] = seq
    sealed["prev_hash"] = prev_hash
    sealed["hash"] = entry_hash(sealed)
    return sealed


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    head_hash: str
    problem: str = ""


def verify_chain(
    entries: Iterable[dict[str, Any]], head: tuple[int, str] | None = None
) -> VerifyResult:
    """Walk the entries in `seq` order; report the first place the chain is broken."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    for entry in entries:
        seq = entry.get("seq")
        if seq != expected_seq:
            return VerifyResult(
                False,
                count,
                expected_prev,
                f"entry {expected_seq} is missing (next stored entry is {seq}): "
                "an entry was deleted",
            )
        if entry.get("prev_hash") != expected_prev:
            return VerifyResult(
                False,
                count,
                expected_prev,
                f"entry {seq} does not point at entry {seq - 1}'s hash: "
                "an earlier entry was replaced or deleted",
            )
        if entry_hash(entry) != entry.get("hash"):
            return VerifyResult(
                False,
                count,
                expected_prev,
                f"entry {seq} does not match its hash: it was edited after it was written",
            )
        expected_prev = str(entry["hash"])
        expected_seq += 1
        count += 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq > count:
            return VerifyResult(
                False,
                count,
                expected_prev,
                f"the chain head records {head_seq} entries but only {count} are stored: "
                "the newest entries were deleted",
            )
        if head_seq == count and count and head_hash != expected_prev:
            return VerifyResult(
                False,
                count,
                expected_prev,
                f"the chain head's hash does not match entry {count}: it was edited",
            )
    return VerifyResult(True, count, expected_prev)


def verify_state(
    entries: Iterable[dict[str, Any]], rows: Iterable[dict[str, Any]]
) -> VerifyResult | None:
    """Replay the log's interventions and compare with the stored state: a flag set or
    cleared by editing the state table directly (no audit entry) is reported. None when
    they agree."""
    from fraudwatch.intervention.stores.repository import ACTION_EFFECTS

    expected: dict[tuple[str, str, str], tuple[bool, int]] = {}
    for entry in entries:
        effect = ACTION_EFFECTS.get(str(entry.get("action")))
        if effect is None or entry.get("result") not in ("applied", "no_change"):
            continue
        kind, field, value = effect
        expected[(kind, str(entry.get("subject_id")), field)] = (value, int(entry["seq"]))
    stored = {(str(r["kind"]), str(r["subject_id"]), str(r["field"])): r for r in rows}
    for key in sorted(set(expected) | set(stored)):
        kind, subject, field = key
        value, seq = expected.get(key, (False, 0))
        row = stored.get(key)
        actual = bool(row["value"]) if row else False
        if actual != value or (row is not None and int(row.get("seq") or 0) != seq):
            source = f"entry {seq} set it to {value}" if seq else "no entry ever set it"
            return VerifyResult(
                False,
                0,
                "",
                f"state of {kind} {subject}: {field} is {actual} but the audit log says "
                f"{value} ({source}): the state table was edited outside the service",
            )
    return None


def verify_store(store: Any) -> VerifyResult:
    """The whole check `fraudwatch audit verify` runs: the hash chain, then the state
    against a replay of the chain."""
    entries = store.audit_entries()
    result = verify_chain(entries, store.audit_head())
    if not result.ok:
        return result
    state = verify_state(entries, store.state_rows())
    if state is not None:
        return VerifyResult(False, result.entries, result.head_hash, state.problem)
    return result
