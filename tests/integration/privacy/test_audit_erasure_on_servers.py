"""`fraudwatch privacy erase` and the audit log on a MongoDB state store (a real FerretDB): no
stored audit entry names the customer afterwards (id or reason text, in any field),
`fraudwatch audit verify` passes, an edit of any remaining entry is still detected, and the other
customers' entries are untouched and found by subject; a format 1 chain is migrated first."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
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
from fraudwatch.intervention.audit import ERASURE_KIND
from fraudwatch.intervention.stores.mongodb import MongoStore
from subject_records import fraudwatch


@pytest.fixture
def state(mongo_url: str, tmp_path: Path) -> Iterator[dict]:
    database = f"audit_erasure_{uuid.uuid4().hex[:10]}"
    url = f"{mongo_url.rstrip('/')}/{database}"
    store = MongoStore(url)
    scored = tmp_path / "scored"
    scored.mkdir()
    try:
        yield {"store": store, "url": url, "scored": str(scored)}
    finally:
        store.client.drop_database(database)
        store.close()


def _cli(state: dict, *args: str):
    return fraudwatch(*args, env={**os.environ, "FRAUDWATCH_STATE_URL": state["url"]})


def _erase(state: dict):
    return _cli(state, "privacy", "erase", "--user-id", str(CUSTOMER), "--scored", state["scored"])


def test_erase_on_ferretdb_leaves_no_audit_entry_naming_the_customer(state: dict) -> None:
    store = state["store"]
    trail(store, CUSTOMER)
    trail(store, OTHER)
    theirs, others = about(store, CUSTOMER), about(store, OTHER)
    assert naming(store, CUSTOMER)

    result = _erase(state)
    assert result.returncode == 0, result.stdout + result.stderr

    assert naming(store, CUSTOMER) == []  # every field of every stored document
    assert about(store, CUSTOMER) == []
    verify = _cli(state, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    record = store.audit_entries()[-1]
    assert (record["action"], record["subject_kind"]) == ("privacy_erase", ERASURE_KIND)
    assert record["subject_id"] == theirs[0]["commitments"]["subject_id"]
    assert str(CUSTOMER) not in store.audit_keys()
    assert about(store, OTHER) == others
    assert store.audit_entries(subject_kind="account_view", subject_id=str(OTHER))
    every_edit_is_detected(store)


def test_a_format_1_chain_on_ferretdb_is_migrated_then_erased(state: dict) -> None:
    store = state["store"]
    format1_chain(store, (CUSTOMER, OTHER))
    refused = _erase(state)
    assert refused.returncode != 0
    assert "fraudwatch audit migrate" in " ".join((refused.stdout + refused.stderr).split())
    head = store.audit_head()  # what an operator copied
    assert head is not None
    migrated = _cli(state, "audit", "migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert f"seq {head[0]}, hash {head[1]}" in migrated.stdout
    result = _erase(state)
    assert result.returncode == 0, result.stdout + result.stderr
    assert naming(store, CUSTOMER) == []
    assert _cli(state, "audit", "verify").returncode == 0
    assert [e["reason"] for e in about(store, OTHER) if e["action"] == "lock"] == [reason_of(OTHER)]
    every_edit_is_detected(store)
