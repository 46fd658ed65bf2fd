"""What every route of the service shares: settings, state store, results reader, metrics,
and who is calling (authentication and permission checks, refusals audited)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException

from fraudwatch.intervention.audit import new_entry
from fraudwatch.intervention.auth import OidcVerifier, Principal, principal_from_token
from fraudwatch.intervention.config import Settings
from fraudwatch.intervention.interventions import AutomatedResponder
from fraudwatch.intervention.results import ResultsReader
from fraudwatch.intervention.stores import StateStore


class ApiError(HTTPException):
    """An HTTP error whose detail is the one-line message the client sees; `extra` fields
    go into the JSON body beside `error`."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status_code, detail, headers)
        self.extra = extra


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

    # --- who is calling -----------------------------------------------------------------
    def authenticate(self, token: str | None) -> Principal:
        """The caller a bearer token names; 401 when there is none or it is not valid."""
        if not token:
            raise ApiError(
                401,
                "authentication required: send 'Authorization: Bearer <token>' "
                "(create one with `fraudwatch tokens create --role ROLE`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = principal_from_token(self.store, token) if len(token) < 200 else None
        if principal is None and self.oidc is not None and token.count(".") == 2:
            principal = self.oidc.principal(token)
        if principal is None:
            raise ApiError(
                401,
                "the bearer token is unknown, revoked or expired",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal

    def permit(self, principal: Principal, permission: str, action: str, via: str = "api") -> None:
        """403 (audited) unless the caller's role holds the permission."""
        if principal.may(permission):
            return
        self.store.append_audit(
            new_entry(
                actor=principal.actor,
                role=principal.role,
                via=via,
                action=action,
                result="denied",
                detail=f"role {principal.role} lacks {permission}",
            )
        )
        raise ApiError(
            403, f"role {principal.role!r} may not do this (needs permission {permission})"
        )


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, else None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
