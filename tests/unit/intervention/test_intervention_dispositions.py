"""Dispositions (issue 16, item 1): the API contract, who may record and read them, the audit
chain, and the admin page's verdict buttons and queue of flagged users without one."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fraudwatch.intervention.api import create_app
from fraudwatch.intervention.audit import verify_store
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.results import ScoredResults
from fraudwatch.intervention.stores.sqlite import SqliteStore
from scored_fixture import write_scored
from test_intervention_admin import sign_in

Headers = Callable[[str], dict[str, str]]
MODEL_VERSION = "20260301T000000-test"
#: The fixture's flagged users (scored_fixture.py): 1 to 4; user 1's transactions: 100-104.
FLAGGED = [1, 2, 3, 4]


def post(client: TestClient, headers: dict[str, str], **body: object):  # type: ignore[no-untyped-def]
    payload = {"user_id": 1, "label": "fraud", "reason": "card used abroad", **body}
    return client.post("/v1/dispositions", json=payload, headers=headers)


def audit(client: TestClient) -> list[dict]:
    # Views of the user page are audited too (test_intervention_masking.py); not counted here.
    entries = client.store.audit_entries()  # type: ignore[attr-defined]
    return [e for e in entries if e["action"] != "view"]


# --- recording -------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_analysts_and_admins_record_a_disposition(
    client: TestClient, token_for: Headers, role: str
) -> None:
    before = datetime.now(UTC)
    response = post(client, token_for(role), tx_id="101", label="legitimate", reason="known trip")
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["role"] == role and stored["actor"].startswith("token:")
    assert (stored["user_id"], stored["tx_id"], stored["label"], stored["reason"]) == (
        1,
        "101",
        "legitimate",
        "known trip",
    )
    when = datetime.fromisoformat(stored["ts"])
    assert when.utcoffset() == timedelta(0) and before <= when <= datetime.now(UTC)
    # The fixture's scored directory has no run.json: the model version cannot be told.
    assert stored["model_version"] is None
    listed = client.get("/v1/dispositions", headers=token_for("viewer")).json()
    assert listed["items"] == [stored] and listed["total"] == 1


def test_a_disposition_is_a_link_of_the_audit_chain(client: TestClient, token_for: Headers) -> None:
    stored = post(client, token_for("analyst")).json()
    (entry,) = audit(client)
    assert (entry["action"], entry["result"], entry["via"]) == ("disposition", "recorded", "api")
    assert (entry["subject_kind"], entry["subject_id"]) == ("account", "1")
    assert entry["seq"] == stored["audit_seq"] and entry["ts"] == stored["ts"]
    assert entry["reason"] == "card used abroad" and stored["id"] in entry["detail"]
    assert "label fraud" in entry["detail"]
    post(client, token_for("admin"), user_id=2, label="unsure")
    assert verify_store(client.store).ok  # type: ignore[attr-defined]
    # The account's history (the audit entries about it) shows the verdict too.
    history = client.get("/v1/users/1/interventions", headers=token_for("viewer")).json()
    assert [e["action"] for e in history["items"]] == ["disposition"]


@pytest.mark.parametrize("role", ["viewer", "automation"])
def test_viewers_and_automation_may_not_record_and_the_refusal_is_audited(
    client: TestClient, token_for: Headers, role: str
) -> None:
    response = post(client, token_for(role))
    assert response.status_code == 403
    assert "interventions:write" in response.json()["error"]
    (entry,) = audit(client)
    assert (entry["action"], entry["result"], entry["role"]) == (
        "POST /v1/dispositions",
        "denied",
        role,
    )
    assert client.store.dispositions() == ([], 0)  # type: ignore[attr-defined]


def test_recording_needs_a_token(client: TestClient) -> None:
    response = client.post("/v1/dispositions", json={"user_id": 1, "label": "fraud", "reason": "x"})
    assert response.status_code == 401 and "Bearer" in response.json()["error"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"label": "maybe"}, "body.label"),
        ({"label": None}, "body.label"),
        ({"reason": ""}, "body.reason"),
        ({"reason": "x" * 1001}, "body.reason"),
        ({"user_id": "1"}, "body.user_id"),
        ({"user_id": -1}, "body.user_id"),
        ({"user_id": 2**63}, "body.user_id"),
        ({"tx_id": "abc"}, "body.tx_id"),
        ({"tx_id": 101}, "body.tx_id"),
        ({"verdict": "fraud"}, "body.verdict"),
    ],
)
def test_bad_bodies_are_a_422_naming_the_field(
    client: TestClient, token_for: Headers, change: dict, where: str
) -> None:
    response = post(client, token_for("analyst"), **change)
    assert response.status_code == 422
    body = response.json()
    assert body["error"].startswith(f"invalid request: {where}:")
    assert "Traceback" not in response.text
    assert client.store.dispositions() == ([], 0)  # type: ignore[attr-defined]


def test_an_unknown_label_names_the_labels_there_are(
    client: TestClient, token_for: Headers
) -> None:
    response = post(client, token_for("analyst"), label="fraudulent")
    assert response.status_code == 422
    assert all(label in response.json()["error"] for label in ("fraud", "legitimate", "unsure"))


def test_a_body_that_is_not_json_is_refused(client: TestClient, token_for: Headers) -> None:
    headers = {**token_for("analyst"), "Content-Type": "application/json"}
    response = client.post("/v1/dispositions", content=b"{not json", headers=headers)
    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_an_unknown_account_is_a_404_and_audited(client: TestClient, token_for: Headers) -> None:
    response = post(client, token_for("analyst"), user_id=424242)
    assert response.status_code == 404 and "unknown account 424242" in response.json()["error"]
    (entry,) = audit(client)
    assert (entry["action"], entry["result"], entry["subject_id"]) == (
        "disposition",
        "refused",
        "424242",
    )
    assert entry["reason"] == "card used abroad"
    assert client.store.dispositions() == ([], 0)  # type: ignore[attr-defined]


@pytest.mark.parametrize("tx_id", ["201", "999999", "9999999999999999999"])
def test_a_transaction_that_is_not_the_accounts_is_a_404_and_audited(
    client: TestClient, token_for: Headers, tx_id: str
) -> None:
    response = post(client, token_for("analyst"), user_id=1, tx_id=tx_id)
    assert response.status_code == 404 and f"transaction {tx_id}" in response.json()["error"]
    (entry,) = audit(client)
    assert (entry["result"], entry["subject_id"]) == ("refused", "1")
    assert client.store.dispositions() == ([], 0)  # type: ignore[attr-defined]


def test_a_retry_with_the_same_idempotency_key_records_once(
    client: TestClient, token_for: Headers
) -> None:
    headers = {**token_for("analyst"), "Idempotency-Key": "verdict-1"}
    first = post(client, headers)
    again = post(client, headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert client.store.dispositions()[1] == 1  # type: ignore[attr-defined]
    other = post(client, headers, label="unsure")
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["error"]


# --- the model version of the served results -----------------------------------------------
@pytest.fixture
def versioned(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A service whose scored directory names its model version in run.json."""
    scored = write_scored(tmp_path / "scored")
    (scored / "run.json").write_text(
        json.dumps({"model_version": MODEL_VERSION, "created_at": "2026-03-01T00:00:00+00:00"})
    )
    monkeypatch.setenv("FRAUDWATCH_HOOK_SECRET", "test-hook-secret-not-for-production")
    store = SqliteStore(home / "state.sqlite3")
    app = create_app(load_settings().with_scored(scored), store, ScoredResults(scored))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.store = store  # type: ignore[attr-defined]
        yield client


def test_a_disposition_names_the_model_version_of_the_served_results(
    versioned: TestClient,
) -> None:
    from fraudwatch.intervention.auth import create_token

    token, _ = create_token(versioned.store, "analyst")  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {token}"}
    stored = post(versioned, headers).json()
    assert stored["model_version"] == MODEL_VERSION
    assert MODEL_VERSION in audit(versioned)[-1]["detail"]
    found = versioned.get(
        "/v1/dispositions", params={"model_version": MODEL_VERSION}, headers=headers
    )
    assert found.json()["total"] == 1
    other = versioned.get("/v1/dispositions", params={"model_version": "older"}, headers=headers)
    assert other.json()["total"] == 0


# --- reading ---------------------------------------------------------------------------
def test_dispositions_filter_by_user_label_and_time_and_page(
    client: TestClient, token_for: Headers
) -> None:
    analyst = token_for("analyst")
    made = [
        post(client, analyst, user_id=user, label=label).json()
        for user, label in [(1, "fraud"), (2, "legitimate"), (1, "unsure"), (3, "fraud")]
    ]
    viewer = token_for("viewer")

    def ids(**params: object) -> list[str]:
        response = client.get("/v1/dispositions", params=params, headers=viewer)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["items"]]

    newest_first = [d["id"] for d in reversed(made)]
    assert ids() == newest_first
    assert ids(user_id=1) == [made[2]["id"], made[0]["id"]]
    assert ids(label="fraud") == [made[3]["id"], made[0]["id"]]
    assert ids(user_id=1, label="fraud") == [made[0]["id"]]
    assert ids(since=made[1]["ts"], until=made[2]["ts"]) == [made[2]["id"], made[1]["id"]]
    # A time in another zone means the same instant; a time without a zone is UTC.
    plus_one = datetime.fromisoformat(made[2]["ts"]).astimezone(timezone(timedelta(hours=1)))
    assert ids(since=plus_one.isoformat()) == [made[3]["id"], made[2]["id"]]
    naive = datetime.fromisoformat(made[3]["ts"]).replace(tzinfo=None).isoformat()
    assert ids(since=naive) == [made[3]["id"]]
    page = client.get("/v1/dispositions", params={"page": 2, "page_size": 3}, headers=viewer)
    body = page.json()
    assert (body["page"], body["page_size"], body["total"]) == (2, 3, 4)
    assert [d["id"] for d in body["items"]] == newest_first[3:]


@pytest.mark.parametrize(
    "params",
    [
        {"label": "maybe"},
        {"since": "yesterday"},
        {"until": "2026-13-01T00:00:00"},
        {"since": "0001-01-01T00:00:00+01:00"},  # before the first instant UTC can hold
        {"user_id": -1},
        {"page": 0},
        {"page_size": 501},
        {"model_version": "v" * 201},
    ],
)
def test_bad_filters_are_a_422(client: TestClient, token_for: Headers, params: dict) -> None:
    response = client.get("/v1/dispositions", params=params, headers=token_for("viewer"))
    assert response.status_code == 422 and response.json()["error"].startswith("invalid request")


def test_since_after_until_is_a_422_that_says_so(client: TestClient, token_for: Headers) -> None:
    response = client.get(
        "/v1/dispositions",
        params={"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
        headers=token_for("analyst"),
    )
    assert response.status_code == 422 and "is after until" in response.json()["error"]


@pytest.mark.parametrize("role", ["viewer", "analyst", "admin"])
def test_viewers_analysts_and_admins_read_dispositions(
    client: TestClient, token_for: Headers, role: str
) -> None:
    assert client.get("/v1/dispositions", headers=token_for(role)).status_code == 200
    assert client.get("/v1/dispositions/queue", headers=token_for(role)).status_code == 200


def test_automation_may_not_read_dispositions_and_it_is_audited(
    client: TestClient, token_for: Headers
) -> None:
    response = client.get("/v1/dispositions", headers=token_for("automation"))
    assert response.status_code == 403
    assert [(e["action"], e["result"]) for e in audit(client)] == [
        ("GET /v1/dispositions", "denied")
    ]


def test_the_queue_lists_flagged_users_until_they_have_a_disposition(
    client: TestClient, token_for: Headers
) -> None:
    viewer = token_for("viewer")

    def queued() -> list[int]:
        body = client.get("/v1/dispositions/queue", headers=viewer).json()
        assert body["total"] == len(body["items"])
        return [item["user_id"] for item in body["items"]]

    assert queued() == FLAGGED
    post(client, token_for("analyst"), user_id=2, label="legitimate")
    post(client, token_for("analyst"), user_id=30, label="fraud")  # not flagged: no change
    assert queued() == [1, 3, 4]


# --- the admin page ----------------------------------------------------------------------
def test_the_user_page_offers_the_verdicts_to_an_analyst(client: TestClient) -> None:
    sign_in(client, "analyst")
    page = client.get("/admin/users/1").text
    for label, name in (("fraud", "Fraud"), ("legitimate", "Legitimate"), ("unsure", "Unsure")):
        assert f'name="label" value="{label}"' in page and f">{name}</button>" in page
    assert 'action="/admin/users/1/dispositions"' in page
    assert "No disposition yet." in page


def test_an_analyst_labels_from_the_user_page(client: TestClient) -> None:
    csrf = sign_in(client, "analyst")
    response = client.post(
        "/admin/users/1/dispositions",
        data={"label": "fraud", "reason": "victim confirmed by phone", "tx_id": "", "csrf": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/users/1?done=disposition"
    page = client.get("/admin/users/1").text
    assert "victim confirmed by phone" in page and "No disposition yet." not in page
    (stored,), _ = client.store.dispositions(user_id=1)  # type: ignore[attr-defined]
    assert (stored["label"], stored["via"], stored["tx_id"]) == ("fraud", "admin", None)
    (entry,) = audit(client)
    assert (entry["action"], entry["via"], entry["result"]) == ("disposition", "admin", "recorded")
    with_tx = client.post(
        "/admin/users/1/dispositions",
        data={"label": "unsure", "reason": "this one looks fine", "tx_id": "102", "csrf": csrf},
    )
    assert with_tx.status_code == 200
    assert client.store.dispositions(user_id=1)[0][0]["tx_id"] == "102"  # type: ignore[attr-defined]


def test_a_disposition_form_without_the_csrf_token_is_refused(client: TestClient) -> None:
    sign_in(client, "analyst")
    response = client.post(
        "/admin/users/1/dispositions", data={"label": "fraud", "reason": "x", "csrf": "forged"}
    )
    assert response.status_code == 403 and "CSRF" in response.json()["error"]
    assert client.store.dispositions() == ([], 0)  # type: ignore[attr-defined]
    assert audit(client) == []


def test_a_viewer_sees_no_verdict_buttons_and_a_post_is_refused_and_audited(
    client: TestClient,
) -> None:
    csrf = sign_in(client, "viewer")
    page = client.get("/admin/users/1").text
    assert 'name="label"' not in page and "No disposition yet." in page
    response = client.post(
        "/admin/users/1/dispositions", data={"label": "fraud", "reason": "x", "csrf": csrf}
    )
    assert response.status_code == 403
    (entry,) = audit(client)
    assert (entry["via"], entry["result"], entry["action"]) == (
        "admin",
        "denied",
        "POST /admin/users/1/dispositions",
    )
    assert client.store.dispositions() == ([], 0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "data", "status", "message"),
    [
        ("/admin/users/1/dispositions", {"label": "maybe"}, 422, "unknown label 'maybe'"),
        ("/admin/users/1/dispositions", {"label": "fraud", "reason": "  "}, 422, "reason"),
        ("/admin/users/1/dispositions", {"label": "fraud", "tx_id": "x1"}, 422, "not a number"),
        ("/admin/users/1/dispositions", {"label": "fraud", "tx_id": "201"}, 404, "transaction"),
        ("/admin/users/424242/dispositions", {"label": "fraud"}, 404, "unknown account 424242"),
    ],
)
def test_the_admin_form_refuses_bad_input_with_a_message(
    client: TestClient, path: str, data: dict, status: int, message: str
) -> None:
    csrf = sign_in(client, "analyst")
    response = client.post(path, data={"reason": "why", **data, "csrf": csrf})
    assert response.status_code == status and message in response.json()["error"]
    assert client.store.dispositions() == ([], 0)  # type: ignore[attr-defined]
    if status == 404:
        (entry,) = audit(client)
        assert (entry["action"], entry["via"], entry["result"]) == (
            "disposition",
            "admin",
            "refused",
        )


def test_the_queue_page_lists_flagged_users_without_a_disposition(client: TestClient) -> None:
    csrf = sign_in(client, "analyst")
    page = client.get("/admin/queue").text
    assert "4 flagged users wait for a verdict" in page
    assert all(f'href="/admin/users/{u}#dispositions"' in page for u in FLAGGED)
    assert 'href="/admin/queue"' in client.get("/admin").text  # reachable from the menu
    client.post(
        "/admin/users/3/dispositions", data={"label": "fraud", "reason": "confirmed", "csrf": csrf}
    )
    page = client.get("/admin/queue").text
    assert "3 flagged users wait for a verdict" in page
    assert 'href="/admin/users/3#dispositions"' not in page
    for user in (1, 2, 4):
        client.post(
            f"/admin/users/{user}/dispositions",
            data={"label": "legitimate", "reason": "checked", "csrf": csrf},
        )
    assert "Every flagged user has a disposition." in client.get("/admin/queue").text


def test_a_viewer_reads_the_queue_but_it_needs_a_session(client: TestClient) -> None:
    response = client.get("/admin/queue", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    sign_in(client, "viewer")
    assert client.get("/admin/queue").status_code == 200
    assert client.get("/admin/queue", params={"page": 0}).status_code == 422
