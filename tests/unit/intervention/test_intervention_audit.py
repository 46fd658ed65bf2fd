"""The audit hash chain and `fraudwatch audit verify` / `fraudwatch tokens create`."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

#: The installed `fraudwatch` command: the project's console script (fraudwatch.cli:main).
FRAUDWATCH = Path(sys.executable).with_name("fraudwatch")


def run(*args: str) -> tuple[int, str]:
    """`fraudwatch ARGS` as an operator runs it, in a subprocess with this test's environment:
    the real CLI's exit code, and its stderr then its stdout (a token is stdout's last line)."""
    done = subprocess.run(
        [str(FRAUDWATCH), *args], capture_output=True, text=True, timeout=300, check=False
    )
    return done.returncode, done.stderr + done.stdout


@pytest.fixture
def filled(client: TestClient, token_for: Callable[[str], dict[str, str]], home: Path) -> Path:
    h = token_for("analyst")
    for user in (1, 2, 3):
        client.post(f"/v1/accounts/{user}/lock", json={"reason": f"r{user}"}, headers=h)
    client.post("/v1/accounts/2/unlock", json={"reason": "ok"}, headers=h)
    db = home / "state.sqlite3"
    assert db.exists()
    return db


def use_store(monkeypatch: pytest.MonkeyPatch, db: Path) -> None:
    monkeypatch.setenv("FRAUDWATCH_STATE_URL", f"sqlite:///{db}")


def test_verify_passes_on_an_untouched_log(filled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(monkeypatch, filled)
    code, out = run("audit", "verify")
    assert code == 0 and "4 entries" in out


def test_verify_catches_an_edited_entry(filled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with sqlite3.connect(filled) as con:
        con.execute("UPDATE audit SET reason = 'nothing to see' WHERE seq = 2")
    use_store(monkeypatch, filled)
    code, out = run("audit", "verify")
    assert code == 2 and "entry 2" in out and "edited" in out


def test_verify_catches_an_entry_rewritten_with_a_fresh_hash(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fraudwatch.intervention.audit import entry_hash

    with sqlite3.connect(filled) as con:
        con.row_factory = sqlite3.Row
        row = dict(con.execute("SELECT * FROM audit WHERE seq = 2").fetchone())
        row["action"] = "unlock"
        con.execute(
            "UPDATE audit SET action = 'unlock', hash = ? WHERE seq = 2", (entry_hash(row),)
        )
    use_store(monkeypatch, filled)
    code, out = run("audit", "verify")
    assert code == 2 and "entry 3" in out


def test_verify_catches_a_deleted_entry(filled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with sqlite3.connect(filled) as con:
        con.execute("DELETE FROM audit WHERE seq = 2")
    use_store(monkeypatch, filled)
    code, out = run("audit", "verify")
    assert code == 2 and "deleted" in out


def test_verify_catches_the_newest_entry_deleted(
    filled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sqlite3.connect(filled) as con:
        con.execute("DELETE FROM audit WHERE seq = 4")
    use_store(monkeypatch, filled)
    code, out = run("audit", "verify")
    assert code == 2 and "newest" in out


def test_tokens_create_prints_a_working_token_alone_on_the_last_line(
    home: Path, make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_store(monkeypatch, home / "state.sqlite3")
    code, out = run("tokens", "create", "--role", "analyst")
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("fw_") and " " not in token
    client = make_client()
    response = client.post(
        "/v1/accounts/1/lock",
        json={"reason": "cli token"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json()["result"] == "applied"
    code, out = run("tokens", "create", "--role", "root")
    assert code == 2 and "unknown role 'root'" in out


def test_serve_names_the_missing_results_and_the_fix(home: Path, tmp_path: Path) -> None:
    code, out = run("serve", "--scored", str(tmp_path / "nothing"))
    assert code == 2 and "fraudwatch demo" in out and "--scored" in out


def test_api_verify_reports_the_same_as_the_cli(
    client: TestClient, token_for: Callable[[str], dict[str, str]], filled: Path
) -> None:
    ok = client.get("/v1/audit/verify", headers=token_for("admin")).json()
    assert ok["ok"] is True
    with sqlite3.connect(filled) as con:
        con.execute("UPDATE audit SET result = 'no_change' WHERE seq = 1")
    broken = client.get("/v1/audit/verify", headers=token_for("admin")).json()
    assert broken["ok"] is False and "entry 1" in broken["problem"]


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE state SET value = 0 WHERE subject_id = '1' AND field = 'locked'",
        "DELETE FROM state WHERE subject_id = '3'",
        "INSERT INTO state (kind, subject_id, field, value, seq) "
        "VALUES ('account', '7', 'locked', 1, 2)",
        "UPDATE state SET value = 1, seq = 2 WHERE subject_id = '2'",
    ],
    ids=["silently unlocked", "row deleted", "row invented", "relocked pointing at a lock"],
)
def test_verify_catches_a_direct_edit_of_the_state_table(
    filled: Path,
    monkeypatch: pytest.MonkeyPatch,
    client: TestClient,
    token_for: Callable[[str], dict[str, str]],
    edit: str,
) -> None:
    with sqlite3.connect(filled) as con:
        con.execute(edit)
    use_store(monkeypatch, filled)
    code, out = run("audit", "verify")
    assert code == 2 and "state table was edited" in out, out
    answer = client.get("/v1/audit/verify", headers=token_for("admin")).json()
    assert answer["ok"] is False and "state of account" in answer["problem"]
