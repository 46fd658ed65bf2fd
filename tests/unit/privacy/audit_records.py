"""A customer's trail in the audit log, written the way the service writes it (an analyst's
lock and unlock, a hook's step-up and a duplicate alert, views of the customer's details, a
disposition), an old chain in entry format 1, and the checks of an erasure: no stored entry
names the customer, every remaining entry is still tamper-evident. For SQLite and MongoDB."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any

from fraudwatch.intervention.audit import (
    ENTRY_FIELDS,
    GENESIS_HASH,
    entry_hash,
    new_entry,
    verify_store,
)
from fraudwatch.intervention.auth import Principal
from fraudwatch.intervention.interventions import intervene, record_refusal
from fraudwatch.intervention.masking import record_view
from fraudwatch.intervention.stores import StateStore

#: Ids no timestamp, hash or count of the tests holds by chance.
CUSTOMER = 90417
OTHER = 90418

ANALYST = Principal("token:analyst", "analyst")
HOOK = Principal("token:grafana", "automation")


def reason_of(user: int) -> str:
    """Free text an analyst wrote about the customer (it must go with them)."""
    return f"customer {user} phoned: card stolen in Lisbon"


def trail(store: StateStore, user: int) -> None:
    """Interventions, hook alerts and views about one customer; the account ends with no
    open case (unlocked, step-up cleared), so erasure needs no override."""
    uid = str(user)
    alert = f"fraudwatch-high-risk:{user}"
    intervene(store, ANALYST, "lock", uid, reason_of(user))
    intervene(store, HOOK, "step_up", uid, f"user {user} scored 0.99", alert, via="hook:grafana")
    record_refusal(
        store,
        HOOK,
        "none",
        "account",
        uid,
        f"duplicate: alert {alert} was already handled",
        reason=f"user {user} scored 0.99",
        alert_id=alert,
        via="hook:grafana",
        result="no_change",
    )
    record_view(store, ANALYST, user, f"GET /v1/users/{user}")
    record_view(store, ANALYST, user, f"transaction 55{user} of user {user}", via="admin")
    intervene(store, ANALYST, "unlock", uid, reason_of(user))
    intervene(store, ANALYST, "clear_step_up", uid, "verified by phone")
    store.append_audit(
        new_entry(
            actor=ANALYST.actor,
            role=ANALYST.role,
            via="api",
            action="disposition",
            subject_kind="account",
            subject_id=uid,
            reason=reason_of(user),
            result="recorded",
            detail="label fraud",
        )
    )


def about(store: StateStore, user: int) -> list[dict[str, Any]]:
    """The entries a query by subject finds about the customer (interventions and views)."""
    return sorted(
        (
            e
            for kind in ("account", "account_view")
            for e in store.audit_entries(subject_kind=kind, subject_id=str(user))
        ),
        key=lambda e: e["seq"],
    )


# --- the store as stored ----------------------------------------------------------------------
def _sqlite_path(store: StateStore) -> Any:
    return getattr(store, "path", None)


def stored_entries(store: StateStore) -> list[dict[str, Any]]:
    """Every audit entry exactly as the database holds it (every column or field)."""
    db = getattr(store, "db", None)
    if db is not None:
        return [dict(doc) for doc in db.audit.find({}).sort("_id", 1)]
    with sqlite3.connect(_sqlite_path(store)) as con:
        con.row_factory = sqlite3.Row
        return [dict(row) for row in con.execute("SELECT * FROM audit ORDER BY seq")]


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
    elif value is not None:
        yield str(value)


def naming(store: StateStore, user: int) -> list[tuple[int, str]]:
    """(seq, text) of every stored field of every entry that names the customer: their id as
    a number of its own, or the reason text written about them."""
    pattern = re.compile(rf"(?<![0-9A-Za-z]){user}(?![0-9A-Za-z])")
    found = []
    for entry in stored_entries(store):
        for text in _texts(entry):
            if pattern.search(text) or reason_of(user) in text:
                found.append((int(entry.get("seq") or entry.get("_id")), text))
    return found


def edit(store: StateStore, seq: int, field: str, value: Any) -> None:
    """Change one field of one stored entry behind the service's back."""
    db = getattr(store, "db", None)
    if db is not None:
        db.audit.update_one({"_id": seq}, {"$set": {field: value}})
        return
    with sqlite3.connect(_sqlite_path(store)) as con:
        con.execute(f"UPDATE audit SET {field} = ? WHERE seq = ?", (value, seq))


def every_edit_is_detected(store: StateStore) -> int:
    """Edit each field of each entry in turn (and put it back): verify names that entry every
    time. Returns how many edits were tried."""
    assert verify_store(store).ok
    tried = 0
    for entry in stored_entries(store):
        seq = int(entry.get("seq") or entry["_id"])
        for field in ("actor", "action", "ts", *("subject_id", "reason", "detail", "alert_id")):
            original = entry.get(field)
            edit(store, seq, field, f"{original}-edited")
            result = verify_store(store)
            edit(store, seq, field, original)
            assert not result.ok and f"entry {seq}" in result.problem, (seq, field, result)
            tried += 1
    assert verify_store(store).ok
    return tried


# --- an old chain: entry format 1, written before commitments existed ------------------------
def format1_chain(store: StateStore, users: tuple[int, ...]) -> tuple[int, str]:
    """Entries about each user as the format 1 code sealed them (hash over every field's text,
    no `v`), with the state row the lock/unlock left; returns the chain head."""
    prev, seq = GENESIS_HASH, 0
    rows = []
    state = []
    for user in users:
        for action, result in (("lock", "applied"), ("view", "shown"), ("unlock", "applied")):
            seq += 1
            entry = new_entry(
                actor=ANALYST.actor,
                role=ANALYST.role,
                via="api",
                action=action,
                subject_kind="account_view" if action == "view" else "account",
                subject_id=str(user),
                reason=reason_of(user) if action != "view" else "",
                result=result,
                detail=f"GET /v1/users/{user}" if action == "view" else "",
            )
            body = {key: entry.get(key) for key in ENTRY_FIELDS}
            body["seq"], body["prev_hash"] = seq, prev
            body["hash"] = prev = entry_hash(body)
            rows.append(body)
        state.append(("account", str(user), "locked", False, seq))
    db = getattr(store, "db", None)
    if db is not None:
        db.audit.insert_many([{"_id": r["seq"], **r} for r in rows])
        db.meta.insert_one({"_id": "audit_head", "seq": seq, "hash": prev})
        for kind, subject, field, value, at in state:
            db.state.insert_one(
                {
                    "_id": f"{kind}:{subject}:{field}",
                    "kind": kind,
                    "subject_id": subject,
                    "field": field,
                    "value": value,
                    "seq": at,
                }
            )
        return seq, prev
    columns = [*ENTRY_FIELDS, "hash"]
    with sqlite3.connect(_sqlite_path(store)) as con:
        con.executemany(
            f"INSERT INTO audit ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            [[r[c] for c in columns] for r in rows],
        )
        con.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)", (seq, prev))
        con.executemany("INSERT INTO state VALUES (?, ?, ?, ?, ?)", state)
    return seq, prev
