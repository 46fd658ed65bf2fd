"""The tamper-evident audit log: each entry carries the hash of the one before it.

An entry's hash is SHA-256 over its canonical JSON (sorted keys, without the `hash` field),
which includes `prev_hash`. Editing an entry breaks its own hash; deleting one breaks the
sequence and the next entry's `prev_hash`; deleting the newest is caught by the stored chain
head. `fraudwatch audit verify` runs :func:`verify_store` and prints the head hash, which an
operator can copy somewhere the database's owner cannot write (the strongest anchor).

Format 2 (`v: 2`, every entry written since) makes the chain redactable. An entry about a
customer (`subject_kind` account or account_view) is hashed over *commitments* of the fields
that name or describe the customer (PERSONAL_FIELDS: `subject_id`, `reason`, `detail`,
`alert_id`) instead of their text: HMAC-SHA256 under that customer's own random key (kept in
the store's `audit_keys`, created with the customer's first entry) of the field's name and
value. The text stays in the entry (every query by subject works as before) beside its
commitments; verify checks the chain over the commitments and each text against its
commitment under the key. Erasure (`StateStore.erase_audit_subject`, run by `fraudwatch privacy
erase`) replaces the texts by ERASED and deletes the key: the entries still verify, name no one, and without the key
a commitment cannot be tested against candidate ids. Format 1 entries (no `v`) are hashed over
their text, as they always were, and keep verifying; `fraudwatch audit migrate` re-seals them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
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

#: The entry format written now: hashed over commitments of the personal fields.
FORMAT = 2
#: What a format 2 entry stores besides ENTRY_FIELDS and `hash`: its format, the commitments
#: of its personal fields ({} for an entry about no customer) and whether it was erased.
FORMAT_FIELDS = ("v", "commitments", "erased")
#: Every field a stored entry has, in the order the stores keep them.
STORED_FIELDS = (*ENTRY_FIELDS, *FORMAT_FIELDS, "hash")
#: Subject kinds whose subject is a customer (an account, a view of one).
CUSTOMER_KINDS = ("account", "account_view")
#: The fields of an entry about a customer that name or describe them: committed (format 2),
#: replaced by ERASED on erasure. `actor`, `role`, `via`, `action`, `result`, `ts` describe the
#: staff member or the service, not the customer, and stay.
PERSONAL_FIELDS = ("subject_id", "reason", "detail", "alert_id")
#: What an erased entry holds instead of each personal field.
ERASED = "[erased]"
#: The subject kind of the entry that records an erasure: its `subject_id` is the erased
#: customer's `subject_id` commitment, which names no one once the key is gone.
ERASURE_KIND = "erased_account"
ERASURE_ACTION = "privacy_erase"


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


def new_key() -> bytes:
    """A customer's audit key: 32 random bytes."""
    return secrets.token_bytes(32)


def customer_of(entry: dict[str, Any]) -> str | None:
    """The customer an entry is about (whose key commits its personal fields), or None."""
    if entry.get("subject_kind") in CUSTOMER_KINDS and entry.get("subject_id"):
        return str(entry["subject_id"])
    return None


def commitment(key: bytes, field: str, value: Any) -> str:
    """HMAC-SHA256 under the customer's key of the field's name and its value (JSON)."""
    message = field + "\x00" + json.dumps(value, ensure_ascii=False)
    return hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def commitments_of(entry: dict[str, Any]) -> dict[str, str]:
    """The stored commitments of an entry ({} when none; SQLite keeps them as JSON text)."""
    found = entry.get("commitments")
    if isinstance(found, str):
        found = json.loads(found) if found else {}
    return dict(found or {})


def _canonical_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: an entry written before escaping existed still hashes (never raises)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def entry_hash(entry: dict[str, Any]) -> str:
    """Format 1 (no `v`): over every entry field's text. Format 2: over the format, the
    commitments, and the text of every field that is not committed."""
    version = entry.get("v")
    if not version:
        return _canonical_hash({key: entry.get(key) for key in ENTRY_FIELDS})
    committed = commitments_of(entry)
    body = {key: entry.get(key) for key in ENTRY_FIELDS if key not in committed}
    body["v"] = int(version)
    body["commitments"] = committed
    return _canonical_hash(body)


def seal(
    entry: dict[str, Any], seq: int, prev_hash: str, customer_key: bytes | None = None
) -> dict[str, Any]:
    """Return the entry in format 2 with its place in the chain and its own hash.
    `customer_key` is the key of the customer the entry is about (customer_of), None for any
    other entry."""
    sealed = {key: entry.get(key) for key in ENTRY_FIELDS if key not in ("seq", "prev_hash")}
    sealed["seq"] = seq
    sealed["prev_hash"] = prev_hash
    sealed["v"] = FORMAT
    sealed["commitments"] = (
        {f: commitment(customer_key, f, sealed.get(f)) for f in PERSONAL_FIELDS}
        if customer_key is not None and customer_of(sealed) is not None
        else {}
    )
    sealed["erased"] = False
    sealed["hash"] = entry_hash(sealed)
    return sealed


MIGRATE_ACTION = "audit_migrate"


class MigrationRefused(ValueError):
    """The chain does not verify as it is: re-sealing it would hide the damage."""


def resealed(
    entries: Iterable[dict[str, Any]], key_for: Callable[[str], bytes]
) -> list[dict[str, Any]]:
    """The chain re-sealed in format 2 (`fraudwatch audit migrate`): every entry keeps its
    `seq` and fields; a format 1 entry about a customer gets the commitments of its personal
    fields under the customer's key (`key_for(subject_id)`, created when missing); every
    `prev_hash` and `hash` is recomputed from the first entry on. An erased entry keeps its
    commitments (its key is gone) and is only re-linked."""
    prev = GENESIS_HASH
    chain = []
    for entry in entries:
        if entry.get("erased"):
            again = {**entry, "prev_hash": prev}
            again["hash"] = entry_hash(again)
        else:
            customer = customer_of(entry)
            again = seal(entry, int(entry["seq"]), prev, key_for(customer) if customer else None)
        chain.append(again)
        prev = again["hash"]
    return chain


def migration_entry(old_head: tuple[int, str] | None, format1: int) -> dict[str, Any]:
    """The record `fraudwatch audit migrate` appends: the head the chain had before (what an
    operator's copy of the head hash is checked against) and how many entries changed."""
    seq, head = old_head or (0, GENESIS_HASH)
    return new_entry(
        actor="cli",
        role="admin",
        via="cli",
        action=MIGRATE_ACTION,
        subject_kind="audit",
        result="applied",
        detail=f"re-sealed entries 1-{seq} in format {FORMAT} ({format1} were in format 1); "
        f"the head before: seq {seq}, hash {head}",
    )


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    head_hash: str
    problem: str = ""


def _erasures(entries: list[dict[str, Any]]) -> dict[str, int]:
    """The customers' `subject_id` commitments erasure entries record → the last such seq."""
    found: dict[str, int] = {}
    for entry in entries:
        if (
            entry.get("action") == ERASURE_ACTION
            and entry.get("subject_kind") == ERASURE_KIND
            and entry.get("result") == "applied"
        ):
            found[str(entry.get("subject_id"))] = int(entry.get("seq") or 0)
    return found


def _unrecorded_erasure(entries: list[dict[str, Any]]) -> str:
    """The first erased entry no later erasure entry records, or "" (checked once the chain
    is whole: an edited erasure entry is reported as edited, not as missing)."""
    erasures = _erasures(entries)
    for entry in entries:
        if entry.get("erased") and entry.get("v"):
            tag = commitments_of(entry).get("subject_id", "")
            if erasures.get(tag, 0) <= int(entry.get("seq") or 0):
                return (
                    f"entry {entry.get('seq')} was erased but no later {ERASURE_ACTION} entry "
                    "records its customer: it was blanked outside `fraudwatch privacy erase`"
                )
    return ""


def _personal_problem(entry: dict[str, Any], keys: Mapping[str, bytes] | None) -> str:
    """What is wrong with an entry's personal fields against their commitments, or ""."""
    seq = entry.get("seq")
    if not entry.get("v"):
        if entry.get("erased"):
            return f"entry {seq} is in format 1 but marked erased: it was edited"
        return ""
    subject = customer_of(entry)
    committed = commitments_of(entry)
    if subject is None:
        if committed or entry.get("erased"):
            return f"entry {seq} is about no customer but carries commitments: it was edited"
        return ""
    if set(committed) != set(PERSONAL_FIELDS):
        return f"entry {seq} is about a customer but its personal fields are not committed"
    if entry.get("erased"):
        kept = [f for f in PERSONAL_FIELDS if entry.get(f) != ERASED]
        if kept:
            return (
                f"entry {seq} is marked erased but its {kept[0]} is not: it was edited after "
                "the erasure"
            )
        return ""
    if keys is None:
        return ""  # the hashes only: verify_store passes the keys
    key = keys.get(subject)
    if key is None:
        return (
            f"entry {seq} is about {entry.get('subject_kind')} {subject} but that customer's "
            "audit key is missing: it was deleted outside `fraudwatch privacy erase`"
        )
    for field in PERSONAL_FIELDS:
        if not hmac.compare_digest(commitment(key, field, entry.get(field)), committed[field]):
            return (
                f"entry {seq}'s {field} does not match its commitment: it was edited after "
                "it was written"
            )
    return ""


def verify_chain(
    entries: Iterable[dict[str, Any]],
    head: tuple[int, str] | None = None,
    keys: Mapping[str, bytes] | None = None,
) -> VerifyResult:
    """Walk the entries in `seq` order; report the first place the chain is broken. With the
    customers' keys (`store.audit_keys()`), each format 2 entry's personal fields are also
    checked against their commitments; an erased entry must be recorded by a later erasure
    entry whatever the keys."""
    entries = list(entries)
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
        problem = _personal_problem(entry, keys)
        if problem:
            return VerifyResult(False, count, expected_prev, problem)
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
    unrecorded = _unrecorded_erasure(entries)
    if unrecorded:
        return VerifyResult(False, count, expected_prev, unrecorded)
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
        if entry.get("erased"):
            continue  # an erased customer's flags went with the entries
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
    result = verify_chain(entries, store.audit_head(), store.audit_keys())
    if not result.ok:
        return result
    state = verify_state(entries, store.state_rows())
    if state is not None:
        return VerifyResult(False, result.entries, result.head_hash, state.problem)
    return result
