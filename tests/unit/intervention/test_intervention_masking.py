"""Masking by role and audited views (issue 20, item 2).

A viewer never sees a full IP address, device id or counterparty: every GET operation of the
OpenAPI spec and every admin page is requested as a viewer and its body scanned for the
fixture's values (scored_fixture.py writes ip 192.0.2.<user>, device dev-<user>, counterparty
cp-<k>). The same scan as an analyst finds them (so the scan can fail). Each view of one
customer's details is an audit entry."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from itertools import product
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fraudwatch.contract.personal_data import REDACTED, pseudonym
from fraudwatch.errors import UserError
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.masking import VIEW_SUBJECT_KIND
from scored_fixture import N_USERS, TX_PER_USER
from starlette.routing import Route
from test_intervention_admin import sign_in

KEY = "test-pseudonym-key-not-for-production"
USER = 1
TX = USER * 100  # the fixture's first transaction of user 1
FULL_IP = re.compile(r"192\.0\.2\.(?:\d{1,3})(?![\d/])")
FULL_DEVICE = re.compile(r"dev-\d+")
FULL_COUNTERPARTY = re.compile(r"cp-\d+")
#: Path parameter → the fixture's value for it.
PATH_VALUES = {"user_id": str(USER), "tx_id": str(TX)}


def leaks(body: str) -> list[str]:
    return sorted(
        {m for pattern in (FULL_IP, FULL_DEVICE, FULL_COUNTERPARTY) for m in pattern.findall(body)}
    )


def spec_get_requests(client: TestClient) -> Iterator[str]:
    """Every GET operation of /openapi.json as URLs with the fixture's ids, once per value of
    each enumerated query parameter (e.g. /v1/anomalies?level=users and ?level=transactions)."""
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        url = path
        choices: list[list[str]] = []
        for param in get.get("parameters", []):
            schema = param.get("schema", {})
            if param["in"] == "path":
                url = url.replace("{" + param["name"] + "}", PATH_VALUES[param["name"]])
            elif param["in"] == "query" and "enum" in schema:
                choices.append([f"{param['name']}={v}" for v in schema["enum"]])
            elif param["in"] == "query" and param["name"] == "page_size":
                choices.append(["page_size=500"])
        for combination in product(*choices) if choices else [()]:
            yield url + ("?" + "&".join(combination) if combination else "")


def admin_pages(client: TestClient) -> list[str]:
    """Every admin page a signed-in user reads (GET routes under /admin but the sign-in)."""
    pages = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, Route) or "GET" not in (route.methods or ()):
            continue
        if route.path.startswith("/admin") and route.path != "/admin/login":
            pages.append(route.path.replace("{user_id}", str(USER)))
    return pages


def scan(client: TestClient, headers: dict[str, str]) -> dict[str, tuple[int, list[str]]]:
    """URL → (status, full values found) over every spec GET route and admin page."""
    found: dict[str, tuple[int, list[str]]] = {}
    for url in spec_get_requests(client):
        response = client.get(url, headers=headers)
        found[url] = (response.status_code, leaks(response.text))
    for url in admin_pages(client):
        response = client.get(url, follow_redirects=False)
        found[url] = (response.status_code, leaks(response.text))
    return found


@pytest.fixture
def keyed(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(FRAUDWATCH_PSEUDONYM_KEY=KEY)


def token(client: TestClient, role: str) -> dict[str, str]:
    from fraudwatch.intervention.auth import create_token

    value, _ = create_token(client.store, role)  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {value}"}


def views(client: TestClient) -> list[dict[str, Any]]:
    return [
        e
        for e in client.store.audit_entries()  # type: ignore[attr-defined]
        if e["action"] == "view"
    ]


# --- a viewer never sees a full value ----------------------------------------------------
@pytest.mark.parametrize("with_key", [True, False], ids=["pseudonym-key", "no-key"])
def test_a_viewer_never_sees_a_full_ip_device_or_counterparty(
    make_client: Callable[..., TestClient], with_key: bool
) -> None:
    client = make_client(FRAUDWATCH_PSEUDONYM_KEY=KEY) if with_key else make_client()
    sign_in(client, "viewer")
    found = scan(client, token(client, "viewer"))
    shown = {url for url, (status, _) in found.items() if status == 200}
    # the routes that carry the fields were read, not refused
    anomalies = "/v1/anomalies?level=transactions&page_size=500"
    for url in (f"/v1/users/{USER}", f"/v1/transactions/{TX}", anomalies):
        assert url in shown, found
    assert f"/admin/users/{USER}" in shown and "/admin" in shown
    assert {url: hits for url, (_, hits) in found.items() if hits} == {}


def test_an_analyst_sees_every_value_in_full(keyed: TestClient) -> None:
    sign_in(keyed, "analyst")
    found = scan(keyed, token(keyed, "analyst"))
    assert f"192.0.2.{USER}" in found[f"/v1/transactions/{TX}"][1]
    assert {f"dev-{USER}", "cp-0"} <= set(found[f"/v1/transactions/{TX}"][1])
    assert {f"192.0.2.{USER}", f"dev-{USER}"} <= set(found[f"/v1/users/{USER}"][1])
    assert {f"192.0.2.{USER}", f"dev-{USER}"} <= set(found[f"/admin/users/{USER}"][1])


def test_an_admin_sees_every_value_in_full(keyed: TestClient) -> None:
    detail = keyed.get(f"/v1/transactions/{TX}", headers=token(keyed, "admin")).json()
    assert (detail["ip"], detail["device_id"], detail["counterparty"]) == (
        f"192.0.2.{USER}",
        f"dev-{USER}",
        "cp-0",
    )


def test_what_a_viewer_gets_instead(keyed: TestClient) -> None:
    detail = keyed.get(f"/v1/transactions/{TX}", headers=token(keyed, "viewer")).json()
    assert detail["ip"] == "192.0.2.0/24"
    assert detail["device_id"] == pseudonym(f"dev-{USER}", KEY.encode(), "device_id")
    assert detail["counterparty"] == pseudonym("cp-0", KEY.encode(), "counterparty")
    # the rest of the record is untouched
    assert (detail["tx_id"], detail["user_id"], detail["currency"]) == (TX, USER, "EUR")
    user = keyed.get(f"/v1/users/{USER}", headers=token(keyed, "viewer")).json()
    assert len(user["transactions"]) == TX_PER_USER
    # one device per fixture user: one pseudonym, so a viewer still sees it is the same device
    assert {t["device_id"] for t in user["transactions"]} == {detail["device_id"]}
    assert {t["ip"] for t in user["transactions"]} == {"192.0.2.0/24"}


def test_without_a_key_a_viewer_gets_device_ids_redacted(client: TestClient) -> None:
    detail = client.get(f"/v1/transactions/{TX}", headers=token(client, "viewer")).json()
    assert (detail["ip"], detail["device_id"], detail["counterparty"]) == (
        "192.0.2.0/24",
        REDACTED,
        REDACTED,
    )


def test_the_admin_user_page_says_what_is_masked(keyed: TestClient) -> None:
    sign_in(keyed, "viewer")
    page = keyed.get(f"/admin/users/{USER}").text
    assert 'id="masked-note"' in page and "192.0.2.0/24" in page
    assert pseudonym(f"dev-{USER}", KEY.encode(), "device_id") in page


def test_the_scan_sees_every_user_and_route() -> None:
    # the patterns catch the fixture's values and not their masked forms
    assert leaks(f"192.0.2.{N_USERS} dev-7 cp-2") == [f"192.0.2.{N_USERS}", "cp-2", "dev-7"]
    assert leaks(f"192.0.2.0/24 pn_0123456789abcdef {REDACTED}") == []


# --- views are audited -------------------------------------------------------------------
def test_an_analysts_view_of_a_user_is_audited(keyed: TestClient) -> None:
    headers = token(keyed, "analyst")
    assert keyed.get(f"/v1/users/{USER}", headers=headers).status_code == 200
    (entry,) = views(keyed)
    assert entry["actor"].startswith("token:") and entry["role"] == "analyst"
    assert (entry["subject_kind"], entry["subject_id"]) == (VIEW_SUBJECT_KIND, str(USER))
    assert (entry["action"], entry["result"], entry["via"]) == ("view", "shown", "api")
    assert entry["ts"] and f"/v1/users/{USER}" in entry["detail"]
    # "who looked at this customer" through the API
    listed = keyed.get(
        f"/v1/audit?subject_kind={VIEW_SUBJECT_KIND}&subject_id={USER}", headers=headers
    ).json()["items"]
    assert [e["seq"] for e in listed] == [entry["seq"]]
    verified = keyed.get("/v1/audit/verify", headers=token(keyed, "admin")).json()
    assert verified["ok"] is True


def test_every_detail_view_by_any_role_is_audited_lists_and_misses_are_not(
    keyed: TestClient,
) -> None:
    viewer = token(keyed, "viewer")
    keyed.get(f"/v1/transactions/{TX}", headers=viewer)
    keyed.get(f"/v1/users/{USER}/interventions", headers=token(keyed, "admin"))
    sign_in(keyed, "analyst")
    keyed.get(f"/admin/users/{USER}")
    entries = views(keyed)
    assert [(e["role"], e["via"], e["subject_id"]) for e in entries] == [
        ("viewer", "api", str(USER)),  # the transaction's customer
        ("admin", "api", str(USER)),
        ("analyst", "admin", str(USER)),
    ]
    assert f"transaction {TX}" in entries[0]["detail"]
    before = len(keyed.store.audit_entries())  # type: ignore[attr-defined]
    keyed.get("/v1/anomalies?level=transactions", headers=viewer)
    keyed.get("/admin")
    assert keyed.get("/v1/users/999999", headers=viewer).status_code == 404
    assert keyed.get("/v1/transactions/999999", headers=viewer).status_code == 404
    assert len(keyed.store.audit_entries()) == before  # type: ignore[attr-defined]


def test_views_stay_out_of_the_accounts_intervention_history(keyed: TestClient) -> None:
    headers = token(keyed, "analyst")
    keyed.get(f"/v1/users/{USER}", headers=headers)
    history = keyed.get(f"/v1/users/{USER}/interventions", headers=headers).json()
    assert history["items"] == []
    assert len(views(keyed)) == 2


# --- the key -----------------------------------------------------------------------------
def test_the_key_comes_from_the_environment_or_the_secrets_dir(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FRAUDWATCH_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("FRAUDWATCH_SECRETS_DIR", raising=False)
    assert load_settings().pseudonym_key == ""
    monkeypatch.setenv("FRAUDWATCH_PSEUDONYM_KEY", KEY)
    settings = load_settings()
    assert settings.pseudonym_key == KEY and KEY not in repr(settings)
    monkeypatch.delenv("FRAUDWATCH_PSEUDONYM_KEY")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pseudonym-key").write_text(KEY + "\n")
    monkeypatch.setenv("FRAUDWATCH_SECRETS_DIR", str(tmp_path / "secrets"))
    assert load_settings().pseudonym_key == KEY


def test_a_short_key_is_refused_with_the_fix(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDWATCH_PSEUDONYM_KEY", "short")
    with pytest.raises(UserError, match=r"privacy\.pseudonym_key .* at least 16"):
        load_settings()


def test_a_service_without_a_key_warns_at_start(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="fraudwatch.intervention"):
        make_client()
    assert any("FRAUDWATCH_PSEUDONYM_KEY" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fraudwatch.intervention"):
        make_client(FRAUDWATCH_PSEUDONYM_KEY=KEY)
    assert not any("FRAUDWATCH_PSEUDONYM_KEY" in r.getMessage() for r in caplog.records)
