"""The intervention service's HTTP API (FastAPI): `/health`, `/metrics`, `/v1/...`, `/admin`.

Build it with :func:`create_app`; `fraudwatch serve` runs it under uvicorn.
"""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudwatch.intervention.audit import new_entry, verify_chain
from fraudwatch.intervention.auth import (
    ROLES,
    OidcVerifier,
    Principal,
    create_token,
    principal_from_token,
    verify_signature,
)
from fraudwatch.intervention.config import Settings
from fraudwatch.intervention.hooks import PayloadError, parse_grafana, parse_watcher
from fraudwatch.intervention.interventions import AutomatedResponder, intervene, record_refusal
from fraudwatch.intervention.policy import effective_policy
from fraudwatch.intervention.results import AnomalyFilter, ResultsReader, ResultsUnavailable
from fraudwatch.intervention.stores import StateStore

MAX_ID = 2**63 - 1
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class ApiError(HTTPException):
    """An HTTP error whose detail is the one-line message the client sees."""


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}


@dataclass
class ServiceContext:
    settings: Settings
    store: StateStore
    results: ResultsReader
    responder: AutomatedResponder
    oidc: OidcVerifier | None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Histogram(
            "fraudwatch_http_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.actions = Counter(
            "fraudwatch_interventions_total",
            "Interventions by action, result and channel",
            ["action", "result", "via"],
            registry=self.registry,
        )
        # Read from the store at scrape time, so every replica reports the shared state.
        self.breaker_open = Gauge(
            "fraudwatch_circuit_breaker_open",
            "1 while automated locks are queued for approval (the circuit breaker is open)",
            registry=self.registry,
        )
        self.automated_locks = Gauge(
            "fraudwatch_automated_locks_in_window",
            "Locks applied by alert hooks within the circuit breaker's window",
            registry=self.registry,
        )

    def count(self, action: str, result: str, via: str) -> None:
        self.actions.labels(action, result, via).inc()


# --- ASGI guards: body size, content type, security headers ------------------------------
class RequestGuard:
    """Rejects oversized bodies (413) and non-JSON bodies on the JSON API (415) before any
    route runs, and adds the security headers to every response."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        observe: Callable[[str, str, int, float], None] | None = None,
    ) -> None:
        self.app = app
        self.max = max_body_bytes
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]
        try:
            await self._guarded(scope, receive, send, status)
        finally:
            if self.observe is not None:
                route = getattr(scope.get("route"), "path", "unmatched")
                self.observe(scope["method"], route, status[0], time.perf_counter() - start)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, status: list[int]) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                if scope["path"].startswith("/admin"):
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        async def reject(status: int, message: str) -> None:
            body = json.dumps(error_body(message)).encode()
            await send_secured(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_secured({"type": "http.response.body", "body": body})

        length = headers.get("content-length", "")
        if length and (not length.isdigit() or int(length) > self.max):
            await reject(413, f"request body larger than {self.max} bytes: send less")
            return
        method = scope["method"]
        if method in ("POST", "PUT", "PATCH") and scope["path"].startswith("/v1/"):
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            has_body = bool(length and int(length) > 0) or "transfer-encoding" in headers
            if has_body and ctype != "application/json":
                await reject(
                    415,
                    f"content type {ctype or '(none)'!r} is not accepted: "
                    "send the body as application/json",
                )
                return
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            # Read the whole (bounded) body here, so an oversized chunked upload is refused
            # before any route sees it, then hand the route a receive that replays it.
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # client went away
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max:
                    await reject(413, f"request body larger than {self.max} bytes: send less")
                    return
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_secured)
            return
        await self.app(scope, receive, send_secured)


# --- request/response models -----------------------------------------------------------
class InterventionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="Why, in words")
    alert_id: str | None = Field(
        default=None, max_length=200, description="The alert that caused it, if any"
    )


class PolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step_up_at: float | None = Field(default=None, ge=0, le=1)
    lock_at: float | None = Field(default=None, ge=0, le=1)
    dry_run: bool | None = None
    max_automated_locks: int | None = Field(default=None, ge=0, le=1_000_000)
    window_seconds: int | None = Field(default=None, ge=1, le=30 * 86400)
    reason: str = Field(min_length=1, max_length=1000)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["viewer", "analyst", "admin", "automation"]
    name: str = Field(default="", max_length=100)


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


bearer = HTTPBearer(auto_error=False, description="An API token or an OIDC access token")


def create_app(settings: Settings, store: StateStore, results: ResultsReader) -> FastAPI:
    """The service with its state store and a results reader (Parquet or Elasticsearch)."""
    oidc = OidcVerifier(settings.oidc) if settings.oidc.enabled else None
    ctx = ServiceContext(settings, store, results, AutomatedResponder(store), oidc)
    app = FastAPI(
        title="fraudwatch intervention service",
        version="1",
        description="Act on anomalies: lock, block, step-up; audited. See docs/intervention.md",
    )
    app.state.ctx = ctx

    # --- errors: always JSON, never a stack trace -----------------------------------
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such route: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return JSONResponse(
            error_body(message), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", "")}
            for err in exc.errors()
        ]
        malformed = any(err.get("type") == "json_invalid" for err in exc.errors())
        first = problems[0] if problems else {"where": "request", "problem": "invalid"}
        message = (
            "request body is not valid JSON: send a JSON object"
            if malformed
            else f"invalid request: {first['where']}: {first['problem']}"
        )
        return JSONResponse(
            error_body(message, problems=problems), status_code=400 if malformed else 422
        )

    @app.exception_handler(ResultsUnavailable)
    async def unavailable(request: Request, exc: ResultsUnavailable) -> JSONResponse:
        return JSONResponse(error_body(str(exc)), status_code=503, headers={"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body("internal error: see the service log"), status_code=500)

    # --- who is calling ---------------------------------------------------------------
    def authenticate(request: Request, creds: HTTPAuthorizationCredentials | None) -> Principal:
        if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
            raise ApiError(
                401,
                "authentication required: send 'Authorization: Bearer <token>' "
                "(create one with `fraudwatch tokens create --role ROLE`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        token = creds.credentials
        principal = principal_from_token(store, token) if len(token) < 200 else None
        if principal is None and ctx.oidc is not None and token.count(".") == 2:
            principal = ctx.oidc.principal(token)
        if principal is None:
            raise ApiError(
                401,
                "the bearer token is unknown, revoked or expired",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal

    def require(permission: str) -> Callable[..., Principal]:
        def dependency(
            request: Request,
            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> Principal:
            principal = authenticate(request, creds)
            if not principal.may(permission):
                store.append_audit(
                    new_entry(
                        actor=principal.actor,
                        role=principal.role,
                        via="api",
                        action=f"{request.method} {request.url.path}",
                        result="denied",
                        detail=f"role {principal.role} lacks {permission}",
                    )
                )
                raise ApiError(
                    403, f"role {principal.role!r} may not do this (needs permission {permission})"
                )
            return principal

        return dependency

    # --- open routes --------------------------------------------------------------------
    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    def metrics(_: Annotated[Principal, Depends(require("metrics:read"))]) -> PlainTextResponse:
        is_open, count = ctx.responder.breaker_open(
            effective_policy(ctx.settings.policy, ctx.store)
        )
        ctx.breaker_open.set(1 if is_open else 0)
        ctx.automated_locks.set(count)
        return PlainTextResponse(
            generate_latest(ctx.registry).decode(), media_type="text/plain; version=0.0.4"
        )

    # --- results --------------------------------------------------------------------------
    @app.get("/v1/anomalies", tags=["results"])
    def anomalies(
        _: Annotated[Principal, Depends(require("results:read"))],
        level: Literal["users", "transactions"] = "users",
        score_min: Annotated[float | None, Query(ge=0, le=1)] = None,
        score_max: Annotated[float | None, Query(ge=0, le=1)] = None,
        persona: Annotated[str | None, Query(max_length=100)] = None,
        scenario: Annotated[str | None, Query(max_length=100)] = None,
        hour: Annotated[int | None, Query(ge=0, le=23)] = None,
        type: Annotated[str | None, Query(max_length=50, description="transaction type")] = None,
        country: Annotated[str | None, Query(max_length=10)] = None,
        status: Annotated[
            Literal["open", "locked", "step_up", "blocked"] | None,
            Query(description="intervention status: open (none), locked, step_up, blocked"),
        ] = None,
        flagged: bool | None = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        return list_anomalies(
            ctx,
            AnomalyFilter(
                score_min,
                score_max,
                persona,
                scenario,
                hour,
                type,
                country,
                flagged,
            ),
            level,
            status,
            page,
            page_size,
        )

    @app.get("/v1/users/{user_id}", tags=["results"])
    def user_detail(
        _: Annotated[Principal, Depends(require("results:read"))],
        user_id: Annotated[int, Path(ge=0, le=MAX_ID)],
    ) -> dict[str, Any]:
        user = results.user(user_id)
        if user is None:
            raise ApiError(404, f"unknown account {user_id}: no such user in the scored results")
        user["state"] = account_state(store, str(user_id))
        user["transactions"] = results.transactions_of(user_id)
        user["profile"] = remember_profile(store, user_id, user, user["transactions"])
        return user

    @app.get("/v1/users/{user_id}/interventions", tags=["results"])
    def user_history(
        _: Annotated[Principal, Depends(require("history:read"))],
        user_id: Annotated[int, Path(ge=0, le=MAX_ID)],
    ) -> dict[str, Any]:
        if not results.user_exists(user_id):
            raise ApiError(404, f"unknown account {user_id}: no such user in the scored results")
        entries = store.audit_entries(
            subject_kind="account", subject_id=str(user_id), newest_first=True, limit=500
        )
        return {"user_id": user_id, "state": account_state(store, str(user_id)), "items": entries}

    @app.get("/v1/transactions/{tx_id}", tags=["results"])
    def transaction_detail(
        _: Annotated[Principal, Depends(require("results:read"))],
        tx_id: Annotated[int, Path(ge=0, le=MAX_ID)],
    ) -> dict[str, Any]:
        tx = results.transaction(tx_id)
        if tx is None:
            raise ApiError(404, f"unknown transaction {tx_id}: not in the scored results")
        tx["blocked"] = store.get_state("transaction", str(tx_id)).get("blocked", False)
        return tx

    # --- interventions ----------------------------------------------------------------
    def act(
        request: Request,
        principal: Principal,
        action: str,
        subject_id: int,
        body: InterventionRequest,
        idempotency_key: str | None,
    ) -> JSONResponse:
        kind = "transaction" if action in ("block", "release") else "account"
        user = results.user(subject_id) if kind == "account" else None
        if kind == "account":
            exists = user is not None
        else:
            exists = results.transaction(subject_id) is not None
        if not exists:
            record_refusal(
                store,
                principal,
                action,
                kind,
                str(subject_id),
                f"unknown {kind}",
                reason=body.reason,
                alert_id=body.alert_id,
            )
            noun = "account" if kind == "account" else "transaction"
            raise ApiError(404, f"unknown {noun} {subject_id}: not in the scored results")

        def run() -> tuple[int, dict[str, Any]]:
            outcome = intervene(
                store, principal, action, str(subject_id), body.reason, body.alert_id
            )
            ctx.count(action, outcome.result, "api")
            payload = outcome.as_dict()
            payload["state"] = store.get_state(kind, str(subject_id))
            if user is not None:
                remember_profile(store, subject_id, user)
            return 200, payload

        return idempotent(store, request, principal, idempotency_key, body.model_dump(), run)

    IdemKey = Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Retries with the same key return the first answer, acting once",
        ),
    ]

    def make_action_route(action: str, path: str, kind_param: str) -> None:
        def route(
            request: Request,
            principal: Annotated[Principal, Depends(require("interventions:write"))],
            subject_id: Annotated[int, Path(alias=kind_param, ge=0, le=MAX_ID)],
            body: InterventionRequest,
            idempotency_key: IdemKey = None,
        ) -> JSONResponse:
            return act(request, principal, action, subject_id, body, idempotency_key)

        route.__name__ = f"{action}_{kind_param.removesuffix('_id')}"
        app.post(
            path,
            tags=["interventions"],
            name=route.__name__,
            summary=f"{action.replace('_', ' ')} ({path.split('/')[2]})",
        )(route)

    for action, path, param in (
        ("lock", "/v1/accounts/{user_id}/lock", "user_id"),
        ("unlock", "/v1/accounts/{user_id}/unlock", "user_id"),
        ("step_up", "/v1/accounts/{user_id}/step-up", "user_id"),
        ("clear_step_up", "/v1/accounts/{user_id}/step-up/clear", "user_id"),
        ("block", "/v1/transactions/{tx_id}/block", "tx_id"),
        ("release", "/v1/transactions/{tx_id}/release", "tx_id"),
    ):
        make_action_route(action, path, param)

    # --- audit --------------------------------------------------------------------------
    @app.get("/v1/audit", tags=["audit"])
    def audit_log(
        _: Annotated[Principal, Depends(require("audit:read"))],
        subject_kind: Literal["account", "transaction"] | None = None,
        subject_id: Annotated[str | None, Query(max_length=40)] = None,
        after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        order: Literal["newest", "oldest"] = "newest",
    ) -> dict[str, Any]:
        items = store.audit_entries(
            subject_kind=subject_kind,
            subject_id=subject_id,
            after_seq=after,
            limit=limit,
            newest_first=order == "newest",
        )
        return {"items": items, "head": store.audit_head()}

    @app.get("/v1/audit/verify", tags=["audit"])
    def audit_verify(_: Annotated[Principal, Depends(require("audit:verify"))]) -> dict[str, Any]:
        return asdict(verify_chain(store.audit_entries(), store.audit_head()))

    # --- policy and approvals -----------------------------------------------------------
    @app.get("/v1/policy", tags=["policy"])
    def get_policy(_: Annotated[Principal, Depends(require("policy:read"))]) -> dict[str, Any]:
        return policy_view(ctx)

    @app.put("/v1/policy", tags=["policy"])
    def put_policy(
        principal: Annotated[Principal, Depends(require("policy:write"))], body: PolicyUpdate
    ) -> dict[str, Any]:
        changes = {k: v for k, v in body.model_dump(exclude={"reason"}).items() if v is not None}
        merged = {**(store.get_setting("policy") or {}), **changes}
        current = effective_policy(settings.policy, store)
        step_up = merged.get("step_up_at", current.step_up_at)
        lock = merged.get("lock_at", current.lock_at)
        if lock < step_up:
            raise ApiError(422, f"lock_at {lock} is below step_up_at {step_up}: raise lock_at")
        store.put_setting("policy", merged)
        store.append_audit(
            new_entry(
                actor=principal.actor,
                role=principal.role,
                via="api",
                action="policy_change",
                reason=body.reason,
                result="applied",
                detail=json.dumps(changes, sort_keys=True),
            )
        )
        return policy_view(ctx)

    @app.get("/v1/approvals", tags=["policy"])
    def approvals(
        _: Annotated[Principal, Depends(require("approvals:write"))],
        status: Literal["pending", "approved", "rejected"] = "pending",
    ) -> dict[str, Any]:
        return {"items": store.list_approvals(status)}

    @app.post("/v1/approvals/{approval_id}/{decision}", tags=["policy"])
    def decide_approval(
        principal: Annotated[Principal, Depends(require("approvals:write"))],
        approval_id: Annotated[str, Path(max_length=64)],
        decision: Literal["approve", "reject"],
        body: ApprovalDecision,
    ) -> dict[str, Any]:
        item = store.get_approval(approval_id)
        if item is None:
            raise ApiError(404, f"unknown approval {approval_id}: list them at /v1/approvals")
        status = "approved" if decision == "approve" else "rejected"
        if not store.resolve_approval(approval_id, status, principal.actor):
            raise ApiError(409, f"approval {approval_id} was already {item['status']}")
        reason = f"{body.reason} (approval {approval_id}: {item['reason']})"
        if status == "approved":
            outcome = intervene(
                store,
                principal,
                item["action"],
                item["subject_id"],
                reason,
                item.get("alert_id"),
                via="approval",
            )
        else:
            outcome = record_refusal(
                store,
                principal,
                item["action"],
                item["subject_kind"],
                item["subject_id"],
                f"queued action rejected (approval {approval_id})",
                reason=body.reason,
                alert_id=item.get("alert_id"),
                via="approval",
                result="rejected",
            )
        return {"approval_id": approval_id, "status": status, **outcome.as_dict()}

    # --- tokens -------------------------------------------------------------------------
    @app.post("/v1/tokens", tags=["tokens"], status_code=201)
    def new_token(
        principal: Annotated[Principal, Depends(require("tokens:manage"))], body: TokenRequest
    ) -> dict[str, Any]:
        token, record = create_token(store, body.role, body.name)
        store.append_audit(
            new_entry(
                actor=principal.actor,
                role=principal.role,
                via="api",
                action="token_create",
                subject_kind="token",
                subject_id=record["token_id"],
                result="applied",
                detail=f"role {body.role}",
            )
        )
        return {
            "token": token,
            "token_id": record["token_id"],
            "role": body.role,
            "note": "shown once: store it now",
        }

    @app.get("/v1/tokens", tags=["tokens"])
    def tokens(_: Annotated[Principal, Depends(require("tokens:manage"))]) -> dict[str, Any]:
        return {"items": store.list_tokens(), "roles": list(ROLES)}

    @app.delete("/v1/tokens/{token_id}", tags=["tokens"])
    def revoke(
        principal: Annotated[Principal, Depends(require("tokens:manage"))],
        token_id: Annotated[str, Path(max_length=64)],
    ) -> dict[str, Any]:
        if not store.revoke_token(token_id):
            raise ApiError(404, f"unknown or already revoked token {token_id}")
        store.append_audit(
            new_entry(
                actor=principal.actor,
                role=principal.role,
                via="api",
                action="token_revoke",
                subject_kind="token",
                subject_id=token_id,
                result="applied",
            )
        )
        return {"token_id": token_id, "revoked": True}

    # --- alert hooks ----------------------------------------------------------------------
    async def hook(
        request: Request, source: str, parse: Callable[[Any], list[Any]]
    ) -> dict[str, Any]:
        raw = await request.body()
        signature = request.headers.get("x-fraudwatch-signature", "")
        if signature:
            if not verify_signature(settings.hook_secret, raw, signature):
                raise ApiError(
                    401,
                    "hook signature does not match: sign the raw body with "
                    "HMAC-SHA256 and hooks.hmac_secret",
                )
            principal = Principal(actor=f"hmac:{source}", role="automation")
        else:
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            creds = (
                HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
                if auth
                else None
            )
            principal = require("hooks:post")(request, creds)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(400, "request body is not valid JSON: send a JSON object") from None
        try:
            signals = parse(body)
        except PayloadError as err:
            raise ApiError(422, f"{source} payload: {err}") from None
        policy = effective_policy(settings.policy, store)
        outcomes = []
        for signal in signals:
            user = results.user(signal.user_id)
            outcome = ctx.responder.handle(
                signal, principal, f"hook:{source}", policy, user is not None
            )
            if user is not None:
                remember_profile(store, signal.user_id, user)
            ctx.count(outcome.action, outcome.result, f"hook:{source}")
            outcomes.append(
                {
                    "user_id": signal.user_id,
                    "score": signal.score,
                    "alert_id": signal.alert_id,
                    **outcome.as_dict(),
                }
            )
        return {"source": source, "dry_run": policy.dry_run, "outcomes": outcomes}

    hook_doc = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "security": [{"HTTPBearer": []}],
    }

    @app.post("/v1/hooks/grafana", tags=["hooks"], openapi_extra=hook_doc)
    async def grafana_hook(request: Request) -> dict[str, Any]:
        """Grafana alerting webhook contact point. Bearer token (automation or admin) or an
        `X-Fraudwatch-Signature: sha256=<hmac>` header."""
        return await hook(request, "grafana", parse_grafana)

    @app.post("/v1/hooks/watcher", tags=["hooks"], openapi_extra=hook_doc)
    async def watcher_hook(request: Request) -> dict[str, Any]:
        """Elasticsearch Watcher webhook action body (see docs/intervention.md)."""
        return await hook(request, "watcher", parse_watcher)

    from fraudwatch.intervention.admin import mount_admin

    mount_admin(
        app,
        ctx,
        authenticate_token=lambda token: authenticate(
            None,  # type: ignore[arg-type]
            HTTPAuthorizationCredentials(scheme="Bearer", credentials=token),
        ),
    )
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        observe=lambda method, route, status, seconds: ctx.requests.labels(
            method, route, str(status)
        ).observe(seconds),
    )
    return app


def remember_profile(
    store: StateStore,
    user_id: int,
    user: dict[str, Any] | None = None,
    transactions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Keep the user's profile in the state store up to date with what the results say:
    persona, and last seen = the newest transaction (lists are newest first)."""
    last_seen = transactions[0].get("ts") if transactions else None
    try:
        return store.touch_profile(
            str(user_id),
            persona=(user or {}).get("persona"),
            last_seen=str(last_seen) if last_seen else None,
        )
    except ValueError:  # a time the results hold in another form: keep the rest
        return store.touch_profile(str(user_id), persona=(user or {}).get("persona"))


def account_state(store: StateStore, user_id: str) -> dict[str, bool]:
    state = store.get_state("account", user_id)
    return {"locked": state.get("locked", False), "step_up": state.get("step_up", False)}


def policy_view(ctx: ServiceContext) -> dict[str, Any]:
    policy = effective_policy(ctx.settings.policy, ctx.store)
    is_open, count = ctx.responder.breaker_open(policy)
    view = asdict(policy)
    view["allow_list"] = sorted(policy.allow_list)
    view["circuit_breaker"] = {"open": is_open, "automated_locks_in_window": count}
    return view


def list_anomalies(
    ctx: ServiceContext,
    flt: AnomalyFilter,
    level: str,
    status: str | None,
    page: int,
    page_size: int,
) -> dict[str, Any]:
    store = ctx.store
    include: list[str] | None = None
    exclude: list[str] | None = None
    if level == "users":
        locked = set(store.subjects_with("account", "locked"))
        step_up = set(store.subjects_with("account", "step_up"))
        if status == "locked":
            include = sorted(locked)
        elif status == "step_up":
            include = sorted(step_up)
        elif status == "open":
            exclude = sorted(locked | step_up)
        elif status == "blocked":
            include = []
    else:
        blocked = set(store.subjects_with("transaction", "blocked"))
        if status == "blocked":
            include = sorted(blocked)
        elif status == "open":
            exclude = sorted(blocked)
        elif status in ("locked", "step_up"):
            include = []
    items, total = ctx.results.anomalies(
        flt,
        level=level,
        offset=(page - 1) * page_size,
        limit=page_size,
        include_ids=include,
        exclude_ids=exclude,
    )
    for item in items:
        if level == "users":
            item["state"] = account_state(store, str(item["user_id"]))
        else:
            item["blocked"] = store.get_state("transaction", str(item["tx_id"])).get(
                "blocked", False
            )
    return {"level": level, "page": page, "page_size": page_size, "total": total, "items": items}


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
    fingerprint = hashlib.sha256(
        json.dumps([request.method, request.url.path, body], sort_keys=True).encode()
    ).hexdigest()
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
