"""Admin page sessions live in the state store: they survive a service restart, expire, and
end when their token is revoked — on SQLite and on MongoDB (a real FerretDB)."""

from __future__ import annotations

import re
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fraudwatch.intervention import admin
from fraudwatch.intervention.api import create_app
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.results import ScoredResults
from fraudwatch.intervention.stores import StateStore
from scored_fixture import write_scored


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> ScoredResults:
    return ScoredResults(write_scored(tmp_path_factory.mktemp("scored")))


def service(store: StateStore, results: ScoredResults, tmp_path: Path) -> TestClient:
    settings = load_settings(tmp_path / "absent.toml", {})
    return TestClient(create_app(settings, store, results), raise_server_exceptions=False)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "form without a CSRF field"
    return match.group(1)


def sign_in(client: TestClient, token: str) -> str:
    """Sign in; the session cookie stays in the client. Returns the page's CSRF token."""
    form = client.get("/admin/login")
    response = client.post(
        "/admin/login", data={"token": token, "csrf": csrf_of(form.text)}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    return csrf_of(client.get("/admin").text)


def test_a_session_survives_a_service_restart(
    store_factory: Callable[[], StateStore], results: ScoredResults, tmp_path: Path
) -> None:
    first_store = store_factory()
    token, _ = create_token(first_store, "analyst")
    before = service(first_store, results, tmp_path)
    csrf = sign_in(before, token)
    cookie = before.cookies.get(admin.SESSION_COOKIE)
    assert cookie
    before.close()
    first_store.close()  # the service is gone, and with it anything it held in memory

    after = service(store_factory(), results, tmp_path)
    after.cookies.set(admin.SESSION_COOKIE, cookie)
    page = after.get("/admin", follow_redirects=False)
    assert page.status_code == 200 and "Sign out" in page.text
    assert csrf_of(page.text) == csrf  # the CSRF token belongs to the stored session
    acted = after.post(
        "/admin/users/1/actions/lock",
        data={"reason": "after a restart", "csrf": csrf},
        follow_redirects=False,
    )
    assert acted.status_code == 303
    assert after.app.state.ctx.store.get_state("account", "1") == {"locked": True}  # type: ignore[attr-defined]
    after.close()


def test_the_session_id_itself_is_not_stored(
    store_factory: Callable[[], StateStore], results: ScoredResults, tmp_path: Path
) -> None:
    store = store_factory()
    token, _ = create_token(store, "viewer")
    client = service(store, results, tmp_path)
    sign_in(client, token)
    sid = client.cookies.get(admin.SESSION_COOKIE)
    assert sid
    assert store.get_session(sid, time.time()) is None
    assert store.get_session(admin.session_hash(sid), time.time()) is not None
    client.close()


def test_an_expired_session_is_refused(
    store_factory: Callable[[], StateStore],
    results: ScoredResults,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = store_factory()
    token, _ = create_token(store, "analyst")
    client = service(store, results, tmp_path)
    sign_in(client, token)
    assert client.get("/admin", follow_redirects=False).status_code == 200
    # The admin page's clock moves past the session's lifetime (the store keeps expires_at).
    later = time.time() + admin.SESSION_SECONDS + 60
    monkeypatch.setattr(admin, "time", types.SimpleNamespace(time=lambda: later))
    refused = client.get("/admin", follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/admin/login"
    monkeypatch.undo()
    # ... and it stays refused: the expired session was removed, not just skipped.
    again = client.get("/admin", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/admin/login"
    client.close()


def test_revoking_the_token_signs_its_sessions_out(
    store_factory: Callable[[], StateStore], results: ScoredResults, tmp_path: Path
) -> None:
    store = store_factory()
    token, record = create_token(store, "analyst")
    admin_token, _ = create_token(store, "admin")
    client = service(store, results, tmp_path)
    sign_in(client, token)
    revoked = client.delete(
        f"/v1/tokens/{record['token_id']}", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert revoked.status_code == 200
    response = client.get("/admin", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    client.close()


def test_the_user_page_keeps_the_profile_in_the_store(
    store_factory: Callable[[], StateStore], results: ScoredResults, tmp_path: Path
) -> None:
    store = store_factory()
    token, _ = create_token(store, "analyst")
    client = service(store, results, tmp_path)
    csrf = sign_in(client, token)
    assert client.get("/admin/users/3").status_code == 200
    profile = store.get_profile("3")
    assert profile is not None
    assert profile["persona"] == results.user(3)["persona"]  # type: ignore[index]
    assert profile["last_seen"] == results.transactions_of(3)[0]["ts"]
    assert profile["state"] == {"locked": False, "step_up": False}
    client.post("/admin/users/3/actions/step_up", data={"reason": "check", "csrf": csrf})
    assert store.get_profile("3")["state"] == {"locked": False, "step_up": True}  # type: ignore[index]
    client.close()
