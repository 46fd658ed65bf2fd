"""User profiles in the state store, kept up to date with what the results say."""

from __future__ import annotations

from typing import Any

from fraudwatch.intervention.stores import StateStore


def remember_profile(
    store: StateStore,
    user_id: int,
    user: dict[str, Any] | None = None,
    transactions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Keep the user's profile in the state store up to date with what the results say:
    persona, and last seen = the newest transaction (lists are newest first)."""
    last_seen = transactions[0].get("ts") if transactions else None
    try:
        return store.touch_profile(
            str(user_id),
            persona=(user or {}).get("persona"),
            last_seen=str(last_seen) if last_seen else None,
        )
    except ValueError:  # a time the results hold in another form: keep the rest
        return store.touch_profile(str(user_id), persona=(user or {}).get("persona"))


def account_state(store: StateStore, user_id: str) -> dict[str, bool]:
    state = store.get_state("account", user_id)
    return {"locked": state.get("locked", False), "step_up": state.get("step_up", False)}
