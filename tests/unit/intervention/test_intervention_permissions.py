"""Who may do what: every role against every action, and no anonymous access anywhere."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from fraudwatch.intervention.auth import PERMISSIONS, ROLES

REASON = {"reason": "permission matrix test"}
GRAFANA = {"alerts": [{"status": "firing", "labels": {"user_id": "30", "ensemble_score": "0.1"}}]}

# (method, path, json body, the permission the route needs)
MATRIX = [
    ("GET", "/v1/anomalies", None, "results:read"),
    ("GET", "/v1/users/7", None, "results:read"),
    ("GET", "/v1/transactions/700", None, "results:read"),
    ("GET", "/v1/users/7/interventions", None, "history:read"),
    ("POST", "/v1/accounts/7/lock", REASON, "interventions:write"),
    ("POST", "/v1/accounts/7/unlock", REASON, "interventions:write"),
    ("POST", "/v1/accounts/7/step-up", REASON, "interventions:write"),
    ("POST", "/v1/accounts/7/step-up/clear", REASON, "interventions:write"),
    ("POST", "/v1/transactions/700/block", REASON, "interventions:write"),
    ("POST", "/v1/transactions/700/release", REASON, "interventions:write"),
    ("GET", "/v1/audit", None, "audit:read"),
    ("GET", "/v1/audit/verify", None, "audit:verify"),
    ("GET", "/v1/policy", None, "policy:read"),
    ("PUT", "/v1/policy", {"lock_at": 0.96, "reason": "tune"}, "policy:write"),
    ("GET", "/v1/approvals", None, "approvals:write"),
    ("GET", "/v1/tokens", None, "tokens:manage"),
    ("POST", "/v1/tokens", {"role": "viewer"}, "tokens:manage"),
    ("POST", "/v1/hooks/grafana", GRAFANA, "hooks:post"),
    ("GET", "/metrics", None, "metrics:read"),
]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_do_exactly_what_the_matrix_grants(
    client: TestClient, token_for: Callable[[str], dict[str, str]], role: str
) -> None:
    headers = token_for(role)
    for method, path, body, permission in MATRIX:
        response = client.request(method, path, json=body, headers=headers)
        if role in PERMISSIONS[permission]:
            assert response.status_code in (200, 201), (role, method, path, response.text)
        else:
            assert response.status_code == 403, (role, method, path, response.text)
            assert permission in response.json()["error"]


def test_analyst_locks_but_automation_only_acts_through_hooks(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    analyst = client.post("/v1/accounts/8/lock", json=REASON, headers=token_for("analyst"))
    assert analyst.json()["result"] == "applied"
    robot = client.post("/v1/accounts/9/lock", json=REASON, headers=token_for("automation"))
    assert robot.status_code == 403
    assert client.get("/v1/users/9", headers=token_for("viewer")).json()["state"]["locked"] is False


def test_every_route_in_the_openapi_spec_denies_anonymous_callers(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    checked = 0
    for path, operations in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in operations:
            response = client.request(method.upper(), concrete, json={"reason": "x"})
            if path == "/health":
                assert response.status_code == 200
                continue
            assert response.status_code == 401, (method, path, response.text)
            assert "Bearer" in response.json()["error"]
            checked += 1
    assert checked >= 20  # the spec really lists the API, not an empty document


def test_a_wrong_or_revoked_token_is_refused(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    admin = token_for("admin")
    made = client.post("/v1/tokens", json={"role": "viewer"}, headers=admin).json()
    viewer = {"Authorization": f"Bearer {made['token']}"}
    assert client.get("/v1/anomalies", headers=viewer).status_code == 200
    assert client.delete(f"/v1/tokens/{made['token_id']}", headers=admin).status_code == 200
    assert client.get("/v1/anomalies", headers=viewer).status_code == 401
    wrong = {"Authorization": "Bearer fw_not-a-real-token"}
    assert client.get("/v1/anomalies", headers=wrong).status_code == 401


def test_a_refusal_is_written_to_the_audit_log(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    client.post("/v1/accounts/3/lock", json=REASON, headers=token_for("viewer"))
    entries = client.get("/v1/audit", headers=token_for("admin")).json()["items"]
    denied = [e for e in entries if e["result"] == "denied"]
    assert denied and denied[0]["role"] == "viewer"
    assert denied[0]["action"] == "POST /v1/accounts/3/lock"


def test_tokens_are_stored_hashed(client: TestClient) -> None:
    from fraudwatch.intervention.auth import create_token

    token, record = create_token(client.store, "viewer")  # type: ignore[attr-defined]
    raw = (client.store.path).read_bytes()  # type: ignore[attr-defined]
    assert token.encode() not in raw
    assert record["token_hash"] != token
