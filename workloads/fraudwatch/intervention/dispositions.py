"""Dispositions: an analyst's verdict on an account (fraud, legitimate, unsure) with a reason,
stored in the state store and written to the audit chain (issue 16, item 1).

A disposition names the model version of the scored results the service served when it was
made, so it can later label that version's alerts (retraining and measured precision, issue
16 items 2-4, are planned). :func:`record_disposition` is the one place a disposition is
made: the API (`POST /v1/dispositions`) and the admin page both call it.
"""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fraudwatch.contract.events import MAX_ID
from fraudwatch.errors import UserError
from fraudwatch.intervention.audit import new_entry
from fraudwatch.intervention.auth import Principal
from fraudwatch.intervention.context import ApiError, ServiceContext
from fraudwatch.intervention.idempotency import idempotent
from fraudwatch.intervention.interventions import record_refusal
from fraudwatch.intervention.results import AnomalyFilter, ResultsReader

Label = Literal["fraud", "legitimate", "unsure"]
#: The verdicts an analyst can give, in the order the admin page offers them.
LABELS: tuple[str, ...] = get_args(Label)
#: How the admin page names each verdict.
LABEL_NAMES = {"fraud": "Fraud", "legitimate": "Legitimate", "unsure": "Unsure"}
#: Who may record a disposition, and who may read them (the roles of auth.PERMISSIONS).
WRITE_PERMISSION = "interventions:write"
READ_PERMISSION = "results:read"
#: A transaction id as the results name it (an unsigned 63-bit integer, as text).
TX_ID_PATTERN = r"^[0-9]{1,19}$"


class DispositionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int = Field(strict=True, ge=0, le=MAX_ID, description="The account judged")
    tx_id: str | None = Field(
        default=None,
        pattern=TX_ID_PATTERN,
        description="One of the account's transactions the verdict is about, if any (text)",
    )
    label: Label = Field(description="fraud, legitimate or unsure")
    reason: str = Field(min_length=1, max_length=1000, description="Why, in words")


def served_model_version(results: ResultsReader) -> str | None:
    """The model version of the scored results the service serves: the run an Elasticsearch
    reader reads, or `run.json` of a scored directory; None when it cannot be told."""
    version = getattr(results, "model_version", None)
    if callable(version):
        return str(version())
    scored_dir = getattr(results, "dir", None)
    if scored_dir is None:
        return None
    from fraudwatch.contract.scored_directory import open_scored

    try:
        return open_scored(scored_dir).model_version
    except UserError:
        return None


def record_disposition(
    ctx: ServiceContext,
    principal: Principal,
    user_id: int,
    label: str,
    reason: str,
    tx_id: str | None = None,
    via: str = "api",
) -> dict[str, Any]:
    """Record one disposition and its audit entry (the caller has checked the permission).
    An account not in the results, or a transaction that is not the account's, is a 404
    with an audit entry; a label that is not one of LABELS a 422."""
    if label not in LABELS:
        raise ApiError(422, f"unknown label {label!r}: use one of {', '.join(LABELS)}")
    subject = str(user_id)
    if not ctx.results.user_exists(user_id):
        record_refusal(
            ctx.store,
            principal,
            "disposition",
            "account",
            subject,
            "unknown account",
            reason=reason,
            via=via,
        )
        raise ApiError(404, f"unknown account {user_id}: not in the scored results")
    if tx_id is not None:
        tx = ctx.results.transaction(int(tx_id)) if int(tx_id) <= MAX_ID else None
        if tx is None or tx.get("user_id") != user_id:
            record_refusal(
                ctx.store,
                principal,
                "disposition",
                "account",
                subject,
                f"transaction {tx_id} is not one of this account's",
                reason=reason,
                via=via,
            )
            raise ApiError(
                404, f"unknown transaction {tx_id} of account {user_id}: not in the scored results"
            )
    model_version = served_model_version(ctx.results)
    disposition_id = uuid.uuid4().hex
    detail = f"disposition {disposition_id}: label {label}" + (f", tx {tx_id}" if tx_id else "")
    detail += f", model version {model_version or 'unknown'}"
    entry = new_entry(
        actor=principal.actor,
        role=principal.role,
        via=via,
        action="disposition",
        subject_kind="account",
        subject_id=subject,
        reason=reason,
        result="recorded",
        detail=detail,
    )
    return ctx.store.record_disposition(
        entry,
        {
            "id": disposition_id,
            "ts": entry["ts"],
            "actor": entry["actor"],
            "role": entry["role"],
            "via": via,
            "user_id": user_id,
            "tx_id": tx_id,
            "label": label,
            "reason": entry["reason"],
            "model_version": model_version,
        },
    )


def undisposed_flagged(ctx: ServiceContext, page: int, page_size: int) -> dict[str, Any]:
    """The queue: flagged users of the results without a disposition yet, highest score first."""
    done = [str(u) for u in ctx.store.users_with_disposition()]
    items, total = ctx.results.anomalies(
        AnomalyFilter(flagged=True),
        level="users",
        offset=(page - 1) * page_size,
        limit=page_size,
        exclude_ids=done,
    )
    return {"page": page, "page_size": page_size, "total": total, "items": items}


def _utc(value: datetime | None) -> datetime | None:
    """A query's time in UTC (a time without a zone is taken as UTC)."""
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise ApiError(
            422, f"invalid request: time {value.isoformat()} is out of range in UTC"
        ) from None


def mount_dispositions(
    app: FastAPI, ctx: ServiceContext, require: Callable[[str], Callable[..., Principal]]
) -> None:
    """`POST /v1/dispositions`, `GET /v1/dispositions` and `GET /v1/dispositions/queue`;
    `require` is the app's authentication-and-permission dependency."""

    @app.post("/v1/dispositions", tags=["dispositions"], status_code=201)
    def create_disposition(
        request: Request,
        principal: Annotated[Principal, Depends(require(WRITE_PERMISSION))],
        body: DispositionRequest,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                max_length=200,
                description="Retries with the same key return the first answer, recording once",
            ),
        ] = None,
    ) -> JSONResponse:
        def run() -> tuple[int, dict[str, Any]]:
            stored = record_disposition(
                ctx, principal, body.user_id, body.label, body.reason, body.tx_id
            )
            return 201, stored

        return idempotent(ctx.store, request, principal, idempotency_key, body.model_dump(), run)

    @app.get("/v1/dispositions", tags=["dispositions"])
    def list_dispositions(
        _: Annotated[Principal, Depends(require(READ_PERMISSION))],
        user_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
        label: Label | None = None,
        since: Annotated[
            datetime | None, Query(description="ISO 8601 time, inclusive; no zone means UTC")
        ] = None,
        until: Annotated[
            datetime | None, Query(description="ISO 8601 time, inclusive; no zone means UTC")
        ] = None,
        model_version: Annotated[str | None, Query(max_length=200)] = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        start, end = _utc(since), _utc(until)
        if start is not None and end is not None and start > end:
            raise ApiError(
                422, f"since ({start.isoformat()}) is after until ({end.isoformat()}): swap them"
            )
        items, total = ctx.store.dispositions(
            user_id=user_id,
            label=label,
            since=start.isoformat() if start else None,
            until=end.isoformat() if end else None,
            model_version=model_version,
            offset=(page - 1) * page_size,
            limit=page_size,
        )
        return {"page": page, "page_size": page_size, "total": total, "items": items}

    @app.get("/v1/dispositions/queue", tags=["dispositions"])
    def disposition_queue(
        _: Annotated[Principal, Depends(require(READ_PERMISSION))],
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        return undisposed_flagged(ctx, page, page_size)
