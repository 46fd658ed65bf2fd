"""Routes of the audit log: read it, verify the chain."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which
# name `require`, a local of the mount function.
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query

from fraudwatch.contract.events import MAX_ID
from fraudwatch.intervention.audit import verify_store
from fraudwatch.intervention.auth import Principal
from fraudwatch.intervention.context import ServiceContext


def mount_audit(
    app: FastAPI, ctx: ServiceContext, require: Callable[[str], Callable[..., Principal]]
) -> None:
    """`GET /v1/audit` and `GET /v1/audit/verify`;
    `require` is the app's authentication-and-permission dependency."""
    store = ctx.store

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
