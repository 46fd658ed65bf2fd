"""The intervention service's HTTP API (FastAPI): `/health`, `/metrics`, `/v1/...`, `/admin`.

Build it with :func:`create_app`; `fraudwatch serve` runs it under uvicorn.
"""

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import generate_latest
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from fraudwatch.intervention.alert_hooks import mount_hooks
from fraudwatch.intervention.auth import OidcVerifier, Principal
from fraudwatch.intervention.config import Settings
from fraudwatch.intervention.context import ServiceContext, error_body
from fraudwatch.intervention.guard import RequestGuard
from fraudwatch.intervention.interventions import AutomatedResponder
from fraudwatch.intervention.masking import MaskedRoute, Masker
from fraudwatch.intervention.openapi_contract import document_contract
from fraudwatch.intervention.policy import effective_policy
from fraudwatch.intervention.precision_metrics import PrecisionCollector
from fraudwatch.intervention.results import ResultsReader, ResultsUnavailable
from fraudwatch.intervention.routes.actions import mount_actions
from fraudwatch.intervention.routes.audit import mount_audit
from fraudwatch.intervention.routes.policy import mount_policy
from fraudwatch.intervention.routes.results import mount_results
from fraudwatch.intervention.routes.tokens import mount_tokens
from fraudwatch.intervention.stores import StateStore

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
    ctx = ServiceContext(settings, store, results, AutomatedResponder(store, results), oidc)
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

    for mount in (mount_results, mount_actions, mount_audit, mount_policy, mount_tokens):
        mount(app, ctx, require)
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
        hook_max_body_bytes=settings.hook_max_body_bytes,
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
