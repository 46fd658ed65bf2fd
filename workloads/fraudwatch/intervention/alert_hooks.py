"""The alert webhooks, `POST /v1/hooks/grafana` and `/v1/hooks/watcher`.

A batch is checked and acted on in a worker thread (the state store and the results reader
block), so the event loop keeps answering `/health` and every other route while a large
batch is processed. A batch has at most `hooks.max_alerts` alerts (413 beyond that).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from fraudwatch.intervention.auth import (
    NONCE_HEADER,
    TIMESTAMP_HEADER,
    Principal,
    verify_signature,
)
from fraudwatch.intervention.config import PolicySettings
from fraudwatch.intervention.context import ApiError, ServiceContext, bearer_token
from fraudwatch.intervention.hooks import (
    AlertSignal,
    InvalidAlert,
    PayloadError,
    parse_grafana,
    parse_watcher,
)
from fraudwatch.intervention.interventions import record_refusal
from fraudwatch.intervention.policy import effective_policy
from fraudwatch.intervention.profiles import remember_profile

PARSERS: dict[str, Callable[[Any], list[AlertSignal | InvalidAlert]]] = {
    "grafana": parse_grafana,
    "watcher": parse_watcher,
}


def count_alerts(source: str, body: Any) -> int:
    """How many alerts a payload carries, before any of them is looked at."""
    if not isinstance(body, dict):
        return 0
    if source == "grafana":
        alerts = body.get("alerts")
        return len(alerts) if isinstance(alerts, list) else 0
    result = body.get("payload", body)
    hits = result.get("hits") if isinstance(result, dict) else None
    if isinstance(hits, dict):
        hits = hits.get("hits")
    return len(hits) if isinstance(hits, list) else 0


def signed_caller(
    ctx: ServiceContext, source: str, raw: bytes, headers: dict[str, str]
) -> Principal:
    """The automation caller of an HMAC-signed hook: the signature covers timestamp, nonce
    and body; the timestamp must be within hooks.replay_window_seconds of now and the nonce
    unused in that window (nonces are kept in the state store, shared by replicas)."""
    settings = ctx.settings
    window = settings.hook_replay_window_seconds
    stamp = headers.get(TIMESTAMP_HEADER.lower(), "")
    nonce = headers.get(NONCE_HEADER.lower(), "")
    if not stamp or not nonce:
        raise ApiError(
            401,
            f"a signed hook needs {TIMESTAMP_HEADER} (Unix seconds) and {NONCE_HEADER} "
            "(16-128 random URL-safe characters), both covered by the signature",
        )
    if not verify_signature(
        settings.hook_secret, stamp, nonce, raw, headers["x-fraudwatch-signature"]
    ):
        raise ApiError(
            401,
            "hook signature does not match: sign '<timestamp>.<nonce>.<raw body>' with "
            "HMAC-SHA256 and hooks.hmac_secret",
        )
    now = time.time()
    sent = int(stamp)
    if abs(now - sent) > window:
        raise ApiError(
            401,
            f"hook timestamp {stamp} is more than {window}s from the service's clock: "
            "sign with the current time (and check the sender's clock)",
        )
    if not ctx.store.remember_once(f"nonce:{nonce}", sent + window, now):
        raise ApiError(401, "hook nonce was already used: a replayed request is refused")
    return Principal(actor=f"hmac:{source}", role="automation")


def process_hook(
    ctx: ServiceContext, source: str, raw: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    """Authenticate, parse and act on one webhook body (runs in a worker thread)."""
    settings = ctx.settings
    if headers.get("x-fraudwatch-signature"):
        principal = signed_caller(ctx, source, raw, headers)
    else:
        principal = ctx.authenticate(bearer_token(headers.get("authorization", "")))
        ctx.permit(principal, "hooks:post", f"POST /v1/hooks/{source}")
    via = f"hook:{source}"
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "request body is not valid JSON: send a JSON object") from None
    except RecursionError:
        raise ApiError(
            400, "request body is nested too deeply: send the documented payload"
        ) from None
    received = count_alerts(source, body)
    if received > settings.hook_max_alerts:
        raise ApiError(
            413,
            f"{source} payload carries {received} alerts, more than hooks.max_alerts = "
            f"{settings.hook_max_alerts}: split the notification (Grafana: group by user_id)",
        )
    try:
        parsed = PARSERS[source](body)
    except PayloadError as err:
        record_refusal(
            ctx.store,
            principal,
            "none",
            "",
            "",
            str(err),
            reason=f"{source} payload",
            via=via,
            result="invalid",
        )
        raise ApiError(422, f"{source} payload: {err}") from None
    policy = effective_policy(settings.policy, ctx.store)
    outcomes = [act_on_alert(ctx, item, principal, via, policy) for item in parsed]
    answer = {"source": source, "dry_run": policy.dry_run, "outcomes": outcomes}
    invalid = [o for o in outcomes if o["result"] == "invalid"]
    if outcomes and len(invalid) == len(outcomes):
        raise ApiError(422, f"{source} payload: {invalid[0]['detail']}", answer=answer)
    return answer


def act_on_alert(
    ctx: ServiceContext,
    item: AlertSignal | InvalidAlert,
    principal: Principal,
    via: str,
    policy: PolicySettings,
) -> dict[str, Any]:
    """One alert of a batch: its outcome, always with an audit entry; a bad alert is
    `invalid` and does not stop the others."""
    if isinstance(item, InvalidAlert):
        outcome = record_refusal(
            ctx.store,
            principal,
            "none",
            "account",
            item.user_id,
            item.problem,
            reason=f"alert #{item.index} of the batch",
            alert_id=item.alert_id or None,
            via=via,
            result="invalid",
        )
        ctx.count("none", "invalid", via)
        user_id = int(item.user_id) if item.user_id.isascii() and item.user_id.isdigit() else None
        return {
            "index": item.index,
            "user_id": user_id,
            "alert_id": item.alert_id,
            **outcome.as_dict(),
        }
    dedupe = dedupe_key(via, item)
    if dedupe and not ctx.store.remember_once(
        dedupe, time.time() + ctx.settings.hook_dedupe_seconds
    ):
        outcome = record_refusal(
            ctx.store,
            principal,
            "none",
            "account",
            str(item.user_id),
            f"duplicate: alert {item.alert_id} firing since {item.started_at} was already "
            "handled; nothing done again",
            reason=item.summary,
            alert_id=item.alert_id,
            via=via,
            result="no_change",
        )
        ctx.count("none", "no_change", via)
        return {
            "index": item.index,
            "user_id": item.user_id,
            "alert_id": item.alert_id,
            **outcome.as_dict(),
        }
    try:
        return act_on_signal(ctx, item, principal, via, policy)
    except BaseException:
        if dedupe:
            ctx.store.forget(dedupe)  # not handled: a redelivery may act
        raise


def dedupe_key(via: str, item: AlertSignal) -> str:
    """One firing of one alert: its id (Grafana fingerprint, Watcher watch:hit) and when it
    started firing. Alerts without a start time are not deduplicated."""
    if not item.started_at:
        return ""
    digest = hashlib.sha256(f"{via}\x00{item.alert_id}\x00{item.started_at}".encode()).hexdigest()
    return f"alert:{digest}"


def act_on_signal(
    ctx: ServiceContext,
    item: AlertSignal,
    principal: Principal,
    via: str,
    policy: PolicySettings,
) -> dict[str, Any]:
    # The score that counts is the one in our own results; the alert's is only a hint.
    user = ctx.results.user(item.user_id)
    score = (user.get("scores") or {}).get("ensemble_score") if user is not None else None
    outcome = ctx.responder.handle(item, principal, via, policy, user is not None, score)
    if user is not None:
        remember_profile(ctx.store, item.user_id, user)
    ctx.count(outcome.action, outcome.result, via)
    return {
        "index": item.index,
        "user_id": item.user_id,
        "score": score,
        "alert_score": item.score,
        "alert_id": item.alert_id,
        **outcome.as_dict(),
    }


HOOK_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    "security": [{"HTTPBearer": []}],
}


def mount_hooks(app: FastAPI, ctx: ServiceContext) -> None:
    async def hook(request: Request, source: str) -> dict[str, Any]:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        return await run_in_threadpool(process_hook, ctx, source, raw, headers)

    @app.post("/v1/hooks/grafana", tags=["hooks"], openapi_extra=HOOK_DOC)
    async def grafana_hook(request: Request) -> dict[str, Any]:
        """Grafana alerting webhook contact point. Bearer token (automation or admin) or an
        `X-Fraudwatch-Signature: sha256=<hmac>` header."""
        return await hook(request, "grafana")

    @app.post("/v1/hooks/watcher", tags=["hooks"], openapi_extra=HOOK_DOC)
    async def watcher_hook(request: Request) -> dict[str, Any]:
        """Elasticsearch Watcher webhook action body (see docs/intervention.md)."""
        return await hook(request, "watcher")
