"""The anomaly list as the API and the admin page show it: the scored results' anomalies,
filtered by the accounts' and transactions' intervention state, each with that state."""

from __future__ import annotations

from typing import Any

from fraudwatch.intervention.context import ServiceContext
from fraudwatch.intervention.results import AnomalyFilter
from fraudwatch.intervention.stores.repository import ACCOUNT_FLAGS


def list_anomalies(
    ctx: ServiceContext,
    flt: AnomalyFilter,
    level: str,
    status: str | None,
    page: int,
    page_size: int,
) -> dict[str, Any]:
    store = ctx.store
    include: list[str] | None = None
    exclude: list[str] | None = None
    if level == "users":
        if status in ("locked", "step_up"):
            include = sorted(store.subjects_with("account", status))
        elif status == "open":
            locked = set(store.subjects_with("account", "locked"))
            exclude = sorted(locked | set(store.subjects_with("account", "step_up")))
        elif status == "blocked":
            include = []
    else:
        if status == "blocked":
            include = sorted(store.subjects_with("transaction", "blocked"))
        elif status == "open":
            exclude = sorted(store.subjects_with("transaction", "blocked"))
        elif status in ("locked", "step_up"):
            include = []
    items, total = ctx.results.anomalies(
        flt,
        level=level,
        offset=(page - 1) * page_size,
        limit=page_size,
        include_ids=include,
        exclude_ids=exclude,
    )
    # The page's intervention state in one read of the store, not one per item.
    if level == "users":
        states = store.states_of("account", [str(item["user_id"]) for item in items])
        for item in items:
            state = states[str(item["user_id"])]
            item["state"] = {flag: state.get(flag, False) for flag in ACCOUNT_FLAGS}
    else:
        states = store.states_of("transaction", [str(item["tx_id"]) for item in items])
        for item in items:
            item["blocked"] = states[str(item["tx_id"])].get("blocked", False)
    return {"level": level, "page": page, "page_size": page_size, "total": total, "items": items}
