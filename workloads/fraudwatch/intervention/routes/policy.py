"""Routes of the automated-intervention policy and of the approvals queue the circuit breaker
fills."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations, which
# name `require`, a local of the mount function.
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path
from pydantic import BaseModel, ConfigDict, Field

from fraudwatch.intervention.audit import new_entry
from fraudwatch.intervention.auth import Principal
from fraudwatch.intervention.context import ApiError, ServiceContext
from fraudwatch.intervention.interventions import UnknownSubject, act, record_refusal
from fraudwatch.intervention.policy import effective_policy


class PolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step_up_at: float | None = Field(default=None, ge=0, le=1)
    lock_at: float | None = Field(default=None, ge=0, le=1)
    dry_run: bool | None = None
    max_automated_locks: int | None = Field(default=None, ge=0, le=1_000_000)
    window_seconds: int | None = Field(default=None, ge=1, le=30 * 86400)
    human_override_seconds: int | None = Field(default=None, ge=0, le=365 * 86400)
    reason: str = Field(min_length=1, max_length=1000)


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


def mount_policy(
    app: FastAPI, ctx: ServiceContext, require: Callable[[str], Callable[..., Principal]]
) -> None:
    """`GET|PUT /v1/policy`, `GET /v1/approvals`, `POST /v1/approvals/{id}/approve|reject`;
    `require` is the app's authentication-and-permission dependency."""
    store, settings = ctx.store, ctx.settings

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
            try:
                outcome = act(
                    store,
                    ctx.results,
                    principal,
                    item["action"],
                    int(item["subject_id"]),
                    reason,
                    item.get("alert_id"),
                    via="approval",
                )
            except UnknownSubject as unknown:
                # Results re-scored since the alert: the approval stands, nothing changed.
                raise ApiError(
                    404, f"{unknown}: approval {approval_id} is recorded, nothing was changed"
                ) from None
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


def policy_view(ctx: ServiceContext) -> dict[str, Any]:
    policy = effective_policy(ctx.settings.policy, ctx.store)
    is_open, count = ctx.responder.breaker_open(policy)
    view = asdict(policy)
    view["allow_list"] = sorted(policy.allow_list)
    view["circuit_breaker"] = {"open": is_open, "automated_locks_in_window": count}
    return view
