"""`fraudwatch privacy export` and `erase` on local folders and a SQLite state store: the export
holds the customer's rows from every store and nobody else's; erasure leaves nothing of them
and everything of everyone else, rewrites partitions whole, is refused under a legal hold
(naming why) unless an admin overrides it, and keeps `fraudwatch audit verify` passing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.stores.sqlite import SqliteStore
from subject_records import (
    CUSTOMER,
    OTHER,
    RAW_TABLES,
    count_rows,
    fraudwatch,
    generate_raw,
    held,
    lock,
    pending_approval,
    populate,
    rows_of,
    write_scored,
)


@pytest.fixture
def customer(tmp_path: Path) -> dict:
    raw, scored = tmp_path / "raw", tmp_path / "scored"
    generate_raw(raw)
    write_scored(raw, scored)
    db = tmp_path / "state.sqlite3"
    store = SqliteStore(db)
    populate(store, CUSTOMER)
    populate(store, OTHER)
    return {"raw": raw, "scored": scored, "store": store, "url": f"sqlite:///{db}"}


def _folders(c: dict) -> list[str]:
    return ["--raw", str(c["raw"]), "--scored", str(c["scored"]), "--state-url", c["url"]]


def _export(c: dict, out: Path, user: int = CUSTOMER) -> dict:
    result = fraudwatch(
        "privacy", "export", "--user-id", str(user), *_folders(c), "--out", str(out)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text())


def test_export_holds_the_customers_rows_from_every_store_and_nobody_elses(
    customer: dict, tmp_path: Path
) -> None:
    document = _export(customer, tmp_path / "user.json")
    raw = document["stores"]["raw"][str(customer["raw"])]
    for table in RAW_TABLES:
        rows = [r for f, rs in raw.items() if f.startswith(f"{table}/") for r in rs]
        expected = ds.dataset(str(customer["raw"] / table), format="parquet").to_table()
        assert len(rows) == sum(1 for u in expected.column("user_id").to_pylist() if u == CUSTOMER)
        assert rows and {r["user_id"] for r in rows} == {CUSTOMER}, table
    scored = document["stores"]["scored"][str(customer["scored"])]
    assert [r["user_id"] for r in scored["users.parquet"]] == [CUSTOMER]
    assert len(scored["transactions/part-0.parquet"]) == rows_of(
        customer["scored"] / "transactions", CUSTOMER
    )
    state = document["stores"]["state_store"]
    assert state["profile"]["user_id"] == str(CUSTOMER)
    assert [d["id"] for d in state["dispositions"]] == [f"d-{CUSTOMER}"]
    assert [d["tx_id"] for d in state["decisions"]] == [f"tx-{CUSTOMER}"]
    assert [a["status"] for a in state["approvals"]] == ["rejected"]
    assert {e["subject_id"] for e in state["audit"]} == {str(CUSTOMER)}
    # the export is recorded: who asked about whom
    exports = customer["store"].audit_entries(subject_kind="account", subject_id=str(CUSTOMER))
    assert exports[-1]["action"] == "privacy_export"


def test_erase_leaves_nothing_of_the_customer_and_everything_of_the_others(
    customer: dict, tmp_path: Path
) -> None:
    before_raw, before_scored = count_rows(customer["raw"]), count_rows(customer["scored"])
    theirs = rows_of(customer["raw"], CUSTOMER) + rows_of(customer["scored"], CUSTOMER)
    others = rows_of(customer["raw"], OTHER) + rows_of(customer["scored"], OTHER)
    assert theirs and others
    result = fraudwatch("privacy", "erase", "--user-id", str(CUSTOMER), *_folders(customer))
    assert result.returncode == 0, result.stdout + result.stderr
    assert rows_of(customer["raw"], CUSTOMER) == rows_of(customer["scored"], CUSTOMER) == 0
    assert rows_of(customer["raw"], OTHER) + rows_of(customer["scored"], OTHER) == others
    assert count_rows(customer["raw"]) + count_rows(customer["scored"]) == (
        before_raw + before_scored - theirs
    )
    # nothing half-written is left beside the partitions
    leftovers = [p for p in tmp_path.rglob("*") if "partial" in p.name or ".old-" in p.name]
    assert leftovers == []
    store = customer["store"]
    assert held(store, CUSTOMER) == {
        "profile": False,
        "dispositions": 0,
        "decisions": 0,
        "approvals": 0,
    }
    assert held(store, OTHER)["dispositions"] == 1 and held(store, OTHER)["profile"]
    # the request is recorded, naming the id's commitment, not the id; the entries about the
    # customer are erased with them (tests/unit/privacy/test_audit_erasure.py)
    assert store.audit_entries(subject_id=str(CUSTOMER)) == []
    record = store.audit_entries()[-1]
    assert (record["action"], record["result"], record["subject_kind"]) == (
        "privacy_erase",
        "applied",
        "erased_account",
    )
    again = _export(customer, tmp_path / "after.json")["stores"]
    assert all(files == {} for files in again["raw"].values())
    assert all(files == {} for files in again["scored"].values())
    verify = fraudwatch("audit", "verify", env=_env(customer["url"]))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit chain intact" in verify.stdout


def _env(url: str) -> dict:
    import os

    return {**os.environ, "FRAUDWATCH_STATE_URL": url}


@pytest.mark.parametrize(
    ("open_case", "named"),
    [(lock, "the account is locked"), (pending_approval, "is pending")],
)
def test_a_customer_under_an_open_case_is_not_erased_and_the_refusal_says_why(
    customer: dict, open_case, named: str
) -> None:
    store = customer["store"]
    open_case(store, CUSTOMER)
    before = rows_of(customer["raw"], CUSTOMER)
    result = fraudwatch("privacy", "erase", "--user-id", str(CUSTOMER), *_folders(customer))
    assert result.returncode != 0
    message = " ".join((result.stdout + result.stderr).split())
    assert "legal hold" in message and named in message and "--override-hold" in message
    assert rows_of(customer["raw"], CUSTOMER) == before
    assert held(store, CUSTOMER)["profile"]
    refused = store.audit_entries(subject_id=str(CUSTOMER))[-1]
    assert (refused["action"], refused["result"]) == ("privacy_erase", "refused")
    # an analyst's token does not override; an admin's does
    analyst, _ = create_token(store, "analyst")
    result = fraudwatch(
        "privacy", "erase", "--user-id", str(CUSTOMER), *_folders(customer),
        "--override-hold", "--admin-token", analyst,
    )  # fmt: skip
    assert result.returncode != 0 and "needs an admin" in " ".join(result.stderr.split())
    admin, record = create_token(store, "admin")
    result = fraudwatch(
        "privacy", "erase", "--user-id", str(CUSTOMER), *_folders(customer),
        "--override-hold", "--admin-token", admin,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert rows_of(customer["raw"], CUSTOMER) == 0
    done = store.audit_entries()[-1]
    assert (done["action"], done["result"]) == ("privacy_erase", "applied")
    assert done["actor"] == f"token:{record['token_id']}"
    assert "legal hold" in done["detail"]
    verify = fraudwatch("audit", "verify", env=_env(customer["url"]))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_bad_requests_name_what_to_fix(customer: dict, tmp_path: Path) -> None:
    cases = [
        (["export", "--user-id", "abc", "--raw", str(customer["raw"]), "--out", "x.json"],
         "--user-id 'abc' is not a customer id"),
        (["export", "--user-id", "7", "--out", str(tmp_path / "x.json")],
         "give at least one --raw or --scored"),
        (["export", "--user-id", "7", "--raw", str(customer["raw"]),
          "--out", str(tmp_path / "x.csv")], "should name a .json file"),
        (["erase", "--user-id", "7", "--raw", str(tmp_path / "missing")],
         "is not a folder"),
    ]  # fmt: skip
    for args, expected in cases:
        result = fraudwatch("privacy", *args, "--state-url", customer["url"])
        assert result.returncode != 0
        assert expected in " ".join((result.stdout + result.stderr).split()), args
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "x.csv").exists()
