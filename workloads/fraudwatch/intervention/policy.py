"""The policy for automated actions: which alert score leads to which intervention.

Defaults (docs/intervention.md, from scoring/thresholds.py): calibrated ensemble score
>= 0.99 -> step-up authentication, >= 0.999 -> lock the account. An admin can change both
thresholds at run time (`PUT /v1/policy`), which is stored and audited; the config file gives
the start values.
"""

from __future__ import annotations

from dataclasses import replace

from fraudwatch.intervention.config import PolicySettings
from fraudwatch.intervention.stores import StateStore

RUNTIME_KEYS = (
    "step_up_at",
    "lock_at",
    "dry_run",
    "max_automated_locks",
    "window_seconds",
    "human_override_seconds",
)


def effective_policy(configured: PolicySettings, store: StateStore) -> PolicySettings:
    """The configured policy with any run-time changes an admin made."""
    changes = store.get_setting("policy") or {}
    return replace(configured, **{k: v for k, v in changes.items() if k in RUNTIME_KEYS})


def decide(score: float, policy: PolicySettings) -> str | None:
    """The action for an alert with this ensemble score, or None below every threshold."""
    if score >= policy.lock_at:
        return "lock"
    if score >= policy.step_up_at:
        return "step_up"
    return None
