"""Idempotency-Key handling shared by every write route (interventions, dispositions): a
request runs once per (caller, key); a retry gets the first response back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from fraudwatch.intervention.auth import Principal
from fraudwatch.intervention.context import ApiError
from fraudwatch.intervention.stores import StateStore


def request_fingerprint(method: str, path: str, body: dict[str, Any]) -> str:
    """What an Idempotency-Key is bound to: the method, path and body of the request."""
    return hashlib.sha256(json.dumps([method, path, body], sort_keys=True).encode()).hexdigest()


def idempotent(
    store: StateStore,
    request: Request,
    principal: Principal,
    key: str | None,
    body: dict[str, Any],
    run: Callable[[], tuple[int, dict[str, Any]]],
) -> JSONResponse:
    """Run once per (caller, Idempotency-Key); a retry gets the first response back."""
    if not key:
        status, payload = run()
        return JSONResponse(payload, status_code=status)
    fingerprint = request_fingerprint(request.method, request.url.path, body)
    record = store.claim_idempotency(principal.actor, key, fingerprint)
    if record is not None:
        if record["fingerprint"] != fingerprint:
            raise ApiError(
                422,
                "Idempotency-Key was already used for a different request: "
                "use a new key for a new request",
            )
        if record["status"] != "done":
            raise ApiError(
                409, "a request with this Idempotency-Key is still running: retry shortly"
            )
        return JSONResponse(
            record["response"],
            status_code=record["status_code"],
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        status, payload = run()
    except BaseException:
        store.release_idempotency(principal.actor, key)
        raise
    store.complete_idempotency(principal.actor, key, status, payload)
    return JSONResponse(payload, status_code=status)
