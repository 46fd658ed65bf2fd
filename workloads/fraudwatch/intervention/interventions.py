"""Carrying out interventions: by people through the API and the admin page, and automatically
from alerts with the safety valves (dry-run, allow-list, circuit breaker). `act` is the one way
an intervention is carried out for all three; every outcome lands in the audit log."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fraudwatch.intervention.audit import new_entry
from fraudwatch.intervention.auth import Principal
from fraudwatch.intervention.config import PolicySettings
from fraudwatch.intervention.hooks import AlertSignal
from fraudwatch.intervention.policy import decide
from fraudwatch.intervention.profiles import remember_profile
from fraudwatch.intervention.results import ResultsReader
from fraudwatch.intervention.stores import StateStore
from fraudwatch.intervention.stores.repository import ACTION_EFFECTS


@dataclass(frozen=True)
class Outcome:
    """What happened to one intervention request, with the audit entry that records it."""

    action: str
    subject_kind: str
    subject_id: str
    result: str
    audit_seq: int
    detail: str = ""
    approval_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def intervene(
    store: StateStore,
    principal: Principal,
    action: str,
    subject_id: str,
    reason: str,
    alert_id: str | None = None,
    via: str = "api",
    detail: str = "",
) -> Outcome:
    """Apply one intervention now (the caller has checked permission and that it exists)."""
    entry = new_entry(
        actor=principal.actor,
        role=principal.role,
        via=via,
        action=action,
        reason=reason,
        alert_id=alert_id,
        result="pending",
        detail=detail,
    )
    sealed = store.apply_intervention(entry, subject_id)
    return Outcome(
        action,
        sealed["subject_kind"],
        str(subject_id),
        sealed["result"],
        sealed["seq"],
        sealed.get("detail") or "",
    )


class UnknownSubject(LookupError):
    """The account or transaction is not in the scored results: nothing was changed and the
    refusal is on the audit log (`outcome`). The API and the admin page answer 404."""

    def __init__(self, outcome: Outcome) -> None:
        noun = outcome.subject_kind
        super().__init__(f"unknown {noun} {outcome.subject_id}: not in the scored results")
        self.outcome = outcome


def act(
    store: StateStore,
    results: ResultsReader,
    principal: Principal,
    action: str,
    subject_id: int,
    reason: str,
    alert_id: str | None = None,
    via: str = "api",
    detail: str = "",
) -> Outcome:
    """Carry out one intervention, the same way for the API, the admin page and the alert
    hooks (the caller has checked permission; the hooks have applied the policy): the subject
    must be in the scored results (else the refusal is audited and UnknownSubject raised),
    the change and its audit entry are one step of the store, and an account's profile takes
    its persona from the results."""
    kind = ACTION_EFFECTS[action][0]
    user = results.user(subject_id) if kind == "account" else None
    exists = user is not None if kind == "account" else results.transaction(subject_id) is not None
    if not exists:
        refused = record_refusal(
            store,
            principal,
            action,
            kind,
            str(subject_id),
            f"unknown {kind}",
            reason=reason,
            alert_id=alert_id,
            via=via,
        )
        raise UnknownSubject(refused)
    outcome = intervene(store, principal, action, str(subject_id), reason, alert_id, via, detail)
    if user is not None:
        remember_profile(store, subject_id, user)
    return outcome


def record_refusal(
    store: StateStore,
    principal: Principal,
    action: str,
    subject_kind: str,
    subject_id: str,
    detail: str,
    *,
    reason: str = "",
    alert_id: str | None = None,
    via: str = "api",
    result: str = "refused",
) -> Outcome:
    sealed = store.append_audit(
        new_entry(
            actor=principal.actor,
            role=principal.role,
            via=via,
            action=action,
            subject_kind=subject_kind,
            subject_id=subject_id,
            reason=reason,
            alert_id=alert_id,
            result=result,
            detail=detail,
        )
    )
    return Outcome(
        action, subject_kind, sealed["subject_id"], result, sealed["seq"], sealed["detail"]
    )


#: Channels through which a person (not automation) intervenes.
HUMAN_CHANNELS = ("api", "admin", "approval")


def _utc(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


#: How far an alert's stated score may be from the results before the difference is audited.
SCORE_TOLERANCE = 0.005


def join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


class AutomatedResponder:
    """Acts on alert signals under the policy. One instance per service process: the breaker
    check and the lock it guards are serialised by a process lock and, across the service
    processes sharing a store, by the store's `circuit-breaker` lease."""

    def __init__(self, store: StateStore, results: ResultsReader) -> None:
        self.store = store
        self.results = results
        self._lock = threading.Lock()

    def human_decision(self, uid: str, policy: PolicySettings, started_at: str) -> str:
        """Why automation must leave the account alone, or "": the newest intervention a
        person made on it (API, admin page, approval) is within policy.human_override_seconds,
        or was made after the alert started firing (the same alert is not acted on again)."""
        entries = self.store.audit_entries(
            subject_kind="account", subject_id=uid, newest_first=True, limit=500
        )
        human = next(
            (
                e
                for e in entries
                if e.get("via") in HUMAN_CHANNELS
                and e.get("action") in ACTION_EFFECTS
                and e.get("result") in ("applied", "no_change")
            ),
            None,
        )
        if human is None:
            return ""
        acted = _utc(str(human["ts"]))
        if acted is None:
            return ""
        who = f"{human['actor']} ({human['role']}) did {human['action']} on this account at"
        until = acted + timedelta(seconds=policy.human_override_seconds)
        if datetime.now(UTC) < until:
            return (
                f"human override: {who} {human['ts']}; automation leaves the account alone "
                f"until {until.isoformat(timespec='seconds')} (policy.human_override_seconds)"
            )
        started = _utc(started_at) if started_at else None
        if started is not None and acted >= started:
            return (
                f"human override: {who} {human['ts']}, after this alert started firing "
                f"({started_at}); automation does not act on the same alert again"
            )
        return ""

    def breaker_open(self, policy: PolicySettings) -> tuple[bool, int]:
        since = (datetime.now(UTC) - timedelta(seconds=policy.window_seconds)).isoformat(
            timespec="microseconds"
        )
        count = self.store.count_audit(
            via_prefix="hook:", action="lock", result="applied", since=since
        )
        return count >= policy.max_automated_locks, count

    def handle(
        self,
        signal: AlertSignal,
        principal: Principal,
        via: str,
        policy: PolicySettings,
        account_exists: bool,
        score: float | None = None,
    ) -> Outcome:
        """Act on one alert about an account; `score` is the account's ensemble score in the
        service's own results (the alert's stated score is only a hint: a mismatch is noted
        in the audit entry's detail)."""
        uid = str(signal.user_id)
        hint = signal.score
        stated = f" (alert stated {hint:.3f})" if hint is not None else ""
        reason = (
            f"{signal.summary}: ensemble score {score:.3f}{stated}"
            if score is not None
            else f"{signal.summary}: no score in the results{stated}"
        )
        mismatch = (
            f"score mismatch: the alert stated {hint:.3f}, the results say {score:.3f}; "
            "acted on the results"
            if hint is not None and score is not None and abs(hint - score) > SCORE_TOLERANCE
            else ""
        )
        action = decide(score, policy) if score is not None else None
        if not account_exists:
            return record_refusal(
                self.store,
                principal,
                action or "none",
                "account",
                uid,
                "unknown account: not in the scored results",
                reason=reason,
                alert_id=signal.alert_id,
                via=via,
            )
        if score is None:
            return record_refusal(
                self.store,
                principal,
                "none",
                "account",
                uid,
                "the results hold no ensemble score for this account",
                reason=reason,
                alert_id=signal.alert_id,
                via=via,
            )
        if action is None:
            return record_refusal(
                self.store,
                principal,
                "none",
                "account",
                uid,
                join(f"score below the step-up threshold {policy.step_up_at}", mismatch),
                reason=reason,
                alert_id=signal.alert_id,
                via=via,
                result="no_action",
            )
        human = self.human_decision(uid, policy, signal.started_at)
        if human:
            return record_refusal(
                self.store,
                principal,
                action,
                "account",
                uid,
                join(human, mismatch),
                reason=reason,
                alert_id=signal.alert_id,
                via=via,
            )
        if policy.dry_run:
            return record_refusal(
                self.store,
                principal,
                action,
                "account",
                uid,
                join("dry-run mode: nothing was changed", mismatch),
                reason=reason,
                alert_id=signal.alert_id,
                via=via,
                result="dry_run",
            )
        if action == "lock" and signal.user_id in policy.allow_list:
            return record_refusal(
                self.store,
                principal,
                action,
                "account",
                uid,
                join("account is on the allow-list: automation never locks it", mismatch),
                reason=reason,
                alert_id=signal.alert_id,
                via=via,
            )
        # The breaker's count and the lock it lets through are one step: within this process
        # (the lock) and among every process sharing the store (the store's lease).
        with self._lock, self.store.lease("circuit-breaker"):
            is_open, count = self.breaker_open(policy)
            if is_open:
                item = {
                    "action": action,
                    "subject_kind": ACTION_EFFECTS[action][0],
                    "subject_id": uid,
                    "reason": reason,
                    "alert_id": signal.alert_id,
                    "requested_by": principal.actor,
                    "via": via,
                }
                waiting = next(
                    (
                        a
                        for a in self.store.list_approvals("pending")
                        if a.get("action") == action and a.get("subject_id") == uid
                    ),
                    None,
                )
                # The same action on the same account waits once, however often it is alerted.
                approval_id = waiting["id"] if waiting else self.store.enqueue_approval(item)
                already = "already " if waiting else ""
                queued = record_refusal(
                    self.store,
                    principal,
                    action,
                    "account",
                    uid,
                    f"circuit breaker open ({count} automated locks in the last "
                    f"{policy.window_seconds}s, limit {policy.max_automated_locks}): "
                    f"{already}queued for human approval as {approval_id}"
                    + (f"; {mismatch}" if mismatch else ""),
                    reason=reason,
                    alert_id=signal.alert_id,
                    via=via,
                    result="queued",
                )
                return Outcome(
                    queued.action,
                    queued.subject_kind,
                    uid,
                    "queued",
                    queued.audit_seq,
                    queued.detail,
                    approval_id,
                )
            return act(
                self.store,
                self.results,
                principal,
                action,
                signal.user_id,
                reason,
                signal.alert_id,
                via,
                mismatch,
            )
