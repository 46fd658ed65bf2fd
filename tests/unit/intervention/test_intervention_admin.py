"""The admin page without a browser: sign-in, CSRF on every form, role limits."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from fraudwatch.intervention.auth import create_token


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "form without a CSRF field"
    return match.group(1)


def sign_in(client: TestClient, role: str) -> str:
    token, _ = create_token(client.store, role)  # type: ignore[attr-defined]
    form = client.get("/admin/login")
    response = client.post(
        "/admin/login", data={"token": token, "csrf": csrf_of(form.text)}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    return csrf_of(client.get("/admin").text)


def test_pages_need_a_session(client: TestClient) -> None:
    for path in ("/admin", "/admin/users/1", "/admin/audit"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/admin/login"


def test_sign_in_needs_the_login_csrf_token(client: TestClient) -> None:
    token, _ = create_token(client.store, "analyst")  # type: ignore[attr-defined]
    response = client.post("/admin/login", data={"token": token, "csrf": "forged"})
    assert response.status_code == 403 and "CSRF" in response.json()["error"]


def test_an_action_without_the_csrf_token_is_refused(client: TestClient) -> None:
    sign_in(client, "analyst")
    response = client.post("/admin/users/1/actions/lock", data={"reason": "x", "csrf": "wrong"})
    assert response.status_code == 403
    assert client.store.get_state("account", "1") == {}  # type: ignore[attr-defined]


def test_an_analyst_locks_from_the_user_page(client: TestClient) -> None:
    csrf = sign_in(client, "analyst")
    page = client.get("/admin/users/1")
    assert "Lock account" in page.text and "amount_max far above persona" in page.text
    response = client.post(
        "/admin/users/1/actions/lock",
        data={"reason": "seen on the page", "csrf": csrf},
        follow_redirects=True,
    )
    assert "seen on the page" in response.text
    assert client.store.get_state("account", "1") == {"locked": True}  # type: ignore[attr-defined]
    assert "seen on the page" in client.get("/admin/audit").text


def test_a_viewer_sees_no_action_buttons_and_cannot_post_one(client: TestClient) -> None:
    csrf = sign_in(client, "viewer")
    assert "Lock account" not in client.get("/admin/users/1").text
    response = client.post("/admin/users/1/actions/lock", data={"reason": "x", "csrf": csrf})
    assert response.status_code == 403


def test_automation_tokens_cannot_sign_in(client: TestClient) -> None:
    token, _ = create_token(client.store, "automation")  # type: ignore[attr-defined]
    form = client.get("/admin/login")
    response = client.post("/admin/login", data={"token": token, "csrf": csrf_of(form.text)})
    assert "cannot use the admin page" in response.text


def test_filters_narrow_the_table(client: TestClient) -> None:
    sign_in(client, "viewer")
    html = client.get("/admin?scenario=account_takeover").text
    assert "3 matching users" in html
    bad = client.get("/admin?hour=99").text
    assert "hour must be between 0 and 23" in bad


def test_admin_page_refusals_are_audited_like_the_api(client: TestClient) -> None:
    csrf = sign_in(client, "viewer")
    denied = client.post("/admin/users/1/actions/lock", data={"reason": "x", "csrf": csrf})
    assert denied.status_code == 403
    entries = client.store.audit_entries()  # type: ignore[attr-defined]
    assert [(e["via"], e["result"]) for e in entries] == [("admin", "denied")]
    assert "interventions:write" in entries[0]["detail"]
    assert client.get("/admin/audit").status_code == 403
    assert client.store.audit_entries()[-1]["action"] == "GET /admin/audit"  # type: ignore[attr-defined]


def test_admin_page_action_on_an_unknown_account_is_a_404_and_audited(client: TestClient) -> None:
    csrf = sign_in(client, "analyst")
    missing = client.post("/admin/users/424242/actions/lock", data={"reason": "x", "csrf": csrf})
    assert missing.status_code == 404 and "unknown account 424242" in missing.json()["error"]
    (entry,) = client.store.audit_entries()  # type: ignore[attr-defined]
    assert (entry["via"], entry["result"], entry["subject_id"]) == ("admin", "refused", "424242")
    huge = client.post(f"/admin/users/{'9' * 30}/actions/lock", data={"reason": "x", "csrf": csrf})
    assert huge.status_code == 422


def test_the_admin_page_offers_every_account_action_of_the_one_table(client: TestClient) -> None:
    from fraudwatch.intervention.admin import ACTIONS
    from fraudwatch.intervention.stores.repository import ACTION_EFFECTS

    assert set(ACTIONS) == {a for a, (kind, _, _) in ACTION_EFFECTS.items() if kind == "account"}
    sign_in(client, "analyst")
    page = client.get("/admin/users/1").text
    assert all(label in page for label in ACTIONS.values())
