"""The admin page: server-rendered HTML served by the same app, minimal JavaScript.

Sign-in exchanges an API token for a session cookie (HttpOnly, SameSite=Strict; the token
itself is never stored in the browser). Every form carries the session's CSRF token. Sessions
live in the state store (SQLite or MongoDB) under the SHA-256 of their id, so they survive a
restart and are shared by replicas; they expire after SESSION_SECONDS, and revoking the
token a session was opened with ends it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from fraudwatch.contract.events import MAX_ID
from fraudwatch.intervention.anomaly_list import list_anomalies
from fraudwatch.intervention.audit import now_iso
from fraudwatch.intervention.auth import Principal
from fraudwatch.intervention.dispositions import (
    LABEL_NAMES,
    LABELS,
    READ_PERMISSION,
    TX_ID_PATTERN,
    WRITE_PERMISSION,
    record_disposition,
    undisposed_flagged,
)
from fraudwatch.intervention.interventions import UnknownSubject, act
from fraudwatch.intervention.masking import record_view
from fraudwatch.intervention.profiles import account_state, remember_profile
from fraudwatch.intervention.results import AnomalyFilter
from fraudwatch.intervention.stores.repository import ACTION_EFFECTS, ACTION_LABELS

if TYPE_CHECKING:
    from collections.abc import Callable

    from fraudwatch.intervention.context import ServiceContext

HERE = Path(__file__).parent
SESSION_COOKIE = "fw_session"
LOGIN_COOKIE = "fw_login_csrf"
SESSION_SECONDS = 8 * 3600
LOGIN_ERRORS = {
    "unknown_token": "That token is unknown or revoked.",
    "role": "Your role cannot use the admin page (automation tokens are for alert hooks).",
}
#: The account actions the user page offers: read from the one table of actions.
ACTIONS = {
    action: ACTION_LABELS[action]
    for action, (kind, _field, _value) in ACTION_EFFECTS.items()
    if kind == "account"
}


@dataclass
class Session:
    principal: Principal
    csrf: str
    expires: float


def session_hash(session_id: str) -> str:
    """How a session id is stored: its SHA-256 (the id is 256 random bits), so whoever reads
    the state store cannot take over a session."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _chart_points(values: list[float], width: int, height: int) -> list[tuple[float, float]]:
    if not values:
        return []
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    return [
        (round(i * step, 1), round(height - (v - low) / span * height, 1))
        for i, v in enumerate(values)
    ]


def mount_admin(
    app: FastAPI, ctx: ServiceContext, authenticate_token: Callable[[str], Principal]
) -> None:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/admin/static", StaticFiles(directory=str(HERE / "static")), name="admin-static")
    store = ctx.store

    def session_of(request: Request) -> Session | None:
        sid = request.cookies.get(SESSION_COOKIE, "")
        if not sid or len(sid) > 200:
            return None
        record = store.get_session(session_hash(sid), time.time())
        if record is None:
            return None
        return Session(
            Principal(actor=record["actor"], role=record["role"]),
            record["csrf"],
            float(record["expires_at"]),
        )

    def check_csrf(session: Session, token: str) -> None:
        if not secrets.compare_digest(session.csrf, token or ""):
            raise HTTPException(403, "CSRF token missing or wrong: reload the page and retry")

    def page(request: Request, name: str, session: Session | None, **values: Any) -> Response:
        # Every page's values are masked for the signed-in role (masking.py), in one place.
        shown = request.app.state.masker.for_principal(
            session.principal if session else None, values
        )
        return templates.TemplateResponse(
            request,
            name,
            {"session": session, "csrf": session.csrf if session else "", **shown},
        )

    def signed_in(request: Request) -> Session | RedirectResponse:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/admin/login", status_code=303)
        return session

    @app.get("/admin/login", include_in_schema=False)
    def login_form(request: Request, error: str = "") -> Response:
        csrf = secrets.token_urlsafe(24)
        # Only our own messages are shown: the query names one, it never carries the text.
        message = LOGIN_ERRORS.get(error, "")
        response = page(request, "login.html", None, login_csrf=csrf, error=message)
        response.set_cookie(
            LOGIN_COOKIE,
            csrf,
            httponly=True,
            samesite="strict",
            secure=ctx.settings.always_https or request.url.scheme == "https",
            path="/admin",
        )
        return response

    @app.post("/admin/login", include_in_schema=False)
    def login(
        request: Request, token: str = Form(max_length=4096), csrf: str = Form(max_length=100)
    ) -> Response:
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not secrets.compare_digest(expected, csrf):
            raise HTTPException(403, "CSRF token missing or wrong: reload the sign-in page")
        try:
            principal = authenticate_token(token.strip())
        except HTTPException:
            return RedirectResponse(
                "/admin/login?" + urlencode({"error": "unknown_token"}),
                status_code=303,
            )
        if not principal.may("results:read"):
            return RedirectResponse(
                "/admin/login?" + urlencode({"error": "role"}),
                status_code=303,
            )
        sid = secrets.token_urlsafe(32)
        now = time.time()
        # A session ends with its credential: an OIDC token's expiry caps it.
        expires = now + SESSION_SECONDS
        if principal.expires_at is not None:
            expires = min(expires, principal.expires_at)
        store.create_session(
            session_hash(sid),
            {
                "actor": principal.actor,
                "role": principal.role,
                "csrf": secrets.token_urlsafe(32),
                "expires_at": expires,
                "created_at": now_iso(),
            },
        )
        response = RedirectResponse("/admin", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            sid,
            httponly=True,
            samesite="strict",
            secure=ctx.settings.always_https or request.url.scheme == "https",
            path="/",
            max_age=max(int(expires - now), 0),
        )
        response.delete_cookie(LOGIN_COOKIE, path="/admin")
        return response

    @app.post("/admin/logout", include_in_schema=False)
    def logout(request: Request, csrf: str = Form(max_length=100)) -> Response:
        session = session_of(request)
        if session is not None:
            check_csrf(session, csrf)
            store.delete_session(session_hash(request.cookies.get(SESSION_COOKIE, "")))
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/admin", include_in_schema=False, response_class=HTMLResponse)
    def anomalies_page(request: Request) -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        q = request.query_params
        errors: list[str] = []

        def number(name: str, cast: type, low: float, high: float) -> Any:
            raw = q.get(name, "").strip()
            if not raw:
                return None
            try:
                value = cast(raw)
            except ValueError:
                value = None
            if value is None or not low <= value <= high:
                errors.append(f"{name} must be between {low:g} and {high:g}")
                return None
            return value

        flt = AnomalyFilter(
            score_min=number("score_min", float, 0, 1),
            score_max=number("score_max", float, 0, 1),
            persona=q.get("persona") or None,
            scenario=q.get("scenario") or None,
            hour=number("hour", int, 0, 23),
            tx_type=q.get("type") or None,
            country=q.get("country") or None,
        )
        status = q.get("status") or None
        if status not in (None, "open", "locked", "step_up"):
            errors.append("status must be open, locked or step_up")
            status = None
        page_no = number("page", int, 1, 100_000) or 1
        listing = list_anomalies(ctx, flt, "users", status, page_no, 50)
        return page(
            request,
            "anomalies.html",
            session,
            listing=listing,
            q=dict(q),
            facets=ctx.results.facets(),
            errors=errors,
            next_query=urlencode({**q, "page": page_no + 1}),
            prev_query=urlencode({**q, "page": max(page_no - 1, 1)}),
        )

    @app.get("/admin/users/{user_id}", include_in_schema=False, response_class=HTMLResponse)
    def user_page(request: Request, user_id: int) -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        user = ctx.results.user(user_id) if 0 <= user_id < 2**63 else None
        if user is None:
            raise HTTPException(404, f"unknown account {user_id}")
        txs = ctx.results.transactions_of(user_id)
        remember_profile(ctx.store, user_id, user, txs)
        record_view(
            ctx.store,
            session.principal,
            user_id,
            f"admin user page: GET /admin/users/{user_id}",
            via="admin",
        )
        chronological = list(reversed(txs))
        amounts = [float(t["amount"] or 0) for t in chronological]
        scores = [float(t["ensemble_score"] or 0) for t in chronological]
        history = ctx.store.audit_entries(
            subject_kind="account", subject_id=str(user_id), newest_first=True, limit=100
        )
        return page(
            request,
            "user.html",
            session,
            user=user,
            txs=txs[:50],
            state=account_state(ctx.store, str(user_id)),
            history=history,
            amount_points=_chart_points(amounts, 600, 120),
            score_points=_chart_points(scores, 600, 120),
            amount_range=(min(amounts, default=0), max(amounts, default=0)),
            actions=ACTIONS,
            can_act=session.principal.may("interventions:write"),
            masked=not request.app.state.masker.sees_full_values(session.principal),
            labels={label: LABEL_NAMES[label] for label in LABELS},
            can_label=session.principal.may(WRITE_PERMISSION),
            dispositions=ctx.store.dispositions(user_id=user_id, limit=100)[0],
        )

    @app.post("/admin/users/{user_id}/actions/{action}", include_in_schema=False)
    def user_action(
        request: Request,
        user_id: Annotated[int, FastApiPath(ge=0, le=MAX_ID)],
        action: str,
        reason: str = Form(min_length=1, max_length=1000),
        csrf: str = Form(max_length=100),
    ) -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        check_csrf(session, csrf)
        if action not in ACTIONS:
            raise HTTPException(404, f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
        # The same rules as the API: a refusal is audited, an unknown account too.
        principal = session.principal
        ctx.permit(principal, "interventions:write", f"POST {request.url.path}", via="admin")
        try:
            outcome = act(
                ctx.store, ctx.results, principal, action, user_id, reason.strip(), via="admin"
            )
        except UnknownSubject as unknown:
            raise HTTPException(404, str(unknown)) from None
        ctx.count(action, outcome.result, "admin")
        return RedirectResponse(f"/admin/users/{user_id}?done={action}", status_code=303)

    @app.get("/admin/audit", include_in_schema=False, response_class=HTMLResponse)
    def audit_page(request: Request) -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        ctx.permit(session.principal, "audit:read", "GET /admin/audit", via="admin")
        entries = ctx.store.audit_entries(newest_first=True, limit=200)
        return page(request, "audit.html", session, entries=entries)

    @app.post("/admin/users/{user_id}/dispositions", include_in_schema=False)
    def user_disposition(
        request: Request,
        user_id: Annotated[int, FastApiPath(ge=0, le=MAX_ID)],
        label: str = Form(max_length=20),
        reason: str = Form(min_length=1, max_length=1000),
        tx_id: str = Form(default="", max_length=19),
        csrf: str = Form(max_length=100),
    ) -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        check_csrf(session, csrf)
        # The same rules as POST /v1/dispositions: a refusal is audited, an unknown account too.
        principal = session.principal
        ctx.permit(principal, WRITE_PERMISSION, f"POST {request.url.path}", via="admin")
        tx = tx_id.strip() or None
        if tx is not None and not re.fullmatch(TX_ID_PATTERN, tx):
            raise HTTPException(422, f"transaction id {tx!r} is not a number: leave it empty")
        if not reason.strip():
            raise HTTPException(422, "a reason is required: say why, in words")
        record_disposition(ctx, principal, user_id, label, reason.strip(), tx, via="admin")
        return RedirectResponse(f"/admin/users/{user_id}?done=disposition", status_code=303)

    @app.get("/admin/queue", include_in_schema=False, response_class=HTMLResponse)
    def queue_page(
        request: Request, page_no: int = Query(1, alias="page", ge=1, le=100_000)
    ) -> Response:
        session = signed_in(request)
        if isinstance(session, RedirectResponse):
            return session
        ctx.permit(session.principal, READ_PERMISSION, "GET /admin/queue", via="admin")
        listing = undisposed_flagged(ctx, page_no, 50)
        return page(request, "queue.html", session, listing=listing)
