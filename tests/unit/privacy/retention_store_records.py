"""Records of every kind the retention job ages out, written through the state store's own
interface (SQLite or MongoDB), some older than the policy and some not."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from fraudwatch.intervention.audit import new_entry
from fraudwatch.intervention.stores import StateStore
from fraudwatch.intervention.stores.mongodb import MongoStore
from fraudwatch.intervention.stores.sqlite import SqliteStore

OLD = "2025-06-01T10:00:00.000000+00:00"  # before the cut-off of every test
NEW = "2026-03-20T10:00:00.000000+00:00"  # after it


def account_entry(action: str, user: int | str, result: str = "applied") -> dict[str, Any]:
    """An analyst's audit entry about an account."""
    return new_entry(
        actor="token:analyst",
        role="analyst",
        via="api",
        action=action,
        subject_kind="account",
        subject_id=str(user),
        reason="test",
        result=result,
    )


def record_disposition(store: StateStore, disposition_id: str, user: int, ts: str) -> None:
    """An analyst's "fraud" verdict on the user, recorded at `ts`."""
    entry = account_entry("disposition", user)
    entry["ts"] = ts
    store.record_disposition(
        entry,
        {
            "id": disposition_id,
            "ts": ts,
            "actor": "token:analyst",
            "role": "analyst",
            "via": "api",
            "user_id": user,
            "tx_id": None,
            "label": "fraud",
            "reason": "test",
            "model_version": "v1",
        },
    )


def record_decision(store: StateStore, tx_id: str, user: int, decided_at: str) -> None:
    """An inline "allow" decision on one of the user's transactions."""
    store.record_decision(
        {
            "tx_id": tx_id,
            "user_id": user,
            "decided_at": decided_at,
            "decision": "allow",
            "score": 0.5,
            "model_version": "v1",
            "fallback": False,
            "fallback_reason": None,
            "actor": "token:decider",
            "fingerprint": f"f{tx_id}",
            "answer": {"tx_id": tx_id, "decision": "allow"},
        }
    )


def populate(store: StateStore) -> None:
    """Old and recent dispositions, decisions and profiles; a locked account unseen for long;
    an expired and a live session."""
    record_disposition(store, "d1", 101, OLD)
    record_disposition(store, "d2", 102, NEW)
    record_decision(store, "9001", 7, OLD)
    record_decision(store, "9002", 7, NEW)
    store.touch_profile("201", persona="loose-passive", last_seen=OLD)  # unseen for long
    store.touch_profile("202", persona="loose-passive", last_seen=NEW)
    store.apply_intervention(account_entry("lock", "203"), "203")  # an open case
    store.touch_profile("203", persona="tight-passive", last_seen=OLD)
    pending = store.enqueue_approval({"action": "lock", "subject_id": "204"})
    resolved = store.enqueue_approval({"action": "lock", "subject_id": "205"})
    store.resolve_approval(resolved, "rejected", "token:admin")
    assert pending != resolved
    now = time.time()
    # The live one first: creating a session purges the expired ones.
    for name, expires in (("live", now + 3600), ("expired", now - 3600)):
        store.create_session(
            name, {"actor": "token:a", "role": "analyst", "csrf": "c", "expires_at": expires}
        )


def backdate_approvals(store: StateStore) -> None:
    """Approvals get the time of their creation from the store; the test moves it back."""
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as con:
            con.execute("UPDATE approvals SET created_at = ?", (OLD,))
    else:
        assert isinstance(store, MongoStore)
        store.db.approvals.update_many({}, {"$set": {"created_at": OLD}})


def survivors(store: StateStore) -> dict[str, Any]:
    """What a user of the service still finds."""
    dispositions, _ = store.dispositions()
    decisions, _ = store.decisions()
    now = time.time()
    return {
        "dispositions": sorted(d["id"] for d in dispositions),
        "decisions": sorted(d["tx_id"] for d in decisions),
        "profiles": sorted(u for u in ("201", "202", "203") if store.get_profile(u)),
        "approvals": sorted(
            a["subject_id"]
            for status in ("pending", "rejected")
            for a in store.list_approvals(status)
        ),
        "sessions": sorted(s for s in ("expired", "live") if store.get_session(s, now - 7200)),
    }
