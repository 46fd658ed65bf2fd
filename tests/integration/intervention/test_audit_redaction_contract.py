"""The redactable audit chain (entry format 2), one contract for both state stores: SQLite and
MongoDB (a real FerretDB server). Entries about a customer are hashed over keyed commitments of
their personal fields; erasing the customer blanks those fields and deletes the key, and the
chain still verifies and still detects every edit; a format 1 chain is re-sealed once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fraudwatch.intervention.audit import (
    ERASED,
    ERASURE_KIND,
    PERSONAL_FIELDS,
    MigrationRefused,
    commitment,
    new_entry,
    verify_chain,
    verify_store,
)
from fraudwatch.intervention.stores import StateStore

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "privacy"))
from audit_records import (
    CUSTOMER,
    OTHER,
    about,
    edit,
    every_edit_is_detected,
    format1_chain,
    naming,
    reason_of,
    trail,
)


def erasure() -> dict:
    return new_entry(
        actor="cli",
        role="admin",
        via="cli",
        action="privacy_erase",
        reason="data-subject request",
        result="applied",
        detail="counts only",
    )


def test_entries_about_a_customer_are_committed_under_the_customers_key(
    store: StateStore,
) -> None:
    trail(store, CUSTOMER)
    store.append_audit(
        new_entry(actor="cli", role="admin", via="cli", action="policy_change", result="applied")
    )
    keys = store.audit_keys()
    assert list(keys) == [str(CUSTOMER)] and len(keys[str(CUSTOMER)]) == 32
    *theirs, policy = store.audit_entries()
    assert all(e["v"] == 2 for e in store.audit_entries())
    for entry in theirs:
        # the text stays beside its commitments: queries by subject work as before
        assert entry["subject_id"] == str(CUSTOMER) and not entry["erased"]
        assert entry["commitments"] == {
            f: commitment(keys[str(CUSTOMER)], f, entry[f]) for f in PERSONAL_FIELDS
        }
    assert policy["commitments"] == {}
    assert verify_chain(store.audit_entries(), store.audit_head(), keys).ok
    assert verify_store(store).ok


def test_erasure_blanks_the_customers_entries_and_the_chain_still_verifies(
    store: StateStore,
) -> None:
    trail(store, CUSTOMER)
    trail(store, OTHER)
    theirs, others = about(store, CUSTOMER), about(store, OTHER)
    done = store.erase_audit_subject(str(CUSTOMER), erasure())
    assert (done["entries"], done["state"]) == (len(theirs), 2)  # locked, step_up rows
    assert done["entry"]["subject_kind"] == ERASURE_KIND
    assert done["entry"]["subject_id"] == theirs[0]["commitments"]["subject_id"]
    assert naming(store, CUSTOMER) == []
    assert about(store, CUSTOMER) == [] and about(store, OTHER) == others
    assert str(CUSTOMER) not in store.audit_keys()
    assert store.get_state("account", str(CUSTOMER)) == {}
    assert verify_store(store).ok
    erased = [e for e in store.audit_entries() if e["erased"]]
    assert [e["seq"] for e in erased] == [e["seq"] for e in theirs]
    assert all(e[f] == ERASED for e in erased for f in PERSONAL_FIELDS)
    every_edit_is_detected(store)


def test_a_customer_seen_again_after_erasure_gets_a_new_key(store: StateStore) -> None:
    trail(store, CUSTOMER)
    old = about(store, CUSTOMER)[0]["commitments"]["subject_id"]
    store.erase_audit_subject(str(CUSTOMER), erasure())
    trail(store, CUSTOMER)
    new = about(store, CUSTOMER)
    assert len(new) == 8 and new[0]["commitments"]["subject_id"] != old  # not linkable
    assert verify_store(store).ok
    again = store.erase_audit_subject(str(CUSTOMER), erasure())
    assert again["entries"] == 8 and naming(store, CUSTOMER) == []
    assert verify_store(store).ok


def test_an_edited_plaintext_is_caught_by_its_commitment(store: StateStore) -> None:
    trail(store, OTHER)
    entry = about(store, OTHER)[0]
    edit(store, entry["seq"], "reason", "nothing to see")
    result = verify_store(store)
    assert not result.ok and f"entry {entry['seq']}'s reason" in result.problem
    assert "edited" in result.problem


def test_a_format_1_chain_verifies_and_is_migrated_once(store: StateStore) -> None:
    format1_chain(store, (CUSTOMER, OTHER))
    assert verify_store(store).ok
    trail(store, OTHER)  # format 2 entries after the old ones
    head = store.audit_head()  # what an operator copied
    assert head is not None and head[0] == 14
    done = store.migrate_audit()
    assert (done["format1"], done["entries"]) == (6, 14)
    assert f"the head before: seq {head[0]}, hash {head[1]}" in done["entry"]["detail"]
    assert verify_store(store).ok
    entries = store.audit_entries()
    assert [e["seq"] for e in entries] == list(range(1, 16))
    assert all(e["v"] == 2 for e in entries)
    assert about(store, CUSTOMER)[0]["reason"] == reason_of(CUSTOMER)
    assert store.migrate_audit()["entry"] is None  # once
    store.erase_audit_subject(str(CUSTOMER), erasure())
    assert naming(store, CUSTOMER) == [] and verify_store(store).ok


def test_a_tampered_format_1_chain_is_not_migrated(store: StateStore) -> None:
    format1_chain(store, (CUSTOMER,))
    edit(store, 2, "detail", "edited")
    before = store.audit_entries()
    with pytest.raises(MigrationRefused, match="entry 2"):
        store.migrate_audit()
    assert store.audit_entries() == before
