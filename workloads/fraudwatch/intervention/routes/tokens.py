"""Routes of the API tokens: create (shown once), list, revoke; each change audited."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which
# name `require`, a local of the mount function.
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path
from pydantic import BaseModel, ConfigDict, Field

from fraudwatch.intervention.audit import new_entry
from fraudwatch.intervention.auth import ROLES, Principal, create_token
from fraudwatch.intervention.context import ApiError, ServiceContext


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["viewer", "analyst", "admin", "automation", "decisions"]
    name: str = Field(default="", max_length=100)


def mount_tokens(
    app: FastAPI, ctx: ServiceContext, require: Callable[[str], Callable[..., Principal]]
) -> None:
    """`POST /v1/tokens`, `GET /v1/tokens`, `DELETE /v1/tokens/{id}`;
    `require` is the app's authentication-and-permission dependency."""
    store = ctx.store

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
