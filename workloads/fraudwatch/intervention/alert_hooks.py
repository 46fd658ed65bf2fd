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
    MAX_ALERT_ID,
    MAX_USER_ID,
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


# --- the hooks' contract in the OpenAPI spec ----------------------------------------------
# The handlers read the raw body (the HMAC covers its bytes), so FastAPI cannot infer these
# schemas: they are written here, beside the parsers (hooks.py) they describe. Alerts that
# do not fit are still answered per alert (`invalid`), not refused as a whole.
USER_ID_SCHEMA: dict[str, Any] = {
    "description": "The account: a whole number from 0 to 2^63-1, or those ASCII digits",
    "oneOf": [
        {"type": "integer", "minimum": 0, "maximum": MAX_USER_ID},
        {"type": "string", "pattern": "^[0-9]{1,19}$"},
    ],
}
SCORE_SCHEMA: dict[str, Any] = {
    "description": "The score the alert states, in [0, 1]: a hint, the service re-reads its own",
    "oneOf": [
        {"type": "number", "minimum": 0, "maximum": 1},
        {"type": "string", "pattern": "^(0(\\.[0-9]{1,17})?|1(\\.0{1,17})?)$"},
    ],
}
STAMP_SCHEMA: dict[str, Any] = {"type": "string", "maxLength": 64}

GRAFANA_SCHEMA: dict[str, Any] = {
    "title": "GrafanaNotification",
    "description": "Grafana alerting's webhook contact point payload. Each firing alert "
    "names its account in the `user_id` label; its score is the `ensemble_score` "
    "label/annotation, else `values.score`, else the only entry of `values`. Resolved "
    "alerts are answered `invalid` (undoing is a human decision). At most hooks.max_alerts "
    "alerts (413 beyond); the fingerprint and startsAt name one firing (a repeat is "
    "`no_change`).",
    "type": "object",
    "required": ["alerts"],
    "properties": {
        "receiver": {"type": "string"},
        "status": {"type": "string", "enum": ["firing", "resolved"]},
        "groupKey": {"type": "string"},
        "groupLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "commonLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "externalURL": {"type": "string"},
        "version": {"type": "string"},
        "alerts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["labels"],
                "properties": {
                    "status": {
                        "type": "string",
                        "enum": ["firing", "resolved"],
                        "default": "firing",
                    },
                    "labels": {
                        "type": "object",
                        "required": ["user_id"],
                        "properties": {
                            "user_id": USER_ID_SCHEMA,
                            "alertname": {"type": "string"},
                            "ensemble_score": SCORE_SCHEMA,
                        },
                    },
                    "annotations": {
                        "type": "object",
                        "properties": {
                            "summary": {"type": "string"},
                            "ensemble_score": SCORE_SCHEMA,
                        },
                    },
                    "values": {
                        "type": "object",
                        "description": "The rule's expressions by name: `score` (or the "
                        "only entry) is the score",
                        "properties": {"score": SCORE_SCHEMA},
                        "additionalProperties": {"type": "number"},
                    },
                    "fingerprint": {"type": "string", "minLength": 1, "maxLength": MAX_ALERT_ID},
                    "startsAt": {**STAMP_SCHEMA, "description": "RFC 3339 time stamp"},
                    "endsAt": STAMP_SCHEMA,
                    "generatorURL": {"type": "string"},
                },
            },
        },
    },
}

WATCHER_HIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_source"],
    "properties": {
        "_index": {"type": "string"},
        "_id": {"type": "string", "maxLength": 99},
        "_source": {
            "type": "object",
            "required": ["user_id"],
            "properties": {"user_id": USER_ID_SCHEMA, "ensemble_score": SCORE_SCHEMA},
        },
    },
}
SEARCH_HITS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["hits"],
    "properties": {
        "total": {"type": "object"},
        "hits": {"type": "array", "items": WATCHER_HIT_SCHEMA},
    },
}
WATCHER_SCHEMA: dict[str, Any] = {
    "title": "WatcherNotification",
    "description": "The body of an Elasticsearch Watcher webhook action: the watch's search "
    "result as `payload` (or the search result itself, with `hits` at the top). Every hit's "
    "`_source` names the account (`user_id`) and its `ensemble_score` (a hint). At most "
    "hooks.max_alerts hits (413 beyond); watch_id:_id and triggered_time name one firing.",
    "type": "object",
    "properties": {
        "watch_id": {"type": "string", "maxLength": 100},
        "triggered_time": STAMP_SCHEMA,
        "payload": {
            "type": "object",
            "required": ["hits"],
            "properties": {"hits": SEARCH_HITS_SCHEMA},
        },
        "hits": SEARCH_HITS_SCHEMA,
    },
    "anyOf": [{"required": ["payload"]}, {"required": ["hits"]}],
}

SIGNATURE_HEADERS: list[dict[str, Any]] = [
    {
        "name": "X-Fraudwatch-Signature",
        "in": "header",
        "required": False,
        "description": "Instead of a bearer token: `sha256=<hex HMAC-SHA256 of "
        "'<timestamp>.<nonce>.<raw body>' with hooks.hmac_secret>`",
        "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
    },
    {
        "name": TIMESTAMP_HEADER,
        "in": "header",
        "required": False,
        "description": "With a signature: Unix seconds, within hooks.replay_window_seconds",
        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
    },
    {
        "name": NONCE_HEADER,
        "in": "header",
        "required": False,
        "description": "With a signature: used once within the replay window",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,128}$"},
    },
]


def _hook_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        },
        "parameters": SIGNATURE_HEADERS,
        "security": [{"HTTPBearer": []}],
        "x-permission": "hooks:post",
    }


#: The OpenAPI of each hook (`openapi_extra`): its body, the signature headers, who may post.
HOOK_DOC: dict[str, dict[str, Any]] = {
    "grafana": _hook_doc(GRAFANA_SCHEMA),
    "watcher": _hook_doc(WATCHER_SCHEMA),
}


def mount_hooks(app: FastAPI, ctx: ServiceContext) -> None:
    async def hook(request: Request, source: str) -> dict[str, Any]:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        return await run_in_threadpool(process_hook, ctx, source, raw, headers)

    @app.post("/v1/hooks/grafana", tags=["hooks"], openapi_extra=HOOK_DOC["grafana"])
    async def grafana_hook(request: Request) -> dict[str, Any]:
        """Grafana alerting webhook contact point. Bearer token (automation or admin) or an
        `X-Fraudwatch-Signature: sha256=<hmac>` header."""
        return await hook(request, "grafana")

    @app.post("/v1/hooks/watcher", tags=["hooks"], openapi_extra=HOOK_DOC["watcher"])
    async def watcher_hook(request: Request) -> dict[str, Any]:
        """Elasticsearch Watcher webhook action body (see docs/intervention.md)."""
        return await hook(request, "watcher")
