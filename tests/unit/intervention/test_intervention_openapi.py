"""The OpenAPI spec is the contract: every operation documents the error answers it really
gives (with the service's error body), the hooks document the payloads their parsers act
on, and a 405 names every method the path serves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from fraudwatch.intervention.auth import PERMISSIONS, ROLES
from test_intervention_hooks import grafana_payload, watcher_payload

#: A value for each path parameter, so every operation can be called.
PATH_VALUES = {
    "{user_id}": "1",
    "{tx_id}": "1",
    "{approval_id}": "no-such-approval",
    "{decision}": "approve",
    "{token_id}": "no-such-token",
}


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace(name, value)
    return path


def body_schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["paths"][path]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    return schema


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    """A validator of `schema` that resolves the spec's own `#/components/...` refs."""
    root = {**schema, "components": spec["components"]}
    return jsonschema.Draft202012Validator(root)


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def test_every_authenticated_operation_documents_401_403_and_422(spec: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in operations(spec):
        if not operation.get("security"):
            continue
        checked += 1
        label = f"{method.upper()} {path}"
        responses = operation["responses"]
        assert "401" in responses, label
        permission = operation.get("x-permission")
        assert permission in PERMISSIONS, label
        if set(ROLES) - PERMISSIONS[permission]:
            assert "403" in responses, label  # some role is refused
        else:
            assert "403" not in responses, label  # every role may: it never answers 403
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in responses, label
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            assert "404" in responses, label
        if operation.get("requestBody"):
            assert {"400", "413", "415"} <= set(responses), label
    assert checked >= 20


def test_error_answers_use_the_error_body_not_fastapis(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorBody"]["required"] == ["error"]
    assert "HTTPValidationError" not in schemas  # {"detail": ...} is never sent
    for method, path, operation in operations(spec):
        for code, answer in operation["responses"].items():
            if int(code) >= 400:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)
                assert answer["description"] and answer["description"] != "Validation Error"


def test_conflicts_are_documented_where_they_happen(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    assert "409" in paths["/v1/accounts/{user_id}/lock"]["post"]["responses"]  # Idempotency-Key
    assert "409" in paths["/v1/approvals/{approval_id}/{decision}"]["post"]["responses"]
    assert "409" not in paths["/v1/policy"]["put"]["responses"]
    assert "503" in paths["/v1/anomalies"]["get"]["responses"]  # reads the results
    assert "503" not in paths["/v1/tokens"]["get"]["responses"]


def test_the_documented_401_and_403_are_what_the_service_answers(
    client: TestClient, spec: dict[str, Any], token_for: Callable[[str], dict[str, str]]
) -> None:
    error = validator(spec, {"$ref": "#/components/schemas/ErrorBody"})
    viewer = token_for("viewer")
    for method, path, operation in operations(spec):
        if not operation.get("security"):
            continue
        url = concrete(path)
        body = {} if operation.get("requestBody") else None
        anonymous = client.request(method, url, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        error.validate(anonymous.json())
        if (
            "403" in operation["responses"]
            and "viewer" not in PERMISSIONS[operation["x-permission"]]
        ):
            refused = client.request(method, url, json=body, headers=viewer)
            assert refused.status_code == 403, (method, path, refused.text)
            error.validate(refused.json())


def test_hooks_document_their_payloads_not_just_an_object(spec: dict[str, Any]) -> None:
    grafana = body_schema(spec, "/v1/hooks/grafana")
    watcher = body_schema(spec, "/v1/hooks/watcher")
    for schema in (grafana, watcher):
        assert set(schema) - {"type", "title", "description"}, schema  # more than "object"
    assert grafana["required"] == ["alerts"]
    alert = grafana["properties"]["alerts"]["items"]
    assert alert["properties"]["labels"]["required"] == ["user_id"]
    assert {"fingerprint", "startsAt", "status", "values"} <= set(alert["properties"])
    hit = watcher["properties"]["payload"]["properties"]["hits"]["properties"]["hits"]["items"]
    assert {"user_id", "ensemble_score"} <= set(hit["properties"]["_source"]["properties"])
    for path in ("/v1/hooks/grafana", "/v1/hooks/watcher"):
        operation = spec["paths"][path]["post"]
        assert {"400", "401", "403", "413", "422"} <= set(operation["responses"]), path
        assert "max_alerts" in operation["responses"]["413"]["description"]
        assert operation["x-permission"] == "hooks:post"
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert "X-Fraudwatch-Signature" in headers


def test_payloads_the_hooks_act_on_fit_the_schema_and_others_do_not(
    client: TestClient, spec: dict[str, Any], token_for: Callable[[str], dict[str, str]]
) -> None:
    grafana = validator(spec, body_schema(spec, "/v1/hooks/grafana"))
    watcher = validator(spec, body_schema(spec, "/v1/hooks/watcher"))
    good_grafana = grafana_payload((1, 0.97), (20, 0.5))
    good_watcher = watcher_payload((2, 0.99))
    grafana.validate(good_grafana)
    watcher.validate(good_watcher)
    watcher.validate(good_watcher["payload"])  # the bare search result is accepted too
    automation = token_for("automation")
    for path, body in (("/v1/hooks/grafana", good_grafana), ("/v1/hooks/watcher", good_watcher)):
        answer = client.post(path, json=body, headers=automation)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outcomes"], path
    # What the parsers refuse as a whole, the schema refuses too.
    assert not grafana.is_valid({"alerts": "not a list"})
    assert not grafana.is_valid({"receiver": "x"})
    assert not watcher.is_valid({"watch_id": "w"})
    bad_user = grafana_payload((1, 0.9))
    bad_user["alerts"][0]["labels"]["user_id"] = "1_6_4"
    assert not grafana.is_valid(bad_user)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/policy", "GET, PUT"),
        ("PUT", "/v1/tokens", "GET, POST"),
        ("GET", "/v1/hooks/grafana", "POST"),
        ("GET", "/v1/tokens/abc", "DELETE"),
        ("DELETE", "/admin/login", "GET, POST"),
        ("POST", "/admin/static/admin.css", "GET, HEAD"),
    ],
)
def test_a_405_names_every_method_the_path_serves(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    answer = client.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allow
    assert answer.json()["error"].endswith(f"use {allow}")
