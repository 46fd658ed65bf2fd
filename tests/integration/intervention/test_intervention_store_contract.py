"""One contract for every state store: SQLite and MongoDB (a real FerretDB server)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fraudwatch.intervention.audit import new_entry, verify_chain
from fraudwatch.intervention.stores import StateStore


def entry(action: str = "lock", *, via: str = "api", result: str = "pending") -> dict:
    return new_entry(
        actor="token:test", role="analyst", via=via, action=action, reason="contract", result=result
    )


def test_audit_entries_form_a_verifiable_chain(store: StateStore) -> None:
    for i in range(5):
        store.append_audit({**entry("policy_change", result="applied"), "detail": str(i)})
    entries = store.audit_entries()
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert store.audit_head() == (5, entries[-1]["hash"])
    assert verify_chain(entries, store.audit_head()).ok
    newest = store.audit_entries(newest_first=True, limit=2)
    assert [e["seq"] for e in newest] == [5, 4]
    assert [e["seq"] for e in store.audit_entries(after_seq=3)] == [4, 5]


def test_intervention_sets_state_and_records_applied_or_no_change(store: StateStore) -> None:
    first = store.apply_intervention(entry("lock"), "42")
    second = store.apply_intervention(entry("lock"), "42")
    assert (first["result"], second["result"]) == ("applied", "no_change")
    assert store.get_state("account", "42") == {"locked": True}
    store.apply_intervention(entry("step_up"), "42")
    store.apply_intervention(entry("block"), "900")
    assert store.get_state("account", "42") == {"locked": True, "step_up": True}
    assert store.subjects_with("account", "locked") == ["42"]
    assert store.subjects_with("transaction", "blocked") == ["900"]
    store.apply_intervention(entry("unlock"), "42")
    assert store.subjects_with("account", "locked") == []
    history = store.audit_entries(subject_kind="account", subject_id="42")
    assert [e["action"] for e in history] == ["lock", "lock", "step_up", "unlock"]
    assert store.get_state("account", "nobody") == {}


def test_the_states_of_a_page_are_read_at_once(store: StateStore) -> None:
    store.apply_intervention(entry("lock"), "7")
    store.apply_intervention(entry("step_up"), "8")
    store.apply_intervention(entry("unlock"), "7")
    store.apply_intervention(entry("block"), "7")  # a transaction with the same id
    states = store.states_of("account", ["7", "8", "9"])
    assert states == {"7": {"locked": False}, "8": {"step_up": True}, "9": {}}
    assert store.states_of("transaction", ["7", "8"]) == {"7": {"blocked": True}, "8": {}}
    assert store.states_of("account", []) == {}
    many = [str(i) for i in range(1200)]  # more ids than one SQL statement may bind
    assert store.states_of("account", many)["8"] == {"step_up": True}
    assert len(store.states_of("account", many)) == 1200


def test_count_audit_counts_automated_locks_in_a_window(store: StateStore) -> None:
    store.apply_intervention(entry("lock", via="hook:grafana"), "1")
    store.apply_intervention(entry("lock", via="hook:watcher"), "2")
    store.apply_intervention(entry("lock", via="api"), "3")
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    assert store.count_audit(via_prefix="hook:", action="lock", result="applied", since=since) == 2
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert store.count_audit(via_prefix="hook:", action="lock", result="applied", since=future) == 0


def test_idempotency_keys_are_claimed_once(store: StateStore) -> None:
    assert store.claim_idempotency("alice", "k1", "fp") is None
    pending = store.claim_idempotency("alice", "k1", "fp")
    assert pending is not None and pending["status"] == "pending"
    store.complete_idempotency("alice", "k1", 200, {"result": "applied"})
    done = store.claim_idempotency("alice", "k1", "fp")
    assert done is not None
    assert (done["status"], done["status_code"], done["response"]) == (
        "done",
        200,
        {"result": "applied"},
    )
    assert store.claim_idempotency("bob", "k1", "fp") is None  # keys are per caller
    store.release_idempotency("bob", "k1")
    assert store.claim_idempotency("bob", "k1", "fp") is None


def test_tokens_are_found_by_hash_and_can_be_revoked(store: StateStore) -> None:
    store.put_token(
        {
            "token_id": "t1",
            "token_hash": "h1",
            "role": "viewer",
            "name": "ci",
            "created_at": "2026-01-01T00:00:00+00:00",
        }
    )
    assert store.get_token("h1")["role"] == "viewer"  # type: ignore[index]
    assert [t["token_id"] for t in store.list_tokens()] == ["t1"]
    assert "token_hash" not in store.list_tokens()[0]
    assert store.revoke_token("t1") is True
    assert store.revoke_token("t1") is False
    assert store.get_token("h1") is None


def test_approvals_resolve_exactly_once(store: StateStore) -> None:
    approval = store.enqueue_approval(
        {"action": "lock", "subject_kind": "account", "subject_id": "7", "reason": "breaker"}
    )
    assert [a["id"] for a in store.list_approvals()] == [approval]
    assert store.get_approval(approval)["subject_id"] == "7"  # type: ignore[index]
    assert store.resolve_approval(approval, "approved", "alice") is True
    assert store.resolve_approval(approval, "rejected", "bob") is False
    assert store.list_approvals() == []
    assert store.list_approvals("approved")[0]["resolved_by"] == "alice"


def test_settings_round_trip(store: StateStore) -> None:
    assert store.get_setting("policy") is None
    store.put_setting("policy", {"lock_at": 0.97})
    store.put_setting("policy", {"lock_at": 0.98, "dry_run": True})
    assert store.get_setting("policy") == {"lock_at": 0.98, "dry_run": True}


def test_concurrent_lock_and_unlock_from_two_clients_stay_consistent(
    store_factory: Callable[[], StateStore],
) -> None:
    clients = [store_factory(), store_factory()]
    rounds = 15
    errors: list[BaseException] = []

    def hammer(store: StateStore, action: str) -> None:
        try:
            for _ in range(rounds):
                store.apply_intervention(entry(action), "77")
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [
        threading.Thread(target=hammer, args=(clients[0], "lock")),
        threading.Thread(target=hammer, args=(clients[1], "unlock")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    trail = clients[0].audit_entries(subject_kind="account", subject_id="77")
    assert len(trail) == 2 * rounds
    # Replaying the audit trail in order must explain every result and the final state.
    locked = False
    for item in trail:
        wanted = item["action"] == "lock"
        assert item["result"] == ("applied" if locked != wanted else "no_change"), item
        locked = wanted
    assert clients[1].get_state("account", "77") == {"locked": locked}
    assert verify_chain(clients[0].audit_entries(), clients[0].audit_head()).ok


def test_a_lease_is_held_by_one_client_at_a_time(
    store_factory: Callable[[], StateStore],
) -> None:
    """Two clients (as two service processes would) take turns in a leased section: a
    check-then-act inside it (read a counter, write it + 1) never loses an update."""
    clients = [store_factory(), store_factory()]
    rounds = 10
    errors: list[BaseException] = []

    def count_up(store: StateStore) -> None:
        try:
            for _ in range(rounds):
                with store.lease("counter"):
                    seen = store.get_setting("counter") or 0
                    store.put_setting("counter", seen + 1)
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=count_up, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert clients[0].get_setting("counter") == 2 * rounds
    with clients[1].lease("counter"):  # released after each block: free again
        pass


def test_concurrent_appends_never_fork_the_chain(store_factory: Callable[[], StateStore]) -> None:
    clients = [store_factory() for _ in range(3)]

    def append(store: StateStore) -> None:
        for _ in range(10):
            store.append_audit(entry("policy_change", result="applied"))

    threads = [threading.Thread(target=append, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = verify_chain(clients[0].audit_entries(), clients[0].audit_head())
    assert result.ok and result.entries == 30, result


def test_an_edited_entry_is_detected(store: StateStore) -> None:
    for action in ("lock", "unlock", "lock"):
        store.apply_intervention(entry(action), "5")
    raw = getattr(store, "db", None)
    if raw is not None:  # MongoDB: edit the stored document directly
        raw.audit.update_one({"_id": 2}, {"$set": {"reason": "edited"}})
    else:
        import sqlite3

        with sqlite3.connect(store.path) as con:  # type: ignore[attr-defined]
            con.execute("UPDATE audit SET reason = 'edited' WHERE seq = 2")
    # the reason of an entry about an account is hashed as its commitment under the
    # customer's key: the keys find the edit (tests/.../test_audit_redaction_contract.py)
    result = verify_chain(store.audit_entries(), store.audit_head(), store.audit_keys())
    assert not result.ok and "entry 2" in result.problem


# --- admin page sessions ----------------------------------------------------------------
def session(actor: str = "token:abc", *, expires_in: float = 3600, now: float = 1e9) -> dict:
    return {
        "actor": actor,
        "role": "analyst",
        "csrf": "csrf-1",
        "expires_at": now + expires_in,
        "created_at": "2026-01-01T00:00:00+00:00",
    }


def test_a_session_is_found_until_it_expires(store: StateStore) -> None:
    store.create_session("h1", session(now=1e9, expires_in=100))
    found = store.get_session("h1", 1e9 + 99)
    assert found is not None
    assert (found["actor"], found["role"], found["csrf"]) == ("token:abc", "analyst", "csrf-1")
    assert found["expires_at"] == 1e9 + 100
    assert store.get_session("unknown", 1e9) is None


def test_an_expired_session_is_refused_and_removed(store: StateStore) -> None:
    store.create_session("h1", session(now=1e9, expires_in=100))
    assert store.get_session("h1", 1e9 + 100) is None  # expiry is exclusive
    assert store.get_session("h1", 1e9) is None  # and it is gone, not just hidden
    assert store.delete_session("h1") is False


def test_creating_a_session_purges_expired_ones(store: StateStore) -> None:
    import time

    store.create_session("old", session(now=time.time() - 7200, expires_in=3600))
    store.create_session("new", session(now=time.time(), expires_in=3600))
    assert store.delete_session("old") is False  # purged when "new" was created
    assert store.delete_session("new") is True


def test_a_session_survives_a_new_store_client(store_factory: Callable[[], StateStore]) -> None:
    first = store_factory()
    first.create_session("h1", session(now=1e9))
    first.close()  # the service stops
    second = store_factory()  # ... and starts again on the same database
    assert second.get_session("h1", 1e9 + 1)["csrf"] == "csrf-1"  # type: ignore[index]
    assert second.delete_session("h1") is True
    assert second.get_session("h1", 1e9 + 1) is None


def test_revoking_a_token_ends_its_sessions(store: StateStore) -> None:
    store.put_token(
        {
            "token_id": "t1",
            "token_hash": "h-t1",
            "role": "analyst",
            "name": "x",
            "created_at": "2026-01-01T00:00:00+00:00",
        }
    )
    store.create_session("s1", session("token:t1", now=1e9))
    store.create_session("s2", session("token:other", now=1e9))
    assert store.revoke_token("t1") is True
    assert store.get_session("s1", 1e9 + 1) is None
    assert store.get_session("s2", 1e9 + 1) is not None


# --- user profiles ----------------------------------------------------------------------
def test_a_profile_keeps_persona_last_seen_and_state(store: StateStore) -> None:
    assert store.get_profile("8") is None
    profile = store.touch_profile(
        "8", persona="loose-passive", last_seen="2026-01-02T10:00:00+00:00"
    )
    assert (profile["user_id"], profile["persona"]) == ("8", "loose-passive")
    assert profile["last_seen"] == "2026-01-02T10:00:00+00:00"
    assert profile["state"] == {"locked": False, "step_up": False}
    # last seen only moves forward; times in other notations are stored in UTC
    store.touch_profile("8", last_seen="2026-01-01T00:00:00+00:00")
    assert store.get_profile("8")["last_seen"] == "2026-01-02T10:00:00+00:00"  # type: ignore[index]
    store.touch_profile("8", last_seen="2026-01-02T12:30:00+02:00")
    later = store.get_profile("8")
    assert later is not None and later["last_seen"] == "2026-01-02T10:30:00+00:00"
    assert later["persona"] == "loose-passive"  # not cleared by a touch without persona
    store.apply_intervention(entry("lock"), "8")
    store.apply_intervention(entry("step_up"), "8")
    store.apply_intervention(entry("unlock"), "8")
    assert store.get_profile("8")["state"] == {"locked": False, "step_up": True}  # type: ignore[index]


def test_an_intervention_creates_the_profile_and_touch_keeps_its_state(
    store: StateStore,
) -> None:
    store.apply_intervention(entry("lock"), "9")
    profile = store.get_profile("9")
    assert profile is not None and profile["state"] == {"locked": True, "step_up": False}
    assert profile["persona"] is None and profile["last_seen"] is None
    store.touch_profile("9", persona="tight-aggressive")
    assert store.get_profile("9")["state"] == {"locked": True, "step_up": False}  # type: ignore[index]
    store.apply_intervention(entry("block"), "9")  # a transaction id: no profile change
    assert store.get_profile("9")["state"] == {"locked": True, "step_up": False}  # type: ignore[index]


def test_touching_a_profile_keeps_the_state_interventions_set(store: StateStore) -> None:
    store.apply_intervention(entry("step_up"), "10")
    store.touch_profile("11")
    assert store.get_profile("11")["state"] == {"locked": False, "step_up": False}  # type: ignore[index]
    assert store.touch_profile("10")["state"] == {"locked": False, "step_up": True}


def test_keys_are_remembered_once_until_they_expire(store_factory) -> None:
    first, second = store_factory(), store_factory()  # two clients of one database
    assert first.remember_once("nonce:a", expires_at=1000.0, now=500.0) is True
    assert second.remember_once("nonce:a", expires_at=1000.0, now=600.0) is False
    assert second.remember_once("nonce:b", expires_at=1000.0, now=600.0) is True
    # expired: purged on the way, so the key can be recorded again
    assert first.remember_once("nonce:a", expires_at=2000.0, now=1500.0) is True
    first.forget("nonce:a")
    assert second.remember_once("nonce:a", expires_at=2000.0, now=1500.0) is True


def test_a_pending_idempotency_claim_is_a_lease(store_factory) -> None:
    from fraudwatch.intervention.stores.repository import IDEMPOTENCY_LEASE_SECONDS as LEASE

    first, second = store_factory(), store_factory()
    assert first.claim_idempotency("alice", "k", "fp", now=1000.0) is None
    held = second.claim_idempotency("alice", "k", "fp", now=1000.0 + LEASE - 1)
    assert held is not None and held["status"] == "pending"
    other = second.claim_idempotency("alice", "k", "other", now=1000.0 + LEASE + 1)
    assert other is not None and other["fingerprint"] == "fp"  # another body never takes it
    assert second.claim_idempotency("alice", "k", "fp", now=1000.0 + LEASE + 1) is None
    again = first.claim_idempotency("alice", "k", "fp", now=1000.0 + LEASE + 2)
    assert again is not None and again["status"] == "pending"  # the new holder's lease
    second.complete_idempotency("alice", "k", 200, {"result": "applied"})
    done = first.claim_idempotency("alice", "k", "fp", now=1000.0 + 10 * LEASE)
    assert done is not None and done["status"] == "done" and done["response"]["result"] == "applied"


def test_state_rows_name_the_entry_that_set_them(store: StateStore) -> None:
    from fraudwatch.intervention.audit import verify_store

    locked = store.apply_intervention(entry("lock"), "5")
    blocked = store.apply_intervention(entry("block"), "77")
    rows = sorted(store.state_rows(), key=lambda r: r["kind"])
    assert rows == [
        {
            "kind": "account",
            "subject_id": "5",
            "field": "locked",
            "value": True,
            "seq": locked["seq"],
        },
        {
            "kind": "transaction",
            "subject_id": "77",
            "field": "blocked",
            "value": True,
            "seq": blocked["seq"],
        },
    ]
    assert verify_store(store).ok


# --- dispositions (issue 16, item 1) ----------------------------------------------------
def disposition(
    n: int, user_id: int, label: str, *, model_version: str | None = "v1", tx_id: str | None = None
) -> tuple[dict, dict]:
    """An audit entry and its disposition, `n` seconds into a fixed day (so times order)."""
    record = new_entry(
        actor="token:analyst",
        role="analyst",
        via="api",
        action="disposition",
        subject_kind="account",
        subject_id=str(user_id),
        reason=f"verdict {n}",
        result="recorded",
        detail=f"label {label}",
    )
    record["ts"] = (datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=n)).isoformat(
        timespec="microseconds"
    )
    return record, {
        "id": f"d{n}",
        "ts": record["ts"],
        "actor": record["actor"],
        "role": record["role"],
        "via": "api",
        "user_id": user_id,
        "tx_id": tx_id,
        "label": label,
        "reason": f"verdict {n}",
        "model_version": model_version,
    }


def test_a_disposition_is_stored_with_its_audit_entry(store: StateStore) -> None:
    store.append_audit(entry("policy_change", result="applied"))
    stored = store.record_disposition(*disposition(1, 7, "fraud", tx_id="701"))
    assert stored["audit_seq"] == 2
    items, total = store.dispositions()
    assert total == 1 and items == [stored]
    assert items[0] == {
        "id": "d1",
        "ts": "2026-03-01T00:00:01.000000+00:00",
        "actor": "token:analyst",
        "role": "analyst",
        "via": "api",
        "user_id": 7,
        "tx_id": "701",
        "label": "fraud",
        "reason": "verdict 1",
        "model_version": "v1",
        "audit_seq": 2,
    }
    audit = store.audit_entries()
    assert [(e["seq"], e["action"], e["result"]) for e in audit][-1] == (
        2,
        "disposition",
        "recorded",
    )
    assert audit[-1]["subject_id"] == "7" and audit[-1]["ts"] == items[0]["ts"]
    assert verify_chain(audit, store.audit_head()).ok


def test_dispositions_filter_and_page_newest_first(store: StateStore) -> None:
    labels = ["fraud", "legitimate", "unsure", "fraud", "fraud"]
    for n, label in enumerate(labels, start=1):
        store.record_disposition(
            *disposition(n * 60, 10 + n % 2, label, model_version="v2" if n > 3 else None)
        )
    items, total = store.dispositions()
    assert total == 5 and [d["id"] for d in items] == ["d300", "d240", "d180", "d120", "d60"]
    assert [d["id"] for d in store.dispositions(user_id=11)[0]] == ["d300", "d180", "d60"]
    assert store.dispositions(label="fraud")[1] == 3
    assert [d["id"] for d in store.dispositions(model_version="v2")[0]] == ["d300", "d240"]
    # since/until are inclusive; a time without a zone is UTC, another zone is converted
    window = store.dispositions(since="2026-03-01T00:02:00", until="2026-03-01T01:04:00+01:00")
    assert [d["id"] for d in window[0]] == ["d240", "d180", "d120"]
    assert store.dispositions(since="2026-03-02T00:00:00+00:00") == ([], 0)
    page, total = store.dispositions(offset=1, limit=2)
    assert total == 5 and [d["id"] for d in page] == ["d240", "d180"]
    page, total = store.dispositions(label="fraud", offset=2, limit=2)
    assert total == 3 and [d["id"] for d in page] == ["d60"]
    assert store.dispositions(user_id=99) == ([], 0)


def test_users_with_disposition_are_listed_once(store: StateStore) -> None:
    assert store.users_with_disposition() == []
    for n, user in enumerate([30, 4, 30, 12]):
        store.record_disposition(*disposition(n, user, "unsure"))
    assert store.users_with_disposition() == [4, 12, 30]


def test_concurrent_dispositions_keep_the_chain_whole(
    store_factory: Callable[[], StateStore],
) -> None:
    clients = [store_factory() for _ in range(4)]

    def work(i: int, client: StateStore) -> None:
        for j in range(5):
            client.record_disposition(*disposition(i * 100 + j, i, "fraud"))

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = clients[0]
    items, total = store.dispositions()
    assert total == 20
    assert sorted(d["audit_seq"] for d in items) == list(range(1, 21))
    assert verify_chain(store.audit_entries(), store.audit_head()).ok


# --- inline decisions (issue 19) ----------------------------------------------------------
def decision(n: int, tx_id: int, user_id: int, verdict: str = "allow", **extra: object) -> dict:
    """A decision made `n` seconds into a fixed day (so times order)."""
    decided_at = (datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=n)).isoformat(
        timespec="microseconds"
    )
    answer = {"tx_id": tx_id, "user_id": user_id, "decision": verdict, "score": 0.5}
    return {
        "tx_id": str(tx_id),
        "user_id": user_id,
        "decided_at": decided_at,
        "decision": verdict,
        "score": 0.5,
        "model_version": "v1",
        "fallback": False,
        "fallback_reason": None,
        "actor": "token:decider",
        "fingerprint": f"f{tx_id}",
        "answer": answer,
        **extra,
    }


def test_a_decision_is_stored_once_per_transaction(store: StateStore) -> None:
    first = decision(1, 501, 7, "block")
    stored, created = store.record_decision(first)
    assert created and stored == first
    assert store.get_decision("501") == first
    # The same tx_id again, even with another answer: the first one stays and comes back.
    again, created = store.record_decision(decision(2, 501, 7, "allow", fingerprint="other"))
    assert not created and again == first
    assert store.get_decision("502") is None
    fallback = decision(3, 502, 8, "step_up", score=None, fallback=True, fallback_reason="x")
    assert store.record_decision(fallback) == (fallback, True)
    assert store.get_decision("502")["fallback"] is True  # type: ignore[index]


def test_decisions_list_newest_first_and_prune_by_age(store: StateStore) -> None:
    for n in range(1, 6):
        store.record_decision(decision(n * 60, 600 + n, 10 + n % 2))
    items, total = store.decisions()
    assert total == 5 and [d["tx_id"] for d in items] == ["605", "604", "603", "602", "601"]
    assert [d["tx_id"] for d in store.decisions(user_id=11)[0]] == ["605", "603", "601"]
    assert [d["tx_id"] for d in store.decisions(since="2026-03-01T00:04:00")[0]] == ["605", "604"]
    page, total = store.decisions(offset=1, limit=2)
    assert total == 5 and [d["tx_id"] for d in page] == ["604", "603"]
    # Retention: everything decided before the cut goes, the rest stays.
    assert store.prune_decisions("2026-03-01T00:03:00+00:00") == 2
    assert [d["tx_id"] for d in store.decisions()[0]] == ["605", "604", "603"]
    assert store.get_decision("601") is None
    assert store.prune_decisions("2026-03-01T00:00:00+00:00") == 0


def test_racing_writers_of_one_decision_store_it_once(
    store_factory: Callable[[], StateStore],
) -> None:
    clients = [store_factory() for _ in range(4)]
    created: list[bool] = []

    def work(i: int, client: StateStore) -> None:
        for j in range(5):
            _, stored = client.record_decision(decision(i, 700 + j, 1, fingerprint=f"c{i}"))
            created.append(stored)

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert created.count(True) == 5
    items, total = clients[0].decisions()
    assert total == 5 and len({d["tx_id"] for d in items}) == 5
