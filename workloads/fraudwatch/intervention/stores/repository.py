"""The repository interface both state stores implement (one contract test suite covers both)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# What each intervention changes: action -> (subject kind, state field, new value)
ACTION_EFFECTS: dict[str, tuple[str, str, bool]] = {
    "lock": ("account", "locked", True),
    "unlock": ("account", "locked", False),
    "step_up": ("account", "step_up", True),
    "clear_step_up": ("account", "step_up", False),
    "block": ("transaction", "blocked", True),
    "release": ("transaction", "blocked", False),
}
#: How the admin page names each action (the same keys as ACTION_EFFECTS).
ACTION_LABELS: dict[str, str] = {
    "lock": "Lock account",
    "unlock": "Unlock account",
    "step_up": "Require step-up auth",
    "clear_step_up": "Clear step-up",
    "block": "Block transaction",
    "release": "Release transaction",
}


#: How long a claimed Idempotency-Key stays `pending` before a retry may take it over: the
#: claim is a lease, so a process killed mid-request does not leave the key 409 forever.
IDEMPOTENCY_LEASE_SECONDS = 60

#: How long a lease (StateStore.lease) outlives a holder that died without releasing it.
LEASE_SECONDS = 30

#: The account flags a user profile carries as its current state.
ACCOUNT_FLAGS = ("locked", "step_up")

#: The fields of a stored disposition, in the order the API returns them.
DISPOSITION_FIELDS = (
    "id",
    "ts",
    "actor",
    "role",
    "via",
    "user_id",
    "tx_id",
    "label",
    "reason",
    "model_version",
    "audit_seq",
)

#: The fields of a recorded inline decision (`POST /v1/decisions`, intervention/decisions.py).
#: `tx_id` is the key (text): one decision per transaction. `answer` is the JSON answer the
#: caller got, returned again for a retry with the same tx_id; `fingerprint` is the SHA-256 of
#: the transaction event it answered.
DECISION_FIELDS = (
    "tx_id",
    "user_id",
    "decided_at",
    "decision",
    "score",
    "model_version",
    "fallback",
    "fallback_reason",
    "actor",
    "fingerprint",
    "answer",
)


def utc_iso(value: str | None, timespec: str = "auto") -> str | None:
    """An ISO 8601 time in the one form profiles store (UTC, `+00:00`), so stored times
    compare correctly as text; ValueError for something that is not a time. Times compared
    with audit-style timestamps (`now_iso()`) take `timespec="microseconds"`."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec=timespec)


@dataclass(frozen=True)
class AuditFilter:
    """What `StateStore.audit_entries` matches: entries after `after_seq`, about one subject
    kind and id where given (None: any)."""

    subject_kind: str | None = None
    subject_id: str | None = None
    after_seq: int = 0


@dataclass(frozen=True)
class DispositionFilter:
    """What `StateStore.dispositions` matches (None: any); `since` and `until` are UTC ISO
    times with microseconds, the form dispositions are stored with."""

    user_id: int | None = None
    label: str | None = None
    since: str | None = None
    until: str | None = None
    model_version: str | None = None


@dataclass(frozen=True)
class DecisionFilter:
    """What `StateStore.decisions` matches (None: any); `since` as DispositionFilter's."""

    user_id: int | None = None
    since: str | None = None


class StateStore(ABC):
    """Interventions, the audit chain, tokens, idempotency keys, approvals, settings, admin
    page sessions, user profiles and dispositions."""

    # --- audit chain -------------------------------------------------------------------
    @abstractmethod
    def append_audit(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Seal the entry onto the end of the chain (seq, prev_hash, hash) and return it."""

    def audit_entries(
        self,
        *,
        subject_kind: str | None = None,
        subject_id: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Entries in seq order (or newest first), optionally for one subject."""
        subject = None if subject_id is None else str(subject_id)
        return self._audit_page(AuditFilter(subject_kind, subject, after_seq), limit, newest_first)

    @abstractmethod
    def _audit_page(
        self, matching: AuditFilter, limit: int | None, newest_first: bool
    ) -> list[dict[str, Any]]:
        """`audit_entries` with its filter in the stored form."""

    @abstractmethod
    def audit_head(self) -> tuple[int, str] | None:
        """(seq, hash) of the newest entry as recorded when it was appended."""

    @abstractmethod
    def audit_keys(self) -> dict[str, bytes]:
        """Every customer's audit key by subject id (collection `audit_keys`): what verify
        tests the format 2 entries' personal fields against their commitments with."""

    @abstractmethod
    def erase_audit_subject(self, subject_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Erase one customer (an account's `subject_id`) from the audit log: append `entry`,
        the erasure's own record, with `subject_kind` ERASURE_KIND and as `subject_id` the
        customer's `subject_id` commitment (not the id); replace the personal fields of every
        format 2 entry about the customer by ERASED (marked `erased`); delete the account's
        state rows and the customer's key. Returns {"entry": the sealed record, "entries":
        how many entries were erased, "state": how many state rows went}."""

    @abstractmethod
    def migrate_audit(self) -> dict[str, Any]:
        """`fraudwatch audit migrate`: re-seal the whole chain in format 2 when it holds format
        1 entries (audit.resealed: seqs and fields kept, customers' entries committed under
        their keys, every hash recomputed) and append the migration record naming the head
        before. Raises audit.MigrationRefused, changing nothing, when the chain does not
        verify. Returns {"entry": the record or None when nothing was in format 1, "format1":
        how many were, "entries": how many were re-sealed}."""

    @abstractmethod
    def count_audit(self, *, via_prefix: str, action: str, result: str, since: str) -> int:
        """How many entries since an ISO timestamp match (used by the circuit breaker)."""

    # --- interventions -----------------------------------------------------------------
    @abstractmethod
    def apply_intervention(self, entry: dict[str, Any], subject_id: str) -> dict[str, Any]:
        """Atomically: read the subject's state, decide applied/no_change, append the audit
        entry with that result and set the new state (for an account also the `state` of its
        profile). `entry["action"]` is a key of ACTION_EFFECTS. Returns the sealed entry."""

    @abstractmethod
    def get_state(self, kind: str, subject_id: str) -> dict[str, bool]:
        """Current flags of one account or transaction (missing flags are False)."""

    @abstractmethod
    def states_of(self, kind: str, subject_ids: list[str]) -> dict[str, dict[str, bool]]:
        """`get_state` of many subjects in one read (a page of the anomaly list): every id
        asked for is a key, with {} when nothing is set."""

    @abstractmethod
    def state_rows(self) -> list[dict[str, Any]]:
        """Every stored flag: `kind`, `subject_id`, `field`, `value` (bool) and `seq`, the
        audit entry that last set it (what `audit verify` replays the log against)."""

    @abstractmethod
    def subjects_with(self, kind: str, field: str) -> list[str]:
        """Ids of the subjects whose flag is set, e.g. every locked account."""

    # --- idempotency keys --------------------------------------------------------------
    @abstractmethod
    def claim_idempotency(
        self, principal: str, key: str, fingerprint: str, now: float | None = None
    ) -> dict[str, Any] | None:
        """Claim a key: None when this call claimed it, else the stored record
        (`fingerprint`, `status` pending|done, `status_code`, `response`). A claim is a lease
        of IDEMPOTENCY_LEASE_SECONDS: a `pending` key with the same fingerprint whose lease
        ran out (its holder died) is claimed again by this call."""

    @abstractmethod
    def complete_idempotency(
        self, principal: str, key: str, status_code: int, response: dict[str, Any]
    ) -> None: ...

    @abstractmethod
    def release_idempotency(self, principal: str, key: str) -> None:
        """Forget a claimed key whose request failed, so a retry can act."""

    # --- exclusive sections shared by every client of the store -----------------------
    @abstractmethod
    def lease(self, name: str) -> AbstractContextManager[None]:
        """Hold `name` for the `with` block, exclusively among every client of this store,
        other processes included (the circuit breaker's check-then-lock in two service
        processes). A holder that died loses the lease after LEASE_SECONDS."""

    # --- things seen once: signed-hook nonces, alert firings ----------------------------
    @abstractmethod
    def remember_once(self, key: str, expires_at: float, now: float | None = None) -> bool:
        """Record `key` until `expires_at` (seconds since the epoch): True when this call
        recorded it, False when it is already recorded and not yet expired. Expired keys are
        purged on the way."""

    @abstractmethod
    def forget(self, key: str) -> None:
        """Drop a key recorded by :meth:`remember_once` (its work failed: a retry may act)."""

    # --- API tokens --------------------------------------------------------------------
    @abstractmethod
    def put_token(self, record: dict[str, Any]) -> None:
        """Store token_id, token_hash, role, name, created_at (never the token itself)."""

    @abstractmethod
    def get_token(self, token_hash: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def list_tokens(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def revoke_token(self, token_id: str) -> bool:
        """Revoke an active token and end the admin page sessions signed in with it."""

    # --- approvals queue (automated actions held back by the circuit breaker) ----------
    @abstractmethod
    def enqueue_approval(self, item: dict[str, Any]) -> str: ...

    @abstractmethod
    def list_approvals(self, status: str = "pending") -> list[dict[str, Any]]: ...

    @abstractmethod
    def get_approval(self, approval_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def resolve_approval(self, approval_id: str, status: str, by: str) -> bool:
        """Move a pending item to approved/rejected; False when it was not pending."""

    # --- settings changed at run time (policy thresholds) ------------------------------
    @abstractmethod
    def get_setting(self, name: str) -> Any: ...

    @abstractmethod
    def put_setting(self, name: str, value: Any) -> None: ...

    # --- admin page sessions -----------------------------------------------------------
    @abstractmethod
    def create_session(self, session_hash: str, record: dict[str, Any]) -> None:
        """Store a session under the SHA-256 of its id (the id itself is never stored):
        `actor`, `role`, `csrf`, `expires_at` (seconds since the epoch), `created_at`.
        Expired sessions of anyone are purged on the way."""

    @abstractmethod
    def get_session(self, session_hash: str, now: float) -> dict[str, Any] | None:
        """The session's record while `now` is before its `expires_at`; None when unknown or
        expired (an expired session is deleted)."""

    @abstractmethod
    def delete_session(self, session_hash: str) -> bool:
        """Sign a session out; False when there was none."""

    # --- user profiles -----------------------------------------------------------------
    @abstractmethod
    def touch_profile(
        self, user_id: str, *, persona: str | None = None, last_seen: str | None = None
    ) -> dict[str, Any]:
        """Create or update a user's profile: `persona` when given, `last_seen` (ISO 8601 in
        UTC) only ever moves forward. A new profile starts with the account's current state.
        Returns the profile."""

    @abstractmethod
    def get_profile(self, user_id: str) -> dict[str, Any] | None:
        """`user_id`, `persona`, `last_seen`, `state` ({locked, step_up}), `updated_at`."""

    # --- dispositions: analysts' verdicts on accounts ----------------------------------
    @abstractmethod
    def record_disposition(
        self, entry: dict[str, Any], disposition: dict[str, Any]
    ) -> dict[str, Any]:
        """Append the audit entry and store the disposition with that entry's seq as
        `audit_seq`, in one write (SQLite: one transaction; MongoDB: the audit entry first,
        so no disposition exists that the chain does not record). `disposition` holds `id`,
        `ts` (the entry's), `actor`, `role`, `via`, `user_id` (int), `tx_id` (str or None),
        `label`, `reason`, `model_version` (str or None). Returns the stored disposition."""

    def dispositions(
        self,
        *,
        user_id: int | None = None,
        label: str | None = None,
        since: str | None = None,
        until: str | None = None,
        model_version: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of dispositions, newest first, and how many match in all. `since` and
        `until` are ISO 8601 times (inclusive; no zone means UTC)."""
        since, until = utc_iso(since, "microseconds"), utc_iso(until, "microseconds")
        matching = DispositionFilter(user_id, label, since, until, model_version)
        return self._disposition_page(matching, offset, limit)

    @abstractmethod
    def _disposition_page(
        self, matching: DispositionFilter, offset: int, limit: int | None
    ) -> tuple[list[dict[str, Any]], int]:
        """`dispositions` with its filter in the stored form."""

    @abstractmethod
    def users_with_disposition(self) -> list[int]:
        """Ids of the accounts that have at least one disposition (ascending)."""

    # --- inline decisions ---------------------------------------------------------------
    @abstractmethod
    def record_decision(self, decision: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Store a decision (the DECISION_FIELDS) unless one with its `tx_id` is stored:
        atomically, so of two racing writers exactly one stores. Returns the stored decision
        (this one or the earlier one) and whether this call stored it."""

    @abstractmethod
    def get_decision(self, tx_id: str) -> dict[str, Any] | None:
        """The decision recorded for a transaction, or None."""

    def decisions(
        self,
        *,
        user_id: int | None = None,
        since: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of decisions, newest first, and how many match in all. `since` is an
        ISO 8601 time (inclusive; no zone means UTC)."""
        user = None if user_id is None else int(user_id)
        matching = DecisionFilter(user, utc_iso(since, "microseconds"))
        return self._decision_page(matching, offset, limit)

    @abstractmethod
    def _decision_page(
        self, matching: DecisionFilter, offset: int, limit: int | None
    ) -> tuple[list[dict[str, Any]], int]:
        """`decisions` with its filter in the stored form."""

    @abstractmethod
    def prune_decisions(self, before: str) -> int:
        """Delete the decisions made before an ISO 8601 time; returns how many."""

    def close(self) -> None:  # noqa: B027 - optional for stores with nothing to release
        """Release connections."""
