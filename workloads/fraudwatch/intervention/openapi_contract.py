"""The service's OpenAPI contract beyond what FastAPI infers: the error answers every
operation really gives, each with the service's error body (see `context.error_body`), and
the permission an operation needs.

FastAPI documents only 200 and 422 (with a body the service never sends). Here the error
answers are derived in one place from what an operation declares, when the spec is built, so
a route or router mounted later is documented by the same rules:

* authenticated (it has a security requirement): 401; 403 unless every role holds its
  permission;
* any input (path, query, header or body): 422;
* a JSON body: 400 (not JSON), 413 (larger than server.max_body_bytes), 415 (not JSON);
* a path parameter (an account, transaction, approval or token id): 404;
* an `Idempotency-Key` header: 409;
* a group (tag) that reads the scored results, :data:`GROUP_ERRORS`: 503;
* `POST /v1/decisions` declares its 409 (tx_id decided for another body) and 503 (load
  shed) itself;
* what single operations answer beyond that, :data:`OPERATION_ERRORS`, or what a route
  declares itself (`responses=`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from fraudwatch.intervention.auth import PERMISSIONS, ROLES

ERROR_SCHEMA_NAME = "ErrorBody"
ERROR_REF = f"#/components/schemas/{ERROR_SCHEMA_NAME}"

#: The body of every error answer: `error_body(message, **extra)`.
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "description": "One line: what went wrong and what to do about it",
        },
        "problems": {
            "type": "array",
            "description": "Validation answers (400, 422): every problem of the request",
            "items": {
                "type": "object",
                "required": ["where", "problem"],
                "properties": {
                    "where": {"type": "string", "description": "e.g. body.reason, path.user_id"},
                    "problem": {"type": "string"},
                },
            },
        },
        "answer": {
            "type": "object",
            "description": "Hooks (422 when every alert was invalid): the per-alert outcomes",
        },
    },
}

#: What each error answer means, as the spec describes it.
ERROR_MEANINGS: dict[int, str] = {
    400: "The body is not valid JSON (or is nested too deeply): send a JSON object",
    401: "No bearer token, or it is unknown, revoked or expired (hooks: or the HMAC "
    "signature, timestamp or nonce is wrong)",
    403: "The caller's role lacks the permission this operation needs (the refusal is audited)",
    404: "Unknown subject: no such account, transaction, approval or token",
    409: "Conflict: a request with this Idempotency-Key is still running, the approval "
    "was already decided, or (decisions) the tx_id was already decided for another body",
    413: "The body is larger than server.max_body_bytes (hooks: hooks.max_body_bytes, or it "
    "carries more alerts than hooks.max_alerts)",
    415: "The body is not sent as application/json",
    422: "The request is well-formed JSON but invalid: the error names each problem",
    503: "Not available right now: the scored results cannot be read (Elasticsearch down "
    "or refusing), or (decisions) decisions.max_in_flight decisions are running: retry after "
    "the Retry-After seconds",
}

#: Errors every operation of a group (its tag) can answer beyond those its declaration
#: implies: these groups read the scored results.
GROUP_ERRORS: dict[str, frozenset[int]] = {
    "results": frozenset({503}),
    "interventions": frozenset({503}),
    "hooks": frozenset({413, 503}),
}

#: Errors of single operations that nothing in their declaration implies. (A route may also
#: declare `responses={404: {}}`: every declared error answer gets the error body.)
OPERATION_ERRORS: dict[tuple[str, str], frozenset[int]] = {
    ("post", "/v1/approvals/{approval_id}/{decision}"): frozenset({409}),
    # The account (and transaction) are named in the body; the results are read.
    ("post", "/v1/dispositions"): frozenset({404, 503}),
    ("get", "/v1/dispositions/queue"): frozenset({503}),
}

PERMISSION_KEY = "x-permission"


def document_contract(app: FastAPI) -> None:
    """Make `app.openapi()` return the spec with every operation's error answers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            add_error_answers(spec, route_permissions(app))
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way


def route_permissions(app: FastAPI) -> dict[tuple[str, str], str]:
    """(method, path) -> the permission an operation's dependencies check (a dependency
    with a `permission` attribute, see `api.PermissionCheck`)."""
    found: dict[tuple[str, str], str] = {}
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        permission = next(
            (
                p
                for p in (getattr(d.call, "permission", None) for d in _walk(route.dependant))
                if isinstance(p, str)
            ),
            None,
        )
        if permission is None:
            continue
        for method in route.methods or ():
            found[(method.lower(), route.path_format)] = permission
    return found


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    for child in dependant.dependencies:
        yield child
        yield from _walk(child)


def error_answers(
    method: str, path: str, operation: dict[str, Any], permission: str | None
) -> set[int]:
    """The error status codes one operation of the spec can answer."""
    codes = {int(c) for c in operation.get("responses", {}) if c.isdigit() and int(c) >= 400}
    if operation.get("security"):
        codes.add(401)
        if permission is None or set(ROLES) - PERMISSIONS.get(permission, frozenset()):
            codes.add(403)
    parameters = operation.get("parameters") or []
    body = operation.get("requestBody")
    if parameters or body:
        codes.add(422)
    if body and "application/json" in body.get("content", {}):
        codes |= {400, 413}
        if path.startswith("/v1/") and method in ("post", "put", "patch"):
            codes.add(415)
    if any(p.get("in") == "path" for p in parameters):
        codes.add(404)
    if any(
        p.get("in") == "header" and p.get("name", "").lower() == "idempotency-key"
        for p in parameters
    ):
        codes.add(409)
    for tag in operation.get("tags") or []:
        codes |= GROUP_ERRORS.get(tag, frozenset())
    codes |= OPERATION_ERRORS.get((method, path), frozenset())
    return codes


def add_error_answers(spec: dict[str, Any], permissions: dict[tuple[str, str], str]) -> None:
    """Document every operation's error answers with the error body, in place; drop
    FastAPI's own validation-error schemas, which no answer uses."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            permission = permissions.get((method, path)) or operation.get(PERMISSION_KEY)
            if permission:
                operation[PERMISSION_KEY] = permission
                holders = ", ".join(r for r in ROLES if r in PERMISSIONS.get(permission, ()))
                note = f"Needs permission `{permission}` (roles: {holders})."
                text = operation.get("description", "")
                if note not in text:
                    operation["description"] = f"{text}\n\n{note}".strip()
            responses = operation["responses"]
            for code in sorted(error_answers(method, path, operation, permission)):
                declared = responses.get(str(code), {}).get("description", "")
                responses[str(code)] = {
                    "description": ERROR_MEANINGS.get(code, declared or "Error"),
                    "content": {"application/json": {"schema": {"$ref": ERROR_REF}}},
                }
    _drop_unused(spec, ("HTTPValidationError", "ValidationError"))


def _drop_unused(spec: dict[str, Any], names: tuple[str, ...]) -> None:
    schemas = spec["components"]["schemas"]
    for name in names:
        ref = f"#/components/schemas/{name}"
        schemas_without = {k: v for k, v in schemas.items() if k != name}
        if not _refers(spec["paths"], ref) and not _refers(schemas_without, ref):
            schemas.pop(name, None)


def _refers(node: Any, ref: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == ref or any(_refers(v, ref) for v in node.values())
    if isinstance(node, list):
        return any(_refers(v, ref) for v in node)
    return False
