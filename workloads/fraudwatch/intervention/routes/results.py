"""Routes of the scored results: the anomaly list, a user (with history and the
intervention history), a transaction. Reads only; every view of a customer is audited."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which
# name `require`, a local of the mount function.
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query
from fastapi.responses import JSONResponse

from fraudwatch.contract.events import MAX_ID
from fraudwatch.intervention.anomaly_list import list_anomalies
from fraudwatch.intervention.auth import Principal
from fraudwatch.intervention.context import ApiError, ServiceContext
from fraudwatch.intervention.masking import record_view
from fraudwatch.intervention.profiles import account_state, remember_profile
from fraudwatch.intervention.results import AnomalyFilter


def mount_results(
    app: FastAPI, ctx: ServiceContext, require: Callable[[str], Callable[..., Principal]]
) -> None:
    """`GET /v1/anomalies`, `/v1/users/{id}`, `/v1/users/{id}/interventions`,
    `/v1/transactions/{id}`;
    `require` is the app's authentication-and-permission dependency."""
    store, results = ctx.store, ctx.results

    # The busiest read: its page goes out as JSON as built (plain values only), not through
    # FastAPI's per-value encoder, which cost more than the whole lookup (docs/intervention.md).
    @app.get("/v1/anomalies", tags=["results"], response_model=dict[str, Any])
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
    ) -> JSONResponse:
        answer = list_anomalies(
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
        return JSONResponse(answer)

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
