"""A customer held in every store, for the data-subject request tests: a generated raw folder,
a scored folder made from it (the `score` command's layout: users.parquet,
transactions/part-0.parquet, models/), and the customer's records in the state store written
through the store's own interface."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fraudwatch.generator.population import GeneratorConfig
from fraudwatch.generator.writer import generate
from fraudwatch.intervention.stores import StateStore
from retention_store_records import account_entry, record_decision, record_disposition

#: The customer every test asks about, and one who must be left alone.
CUSTOMER = 7
OTHER = 8
RAW_TABLES = ("users", "transactions", "logins", "api_calls")


def generate_raw(out: str | Path) -> None:
    generate(
        GeneratorConfig(users=60, transactions=1_200, seed=3, start=date(2026, 3, 1), days=4),
        out,
        workers=1,
        chunk_users=60,
    )


def write_scored(raw: Path, scored: Path) -> None:
    """users.parquet and transactions/part-0.parquet as `score` writes them (the columns
    the service reads), plus a model folder with no customer rows."""
    tx = ds.dataset(str(raw / "transactions"), format="parquet").to_table()
    users = ds.dataset(str(raw / "users"), format="parquet").to_table()
    (scored / "transactions").mkdir(parents=True)
    (scored / "models" / "v1").mkdir(parents=True)
    (scored / "models" / "v1" / "manifest.json").write_text("{}")
    n_tx, n_users = tx.num_rows, users.num_rows
    pq.write_table(
        tx.select(["tx_id", "user_id", "ts", "amount", "ip", "device_id"]).append_column(
            "ensemble_score", pa.array([i / n_tx for i in range(n_tx)])
        ),
        scored / "transactions" / "part-0.parquet",
    )
    pq.write_table(
        users.select(["user_id", "persona"])
        .append_column("rank", pa.array(range(1, n_users + 1)))
        .append_column("ensemble_score", pa.array([1 - i / n_users for i in range(n_users)])),
        scored / "users.parquet",
    )


def rows_of(folder: str | Path, user_id: int, filesystem: Any = None) -> int:
    """How many rows of the customer a reader of the folder's Parquet files finds."""
    files = (
        [str(p) for p in Path(folder).rglob("*.parquet") if "models" not in p.parts]
        if filesystem is None
        else folder
    )
    dataset = ds.dataset(files, format="parquet", filesystem=filesystem)
    found = 0
    for fragment in dataset.get_fragments():
        table = fragment.to_table(columns=["user_id"])
        found += int(pc.sum(pc.equal(table.column("user_id"), user_id)).as_py() or 0)
    return found


def count_rows(folder: Path) -> int:
    return sum(
        pq.read_metadata(p).num_rows for p in folder.rglob("*.parquet") if "models" not in p.parts
    )


def populate(store: StateStore, user: int) -> None:
    """A profile, a disposition, a decision and a resolved approval of the customer."""
    store.touch_profile(str(user), persona="loose-passive", last_seen="2026-03-02T10:00:00+00:00")
    record_disposition(store, f"d-{user}", user, "2026-03-02T10:00:00.000000+00:00")
    record_decision(store, f"tx-{user}", user, "2026-03-02T10:00:00.000000+00:00")
    approval = store.enqueue_approval(
        {"action": "lock", "subject_kind": "account", "subject_id": str(user), "reason": "t"}
    )
    store.resolve_approval(approval, "rejected", "token:admin")


def lock(store: StateStore, user: int) -> None:
    store.apply_intervention(account_entry("lock", user), str(user))


def pending_approval(store: StateStore, user: int) -> str:
    return store.enqueue_approval(
        {"action": "lock", "subject_kind": "account", "subject_id": str(user), "reason": "t"}
    )


def held(store: StateStore, user: int) -> dict[str, Any]:
    """What a user of the service finds about the customer in the state store."""
    dispositions, _ = store.dispositions(user_id=user)
    decisions, _ = store.decisions(user_id=user)
    return {
        "profile": store.get_profile(str(user)) is not None,
        "dispositions": len(dispositions),
        "decisions": len(decisions),
        "approvals": sum(
            1
            for status in ("pending", "approved", "rejected")
            for a in store.list_approvals(status)
            if a.get("subject_id") == str(user)
        ),
    }


def fraudwatch(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from fraudwatch.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
