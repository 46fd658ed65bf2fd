"""Bad input gets a 4xx with a JSON error that says what was wrong; never a 500 or a trace."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def analyst(token_for: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return token_for("analyst")


CASES = [
    # (what, method, path, kwargs, status, words in the error)
    (
        "malformed JSON",
        "POST",
        "/v1/accounts/1/lock",
        {"content": b'{"reason": ', "headers": {"content-type": "application/json"}},
        400,
        "JSON",
    ),
    (
        "wrong content type",
        "POST",
        "/v1/accounts/1/lock",
        {"content": b"reason=x", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        415,
        "application/json",
    ),
    (
        "oversized body",
        "POST",
        "/v1/accounts/1/lock",
        {"json": {"reason": "x" * 70_000}},
        413,
        "larger than",
    ),
    (
        "unknown account",
        "POST",
        "/v1/accounts/424242/lock",
        {"json": {"reason": "x"}},
        404,
        "unknown account 424242",
    ),
    (
        "unknown transaction",
        "POST",
        "/v1/transactions/5/block",
        {"json": {"reason": "x"}},
        404,
        "unknown transaction 5",
    ),
    (
        "unknown action",
        "POST",
        "/v1/accounts/1/explode",
        {"json": {"reason": "x"}},
        404,
        "no such route",
    ),
    ("missing reason", "POST", "/v1/accounts/1/lock", {"json": {}}, 422, "reason"),
    ("empty reason", "POST", "/v1/accounts/1/lock", {"json": {"reason": ""}}, 422, "reason"),
    (
        "extra field",
        "POST",
        "/v1/accounts/1/lock",
        {"json": {"reason": "x", "force": True}},
        422,
        "force",
    ),
    ("body is a list", "POST", "/v1/accounts/1/lock", {"json": ["x"]}, 422, "body"),
    ("non-numeric id", "POST", "/v1/accounts/abc/lock", {"json": {"reason": "x"}}, 422, "user_id"),
    ("id beyond int64", "GET", "/v1/users/99999999999999999999", {}, 422, "user_id"),
    ("score out of range", "GET", "/v1/anomalies?score_min=3", {}, 422, "score_min"),
    ("unknown status", "GET", "/v1/anomalies?status=frozen", {}, 422, "status"),
    ("wrong method", "DELETE", "/v1/anomalies", {}, 405, "not allowed"),
    (
        "hook body not JSON",
        "POST",
        "/v1/hooks/grafana",
        {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
        403,
        "hooks:post",
    ),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "kwargs", "status", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_gets_a_json_4xx_naming_the_problem(
    client: TestClient,
    analyst: dict[str, str],
    what: str,
    method: str,
    path: str,
    kwargs: dict,
    status: int,
    words: str,
) -> None:
    headers = {**analyst, **kwargs.pop("headers", {})}
    response = client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert words in response.json()["error"]
    assert "Traceback" not in response.text


def test_hook_with_admin_token_and_broken_json_is_a_400(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    response = client.post(
        "/v1/hooks/grafana",
        content=b"{nope",
        headers={**token_for("admin"), "content-type": "application/json"},
    )
    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_security_headers_are_on_every_response(client: TestClient) -> None:
    for path in ("/health", "/admin/login", "/v1/anomalies"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
