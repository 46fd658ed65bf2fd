"""What the service shows to anyone: no reflected text on the sign-in page, no interactive
API pages unless switched on, and a state database only its owner can read."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from fraudwatch.intervention.stores.sqlite import SqliteStore


def test_the_sign_in_page_does_not_reflect_the_error_parameter(client: TestClient) -> None:
    planted = "Your session expired: paste your token at evil.example"
    page = client.get("/admin/login", params={"error": planted})
    assert page.status_code == 200
    assert "evil.example" not in page.text and "session expired" not in page.text
    known = client.get("/admin/login", params={"error": "unknown_token"})
    assert "That token is unknown or revoked." in known.text


def test_docs_and_redoc_are_off_unless_configured(
    client: TestClient, make_client: Callable[..., TestClient]
) -> None:
    for path in ("/docs", "/redoc"):
        assert client.get(path).status_code == 404, path
    assert client.get("/openapi.json").status_code == 200
    with_docs = make_client(FRAUDWATCH_API_DOCS="true")
    assert with_docs.get("/docs").status_code == 200


def test_the_state_database_is_created_owner_only(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "fresh" / "state.sqlite3")
    store.append_audit(
        {
            "ts": "2026-01-01T00:00:00+00:00",
            "actor": "t",
            "role": "admin",
            "via": "cli",
            "action": "x",
            "result": "applied",
        }
    )
    mode = stat.S_IMODE((tmp_path / "fresh" / "state.sqlite3").stat().st_mode)
    assert mode == 0o600, oct(mode)
    for extra in ("state.sqlite3-wal", "state.sqlite3-shm"):
        path = tmp_path / "fresh" / extra
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, extra
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) & 0o077 == 0
