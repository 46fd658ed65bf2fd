"""The anomaly list as the API and the admin page show it: the scored results' anomalies,
filtered by the accounts' and transactions' intervention state, each with that state."""

from __future__ import annotations

from typing import Any

from fraudwatch.intervention.context import ServiceContext
from fraudwatch.intervention.profiles import account_state
from fraudwatch.intervention.results import AnomalyFilter


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
        locked = set(store.subjects_with("account", "locked"))
        step_up = set(store.subjects_with("account", "step_up"))
        if status == "locked":
            include = sorted(locked)
        elif status == "step_up":
            include = sorted(step_up)
        elif status == "open":
            exclude = sorted(locked | step_up)
        elif status == "blocked":
            include = []
    else:
        blocked = set(store.subjects_with("transaction", "blocked"))
        if status == "blocked":
            include = sorted(blocked)
        elif status == "open":
            exclude = sorted(blocked)
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
    for item in items:
        if level == "users":
            item["state"] = account_state(store, str(item["user_id"]))
        else:
            item["blocked"] = store.get_state("transaction", str(item["tx_id"])).get(
                "blocked", False
            )
    return {"level": level, "page": page, "page_size": page_size, "total": total, "items": items}
