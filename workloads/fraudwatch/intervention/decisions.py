"""Inline decisions: `POST /v1/decisions` answers allow, step_up or block for one transaction
before the payment system authorises it (issue 19; docs/intervention.md "Inline decisions").

* The body is one event of the `transactions` topic (`streaming.schemas.TransactionV1`, the
  schema the stream validates with).
* The score is the stream's: `streaming.job.score_transactions` with the registry's promoted
  model version and the user's kept history (`streaming.user_history.UserHistory`), so the
  same transaction with the same history scores the same inline and in the stream.
* The decision is the intervention policy's (`policy.decide` with the effective policy's
  step_up_at / lock_at); :data:`DECISION_OF_ACTION` is the one map from its action to the
  answer.
* Safe default: no promoted model, a model or history that fails, or a spent time budget
  answer `decisions.fallback` with `fallback: true` and the reason, counted in
  `fraudwatch_decision_fallbacks_total`.
* Overload: at most `decisions.max_in_flight` decisions run at once; one more is answered
  503 with Retry-After at once (never queued).
* Idempotent by tx_id: the answer is recorded in the state store, and a retry of the same
  transaction gets it back (the history took the transaction once).
"""

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, Field

from fraudwatch.contract.events import MAX_ID
from fraudwatch.intervention.audit import now_iso
from fraudwatch.intervention.auth import Principal
from fraudwatch.intervention.config import DecisionSettings, PolicySettings
from fraudwatch.intervention.context import ApiError, ServiceContext
from fraudwatch.intervention.policy import decide, effective_policy
from fraudwatch.intervention.stores import StateStore
from fraudwatch.streaming.schemas import TransactionV1

log = logging.getLogger(__name__)

#: The permission of `POST /v1/decisions` (auth.PERMISSIONS: the decisions role and admin).
PERMISSION = "decisions:post"
#: Who may list the recorded decisions (`GET /v1/decisions`): whoever reads the results.
READ_PERMISSION = "results:read"
#: The one map from the intervention policy's action for a score to the inline answer:
#: lock_at and above blocks the transaction, step_up_at and above asks for step-up.
DECISION_OF_ACTION: dict[str | None, str] = {"lock": "block", "step_up": "step_up", None: "allow"}
#: Seconds a shed caller is asked to wait (Retry-After of the 503).
RETRY_AFTER_SECONDS = 1
#: How often (seconds) recording a decision also prunes those past decisions.retention_days.
PRUNE_EVERY_SECONDS = 3600
#: A fallback's reason names what failed; the details (paths, errors) go to the service log.
SEE_LOG = ": see the service log"


class DecisionAnswer(BaseModel):
    """The answer of `POST /v1/decisions` (documented in the OpenAPI spec)."""

    tx_id: int
    user_id: int
    decision: str = Field(description="allow, step_up or block")
    score: float | None = Field(
        description="The calibrated ensemble score of the promoted model version; null when "
        "no score was computed (fallback)"
    )
    reasons: list[str] = Field(description="The features that stood out, most unusual first")
    model_version: str | None
    thresholds: dict[str, float] = Field(
        description="The effective policy's step_up_at and lock_at the score was held to"
    )
    fallback: bool = Field(description="True: this is decisions.fallback, not the score's")
    fallback_reason: str | None = Field(description="Why the fallback was answered")
    decided_at: str


def decision_for(score: float, policy: PolicySettings) -> str:
    """allow, step_up or block for a score, by the intervention policy's thresholds."""
    return DECISION_OF_ACTION[decide(score, policy)]


def event_fingerprint(body: TransactionV1) -> str:
    """What a tx_id's recorded answer is bound to: the transaction event, canonically."""
    document = json.dumps(body.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()


@dataclass
class Verdict:
    """What scoring one transaction gave: a score (or None) and, if it cannot be trusted,
    why (`cause` is the metric label, `reason` the words of the answer)."""

    score: float | None = None
    reasons: list[str] = field(default_factory=list)
    model_version: str | None = None
    cause: str | None = None
    reason: str | None = None

    def fall_back(self, cause: str, reason: str) -> None:
        if self.cause is None:
            self.cause, self.reason = cause, reason


class PromotedModel:
    """The registry's promoted model version, re-read on every decision and loaded again
    only when the promotion changed (as the stream's `current_version` does)."""

    def __init__(self, settings: DecisionSettings) -> None:
        from fraudwatch.models.registry import ModelRegistry

        self.registry = ModelRegistry(settings.registry)
        self.root = settings.registry
        self._version: Any = None

    def current(self) -> Any:
        """The promoted ModelVersion, or None when nothing is promoted; raises when the
        promoted version cannot be loaded."""
        promoted = self.registry.promoted()
        if promoted is None:
            return None
        if self._version is None or self._version.version != promoted:
            from fraudwatch.models.bundle import ModelVersion

            version = ModelVersion.load(self.registry.path(promoted))
            if "transactions" not in version.levels:
                raise ValueError(f"model version {promoted} has no transaction-level models")
            self._version = version
        return self._version


class DecisionEngine:
    """Scores transactions one at a time against the service's own user history, within a
    time budget and a bound on concurrent decisions; counts outcomes in Prometheus."""

    def __init__(self, settings: DecisionSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.model = PromotedModel(settings)
        self._history: Any = None
        #: One decision scores at a time: the history's DuckDB connection is not shared
        #: between threads, and a decision's read and update of it must not interleave.
        self.scoring = threading.Lock()
        self._slots = threading.BoundedSemaphore(settings.max_in_flight)
        self._next_prune = 0.0
        self._said_no_model = False
        self.decisions = Counter(
            "fraudwatch_decisions_total",
            "Inline decisions by answer and whether it was the fallback",
            ["decision", "fallback"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "fraudwatch_decision_fallbacks_total",
            "Inline decisions answered with decisions.fallback, by cause "
            "(no_model, model_error, state_error, scoring_error, budget)",
            ["cause"],
            registry=registry,
        )
        self.shed = Counter(
            "fraudwatch_decisions_shed_total",
            "Inline decisions refused with 503 because decisions.max_in_flight were running",
            registry=registry,
        )
        self.in_flight = Gauge(
            "fraudwatch_decisions_in_flight", "Inline decisions running now", registry=registry
        )

    # --- admission ------------------------------------------------------------------------
    @contextmanager
    def admitted(self) -> Iterator[None]:
        """A slot for one decision, or a 503 with Retry-After at once when all are taken."""
        if not self._slots.acquire(blocking=False):
            self.shed.inc()
            raise ApiError(
                503,
                f"too many decisions in flight (decisions.max_in_flight = "
                f"{self.settings.max_in_flight}): retry after {RETRY_AFTER_SECONDS} s",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self.in_flight.inc()
        try:
            yield
        finally:
            self.in_flight.dec()
            self._slots.release()

    # --- scoring --------------------------------------------------------------------------
    def history(self) -> Any:
        """The users' kept transactions (opened on first use, under `scoring`)."""
        if self._history is None:
            from fraudwatch.streaming.job import RAW_TRANSACTION_SCHEMA
            from fraudwatch.streaming.user_history import UserHistory

            self._history = UserHistory(
                self.settings.history_path, RAW_TRANSACTION_SCHEMA, self.settings.history_per_user
            )
        return self._history

    def score(self, table: Any, deadline: float) -> Verdict:
        """Score one transaction (the stream's one-row table, see `event_table`) with the
        stream's function, then add it to its user's history; a Verdict with the fallback
        cause when that was not possible or the deadline (time.monotonic) passed."""
        from fraudwatch.streaming.job import score_transactions

        verdict = Verdict()
        budget = f"the time budget of {self.settings.budget_ms} ms (decisions.budget_ms)"
        if not self.scoring.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            verdict.fall_back("budget", f"{budget} ran out waiting for the scorer")
            return verdict
        try:
            try:
                history = self.history()
            except Exception:
                log.exception("decisions: the user history cannot be opened")
                verdict.fall_back("state_error", f"the user history is unavailable{SEE_LOG}")
                return verdict
            try:
                version = self.model.current()
            except Exception:
                log.exception("decisions: the promoted model version cannot be loaded")
                version = None
                verdict.fall_back("model_error", f"the promoted model cannot be loaded{SEE_LOG}")
            if version is None:
                if not self._said_no_model:  # once, not per payment: the metric counts them
                    log.warning("decisions: no model version is promoted in %s", self.model.root)
                    self._said_no_model = True
                verdict.fall_back(
                    "no_model", "no model version is promoted in the registry (decisions.registry)"
                )
            else:
                self._said_no_model = False
                verdict.model_version = version.version
                try:
                    scored = score_transactions(version, table, history)
                    score = float(scored["ensemble_score"][0].as_py())
                    if not math.isfinite(score):
                        raise ValueError(f"the ensemble score is {score}, not a number in [0, 1]")
                    verdict.score = score
                    text = scored["reasons"][0].as_py()
                    verdict.reasons = text.split("; ") if text else []
                except Exception:
                    log.exception("decisions: scoring failed")
                    verdict.fall_back("scoring_error", f"scoring failed{SEE_LOG}")
            try:
                # Last, as in the stream: a retry of this tx_id reads the same history (the
                # history never gives a transaction back as its own past).
                history.remember(table)
            except Exception:
                log.exception("decisions: the user history cannot be updated")
                verdict.fall_back("state_error", f"the user history cannot be updated{SEE_LOG}")
        finally:
            self.scoring.release()
        if verdict.cause is None and time.monotonic() > deadline:
            verdict.fall_back("budget", f"{budget} ran out while scoring")
        return verdict

    # --- outcome --------------------------------------------------------------------------
    def counted(self, answer: dict[str, Any], cause: str | None) -> None:
        self.decisions.labels(answer["decision"], "true" if answer["fallback"] else "false").inc()
        if cause is not None:
            self.fallbacks.labels(cause).inc()

    def prune(self, store: StateStore) -> None:
        """Drop decisions older than decisions.retention_days, at most once an hour."""
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY_SECONDS
        cut = datetime.now(UTC) - timedelta(days=self.settings.retention_days)
        try:
            store.prune_decisions(cut.isoformat(timespec="microseconds"))
        except Exception:
            log.exception("decisions: pruning old decisions failed (retried in an hour)")

    def close(self) -> None:
        with self.scoring:
            if self._history is not None:
                self._history.close()
                self._history = None


def event_table(body: TransactionV1) -> Any:
    """The event as the stream's one-row table; 422 for what the schema lets through but a
    64-bit column, a UTC timestamp or a model cannot take."""
    from fraudwatch.streaming.job import transaction_table

    for name in ("tx_id", "user_id"):
        if getattr(body, name) > MAX_ID:
            raise ApiError(422, f"invalid request: body.{name}: must be at most {MAX_ID}")
    if not math.isfinite(body.amount):
        raise ApiError(422, "invalid request: body.amount: must be a finite number")
    try:
        body.ts.astimezone(UTC)
    except OverflowError:
        raise ApiError(
            422, "invalid request: body.ts: out of range once converted to UTC"
        ) from None
    return transaction_table([body.model_dump(mode="python")])


def replayed(record: dict[str, Any], fingerprint: str) -> JSONResponse:
    """The recorded answer for a retried tx_id; 409 when the body is another transaction."""
    if record["fingerprint"] != fingerprint:
        raise ApiError(
            409,
            f"transaction {record['tx_id']} was already decided for a different body: "
            "a new transaction needs a new tx_id",
        )
    return JSONResponse(record["answer"], headers={"Idempotent-Replayed": "true"})


def mount_decisions(
    app: FastAPI, ctx: ServiceContext, require: Callable[[str], Callable[..., Principal]]
) -> DecisionEngine:
    """`POST /v1/decisions`; `require` is the app's authentication-and-permission
    dependency. The engine is kept as `app.state.decisions`."""
    settings = ctx.settings.decisions
    engine = DecisionEngine(settings, ctx.registry)
    app.state.decisions = engine
    try:  # load the promoted version now, so the first payment does not wait for it
        engine.model.current()
    except Exception:
        log.exception("decisions: the promoted model cannot be loaded yet (retried per decision)")

    @app.post(
        "/v1/decisions",
        tags=["decisions"],
        summary="Decide one transaction inline: allow, step_up or block",
        responses={200: {"model": DecisionAnswer}, 409: {}, 503: {}},
    )
    def decide_transaction(
        principal: Annotated[Principal, Depends(require(PERMISSION))],
        body: TransactionV1,
    ) -> JSONResponse:
        table = event_table(body)
        fingerprint = event_fingerprint(body)
        tx_id = str(body.tx_id)
        earlier = ctx.store.get_decision(tx_id)
        if earlier is not None:
            return replayed(earlier, fingerprint)
        with engine.admitted():
            deadline = time.monotonic() + settings.budget_ms / 1000
            verdict = engine.score(table, deadline)
            policy = effective_policy(ctx.settings.policy, ctx.store)
            if verdict.cause is None and verdict.score is not None:
                decision = decision_for(verdict.score, policy)
            else:
                decision = settings.fallback
            answer = {
                "tx_id": body.tx_id,
                "user_id": body.user_id,
                "decision": decision,
                "score": verdict.score,
                "reasons": verdict.reasons,
                "model_version": verdict.model_version,
                "thresholds": {"step_up_at": policy.step_up_at, "lock_at": policy.lock_at},
                "fallback": verdict.cause is not None,
                "fallback_reason": verdict.reason,
                "decided_at": now_iso(),
            }
            record, created = ctx.store.record_decision(
                {
                    **answer,
                    "tx_id": tx_id,
                    "actor": principal.actor,
                    "fingerprint": fingerprint,
                    "answer": answer,
                }
            )
            if not created:  # a concurrent request for the same tx_id answered first
                return replayed(record, fingerprint)
            engine.counted(answer, verdict.cause)
            engine.prune(ctx.store)
        return JSONResponse(answer)

    @app.get("/v1/decisions", tags=["decisions"], summary="Recorded inline decisions")
    def list_decisions(
        _: Annotated[Principal, Depends(require(READ_PERMISSION))],
        user_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
        since: Annotated[
            datetime | None, Query(description="ISO 8601 time, inclusive; no zone means UTC")
        ] = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        start = None
        if since is not None:
            try:
                start = (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC)
            except OverflowError:
                raise ApiError(
                    422, "invalid request: query.since: out of range once converted to UTC"
                ) from None
        records, total = ctx.store.decisions(
            user_id=user_id,
            since=start.isoformat() if start else None,
            offset=(page - 1) * page_size,
            limit=page_size,
        )
        items = [{**record["answer"], "actor": record["actor"]} for record in records]
        return {"page": page, "page_size": page_size, "total": total, "items": items}

    return engine
