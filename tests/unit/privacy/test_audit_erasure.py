"""`fraudwatch privacy erase` and the audit log (SQLite): afterwards no stored audit entry names
the customer (id or reason text, in any field), `fraudwatch audit verify` passes, an edit of any
remaining entry is still detected, and the other customers' entries are untouched and still
found by subject. A chain written in entry format 1 is migrated first (`fraudwatch audit
migrate`): erasure refuses until then, naming the command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from audit_records import (
    CUSTOMER,
    OTHER,
    about,
    every_edit_is_detected,
    format1_chain,
    naming,
    reason_of,
    trail,
)
from fraudwatch.intervention.audit import ERASED, ERASURE_KIND, verify_store
from fraudwatch.intervention.stores.sqlite import SqliteStore
from subject_records import fraudwatch


@pytest.fixture
def state(tmp_path: Path) -> dict:
    db = tmp_path / "state.sqlite3"
    scored = tmp_path / "scored"
    scored.mkdir()  # no rows: the audit log is what this file is about
    return {"store": SqliteStore(db), "url": f"sqlite:///{db}", "scored": str(scored)}


def _erase(state: dict, user: int = CUSTOMER):
    return fraudwatch(
        "privacy", "erase", "--user-id", str(user), "--scored", state["scored"],
        "--state-url", state["url"],
    )  # fmt: skip


def _verify(state: dict):
    return fraudwatch("audit", "verify", env={**os.environ, "FRAUDWATCH_STATE_URL": state["url"]})


def test_erase_leaves_no_audit_entry_naming_the_customer_and_the_chain_verifies(
    state: dict,
) -> None:
    store = state["store"]
    trail(store, CUSTOMER)
    trail(store, OTHER)
    theirs, others = about(store, CUSTOMER), about(store, OTHER)
    assert len(theirs) == 8 and naming(store, CUSTOMER)  # the log names them before
    key = store.audit_keys()[str(CUSTOMER)]

    result = _erase(state)
    assert result.returncode == 0, result.stdout + result.stderr

    assert naming(store, CUSTOMER) == []  # every field of every stored entry
    assert about(store, CUSTOMER) == []
    verify = _verify(state)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit chain intact" in verify.stdout
    # the entries kept their place in the chain, without the customer
    entries = {e["seq"]: e for e in store.audit_entries()}
    for before in theirs:
        after = entries[before["seq"]]
        assert after["erased"] and after["hash"] == before["hash"]
        assert (after["action"], after["actor"], after["ts"]) == (
            before["action"],
            before["actor"],
            before["ts"],
        )
        assert {after[f] for f in ("subject_id", "reason", "detail", "alert_id")} == {ERASED}
    # the erasure is recorded, naming the id's commitment, not the id
    record = store.audit_entries()[-1]
    assert (record["action"], record["result"], record["subject_kind"]) == (
        "privacy_erase",
        "applied",
        ERASURE_KIND,
    )
    assert record["subject_id"] == theirs[0]["commitments"]["subject_id"]
    assert "8 audit entries" in record["detail"]
    # the key and the account flags went; the other customer kept everything
    assert str(CUSTOMER) not in store.audit_keys() and str(OTHER) in store.audit_keys()
    assert all(r["subject_id"] != str(CUSTOMER) for r in store.state_rows())
    assert about(store, OTHER) == others
    assert any(reason_of(OTHER) == e["reason"] for e in about(store, OTHER))
    assert store.audit_entries(subject_kind="account_view", subject_id=str(OTHER))
    # nor can the key or the reason be read back from the database files' free pages
    files = b"".join(p.read_bytes() for p in store.path.parent.glob(f"{store.path.name}*"))
    assert key not in files and reason_of(CUSTOMER).encode() not in files
    assert reason_of(OTHER).encode() in files
    # and every remaining entry, erased or not, is still tamper-evident
    assert every_edit_is_detected(store) == 7 * len(entries)


def test_blanking_an_entry_outside_an_erasure_is_detected(state: dict) -> None:
    import sqlite3

    store = state["store"]
    trail(store, OTHER)
    seq = about(store, OTHER)[0]["seq"]
    with sqlite3.connect(store.path) as con:
        con.execute(
            "UPDATE audit SET subject_id = ?, reason = ?, detail = ?, alert_id = ?, erased = 1 "
            "WHERE seq = ?",
            (ERASED, ERASED, ERASED, ERASED, seq),
        )
    result = verify_store(store)
    assert not result.ok and f"entry {seq} was erased but no later privacy_erase" in (
        result.problem
    )


def test_deleting_a_customers_key_outside_an_erasure_is_detected(state: dict) -> None:
    import sqlite3

    store = state["store"]
    trail(store, OTHER)
    with sqlite3.connect(store.path) as con:
        con.execute("DELETE FROM audit_keys")
    result = verify_store(store)
    assert not result.ok and "audit key is missing" in result.problem


def test_a_format_1_chain_verifies_is_migrated_once_and_then_erased(state: dict) -> None:
    store = state["store"]
    format1_chain(store, (CUSTOMER, OTHER))
    assert _verify(state).returncode == 0  # old chains keep verifying as they are

    refused = _erase(state)
    assert refused.returncode != 0
    message = " ".join((refused.stdout + refused.stderr).split())
    assert "format 1" in message and "fraudwatch audit migrate" in message
    assert about(store, CUSTOMER)[0]["reason"] == reason_of(CUSTOMER)  # nothing changed

    env = {**os.environ, "FRAUDWATCH_STATE_URL": state["url"]}
    head = store.audit_head()  # what an operator copied (the refusal is entry 7)
    assert head is not None and head[0] == 7
    migrated = fraudwatch("audit", "migrate", env=env)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    # an operator's copy of the old head is checked against the migration record
    assert f"seq {head[0]}, hash {head[1]}" in migrated.stdout
    record = [e for e in store.audit_entries() if e["action"] == "audit_migrate"]
    assert len(record) == 1 and f"hash {head[1]}" in record[0]["detail"]
    assert all(e["v"] == 2 for e in store.audit_entries())
    again = fraudwatch("audit", "migrate", env=env)
    assert again.returncode == 0 and "nothing to migrate" in again.stdout

    result = _erase(state)
    assert result.returncode == 0, result.stdout + result.stderr
    assert naming(store, CUSTOMER) == []
    assert _verify(state).returncode == 0
    assert [e["reason"] for e in about(store, OTHER) if e["action"] == "lock"] == [reason_of(OTHER)]
    every_edit_is_detected(store)
