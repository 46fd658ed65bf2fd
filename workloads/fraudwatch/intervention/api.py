"""The intervention service's HTTP API (FastAPI): `/health`, `/metrics`, `/v1/...`, `/admin`.

Build it with :func:`create_app`; `fraudwatch serve` runs it under uvicorn.
"""

import json
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from fraudwatch.contract.events import MAX_ID
from fraudwatch.intervention.alert_hooks import mount_hooks
from fraudwatch.intervention.anomaly_list import list_anomalies
from fraudwatch.intervention.audit import new_entry, verify_store
from fraudwatch.intervention.auth import ROLES, OidcVerifier, Principal, create_token
from fraudwatch.intervention.config import Settings
from fraudwatch.intervention.context import ApiError, ServiceContext, error_body
from fraudwatch.intervention.guard import RequestGuard
from fraudwatch.intervention.idempotency import idempotent
from fraudwatch.intervention.interventions import AutomatedResponder, intervene, record_refusal
from fraudwatch.intervention.masking import MaskedRoute, Masker, record_view
from fraudwatch.intervention.openapi_contract import document_contract
from fraudwatch.intervention.policy import effective_policy
from fraudwatch.intervention.precision_metrics import PrecisionCollector
from fraudwatch.intervention.profiles import account_state, remember_profile
from fraudwatch.intervention.results import AnomalyFilter, ResultsReader, ResultsUnavailable
from fraudwatch.intervention.stores import StateStore


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
    human_override_seconds: int | None = Field(default=None, ge=0, le=365 * 86400)
    reason: str = Field(min_length=1, max_length=1000)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["viewer", "analyst", "admin", "automation", "decisions"]
    name: str = Field(default="", max_length=100)


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


bearer = HTTPBearer(auto_error=False, description="An API token or an OIDC access token")


class PermissionCheck:
    """The dependency of a route that needs a permission: the caller, authenticated (401)
    and permitted (403, audited). The spec reads `permission` (openapi_contract)."""

    def __init__(self, ctx: ServiceContext, permission: str) -> None:
        self.ctx = ctx
        self.permission = permission

    def __call__(
        self,
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        token = creds.credentials if creds and creds.scheme.lower() == "bearer" else None
        principal = self.ctx.authenticate(token)
        self.ctx.permit(principal, self.permission, f"{request.method} {request.url.path}")
        request.state.principal = principal  # whom MaskedRoute masks the response for
        return principal


def allowed_methods(request: Request, known: str = "") -> str:
    """The `Allow` header of a 405: every method some route of the path serves. Starlette
    names only the first route it matched (GET of `/v1/policy`, not PUT); `known` is what
    the raiser said (static files)."""
    methods = {m.strip().upper() for m in known.split(",") if m.strip()}
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods))


def create_app(settings: Settings, store: StateStore, results: ResultsReader) -> FastAPI:
    """The service with its state store and a results reader (Parquet or Elasticsearch)."""
    oidc = OidcVerifier(settings.oidc) if settings.oidc.enabled else None
    ctx = ServiceContext(settings, store, results, AutomatedResponder(store), oidc)
    app = FastAPI(
        title="fraudwatch intervention service",
        version="1",
        description="Act on anomalies: lock, block, step-up; audited. See docs/intervention.md",
        # The interactive pages are off unless server.api_docs is set; /openapi.json stays.
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    app.state.ctx = ctx
    # Measured alert precision, read from the store when /metrics is scraped (cached).
    app.state.precision_metrics = PrecisionCollector(store, results)
    ctx.registry.register(app.state.precision_metrics)
    # Personal data in every response is masked for its caller in one place (masking.py).
    app.state.masker = Masker.from_settings(settings)
    app.router.route_class = MaskedRoute

    # --- errors: always JSON, never a stack trace -----------------------------------
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such route: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            headers["Allow"] = allowed_methods(request, headers.pop("Allow", ""))
            message = (
                f"method {request.method} is not allowed on {request.url.path}: "
                f"use {headers['Allow']}"
            )
        return JSONResponse(
            error_body(message, **getattr(exc, "extra", {})),
            status_code=exc.status_code,
            headers=headers or None,
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
    def require(permission: str) -> PermissionCheck:
        return PermissionCheck(ctx, permission)

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
        principal: Annotated[Principal, Depends(require("results:read"))],
        user_id: Annotated[int, Path(ge=0, le=MAX_ID)],
    ) -> dict[str, Any]:
        user = results.user(user_id)
        if user is None:
            raise ApiError(404, f"unknown account {user_id}: no such user in the scored results")
        record_view(store, principal, user_id, f"user details: GET /v1/users/{user_id}")
        user["state"] = account_state(store, str(user_id))
        user["transactions"] = results.transactions_of(user_id)
        user["profile"] = remember_profile(store, user_id, user, user["transactions"])
        return user

    @app.get("/v1/users/{user_id}/interventions", tags=["results"])
    def user_history(
        principal: Annotated[Principal, Depends(require("history:read"))],
        user_id: Annotated[int, Path(ge=0, le=MAX_ID)],
    ) -> dict[str, Any]:
        if not results.user_exists(user_id):
            raise ApiError(404, f"unknown account {user_id}: no such user in the scored results")
        record_view(
            store,
            principal,
            user_id,
            f"intervention history: GET /v1/users/{user_id}/interventions",
        )
        entries = store.audit_entries(
            subject_kind="account", subject_id=str(user_id), newest_first=True, limit=500
        )
        return {"user_id": user_id, "state": account_state(store, str(user_id)), "items": entries}

    @app.get("/v1/transactions/{tx_id}", tags=["results"])
    def transaction_detail(
        principal: Annotated[Principal, Depends(require("results:read"))],
        tx_id: Annotated[int, Path(ge=0, le=MAX_ID)],
    ) -> dict[str, Any]:
        tx = results.transaction(tx_id)
        if tx is None:
            raise ApiError(404, f"unknown transaction {tx_id}: not in the scored results")
        record_view(
            store, principal, tx["user_id"], f"transaction {tx_id}: GET /v1/transactions/{tx_id}"
        )
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
        subject_kind: Literal["account", "transaction", "account_view"] | None = None,
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
        return asdict(verify_store(store))

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

    mount_hooks(app, ctx)

    from fraudwatch.intervention.admin import mount_admin
    from fraudwatch.intervention.decisions import mount_decisions
    from fraudwatch.intervention.dispositions import mount_dispositions

    mount_dispositions(app, ctx, require)
    mount_decisions(app, ctx, require)
    mount_admin(
        app,
        ctx,
        authenticate_token=ctx.authenticate,
    )
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        observe=lambda method, route, status, seconds: ctx.requests.labels(
            method, route, str(status)
        ).observe(seconds),
        trusted_proxies=settings.trusted_proxies,
        always_https=settings.always_https,
    )
    # Every operation's error answers, documented by one set of rules (401/403/404/409/
    # 413/422/503 with the error body): see openapi_contract.
    document_contract(app)
    return app


def policy_view(ctx: ServiceContext) -> dict[str, Any]:
    policy = effective_policy(ctx.settings.policy, ctx.store)
    is_open, count = ctx.responder.breaker_open(policy)
    view = asdict(policy)
    view["allow_list"] = sorted(policy.allow_list)
    view["circuit_breaker"] = {"open": is_open, "automated_locks_in_window": count}
    return view
