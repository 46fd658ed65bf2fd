"""Routes of the interventions: lock, unlock, step-up, clear step-up (accounts), block and
release (transactions), each through `interventions.act` and Idempotency-Key."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which
# name `require`, a local of the mount function.
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fraudwatch.contract.events import MAX_ID
from fraudwatch.intervention.auth import Principal
from fraudwatch.intervention.context import ApiError, ServiceContext
from fraudwatch.intervention.idempotency import idempotent
from fraudwatch.intervention.interventions import UnknownSubject, act


class InterventionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="Why, in words")
    alert_id: str | None = Field(
        default=None, max_length=200, description="The alert that caused it, if any"
    )


def mount_actions(
    app: FastAPI, ctx: ServiceContext, require: Callable[[str], Callable[..., Principal]]
) -> None:
    """`POST /v1/accounts/{id}/lock|unlock|step-up|step-up/clear` and
    `POST /v1/transactions/{id}/block|release`;
    `require` is the app's authentication-and-permission dependency."""
    store, results = ctx.store, ctx.results

    def act_on(
        request: Request,
        principal: Principal,
        action: str,
        subject_id: int,
        body: InterventionRequest,
        idempotency_key: str | None,
    ) -> JSONResponse:
        def run() -> tuple[int, dict[str, Any]]:
            try:
                outcome = act(
                    store, results, principal, action, subject_id, body.reason, body.alert_id
                )
            except UnknownSubject as unknown:
                raise ApiError(404, str(unknown)) from None
            ctx.count(action, outcome.result, "api")
            payload = outcome.as_dict()
            payload["state"] = store.get_state(outcome.subject_kind, str(subject_id))
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
            return act_on(request, principal, action, subject_id, body, idempotency_key)

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
