"""Retention in Elasticsearch: whole indices removed once every document in them is older
than their class's policy.

The publisher and the audit exporter write through rollover aliases (`fraudwatch-transactions`,
`fraudwatch-users`, `fraudwatch-audit`; indices `<alias>-000001`, ...). An index is removed
when it is not its alias's write index and its newest document (the alias's time field) lies
before the cut-off; an index is never emptied document by document.

- A cluster with ILM rolls indices over and deletes them itself: the job writes each class's
  policy (`fraudwatch-<class>-retention`: the phases of the policy the index has now, with the
  delete phase at the class's days) and points that class's indices at it, so ILM deletes
  them when the configured retention says so. The job's own removal below runs as well; it
  only finds something when ILM is behind.
- A cluster without ILM (OSS builds, the test node) never rolls over by itself: the job rolls
  each alias over once its write index's oldest document is a day old, so an index spans
  about one day, as ILM's hot phase does (`max_age: 1d`), and whole indices can age out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fraudwatch.contract.scored_output import TRANSACTIONS_INDEX, USERS_INDEX
from fraudwatch.elasticsearch.client import (
    ElasticsearchHttp,
    ElasticsearchRefused,
    ElasticsearchUnreachable,
)
from fraudwatch.elasticsearch.definitions import alias_indices, ilm_available
from fraudwatch.errors import UserError

log = logging.getLogger("fraudwatch.privacy.retain")

#: Rollover alias → (data class, the field whose newest value dates an index).
ALIASES = {
    TRANSACTIONS_INDEX: ("scored_results", "ts"),
    USERS_INDEX: ("scored_results", "scored_at"),
    "fraudwatch-audit": ("audit", "ts"),
}
#: How old a write index gets before the job rolls it over (clusters without ILM).
ROLLOVER_AGE = timedelta(days=1)


@dataclass(frozen=True)
class IndexInfo:
    name: str
    alias: str
    data_class: str
    docs: int
    created: datetime
    newest: datetime | None  # None: no document has the time field
    oldest: datetime | None
    write_index: bool


def _unreachable(url: str, exc: Exception) -> UserError:
    return UserError(
        f"Elasticsearch at {url} did not answer ({exc}); check --es-url / "
        "FRAUDWATCH_ELASTICSEARCH_URL and that the cluster is up"
    )


def _ms(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value) / 1000, UTC)


def indices(client: ElasticsearchHttp) -> list[IndexInfo]:
    """Every index of the fraudwatch rollover aliases, with what retention needs to know."""
    found: list[IndexInfo] = []
    try:
        for alias, (data_class, time_field) in ALIASES.items():
            rows = client.request(
                "GET",
                f"/_cat/indices/{alias}-*",
                params={"format": "json", "h": "index,docs.count,creation.date"},
            )
            _, writers = alias_indices(client, alias)
            for row in sorted(rows or [], key=lambda r: r["index"]):
                name = row["index"]
                span = client.request(
                    "POST",
                    f"/{name}/_search",
                    {
                        "size": 0,
                        "aggs": {
                            "newest": {"max": {"field": time_field}},
                            "oldest": {"min": {"field": time_field}},
                        },
                    },
                )["aggregations"]
                newest, oldest = span["newest"]["value"], span["oldest"]["value"]
                found.append(
                    IndexInfo(
                        name=name,
                        alias=alias,
                        data_class=data_class,
                        docs=int(row.get("docs.count") or 0),
                        created=_ms(row["creation.date"]),
                        newest=None if newest is None else _ms(newest),
                        oldest=None if oldest is None else _ms(oldest),
                        write_index=name in writers,
                    )
                )
    except ElasticsearchUnreachable as exc:
        raise _unreachable(client.url, exc) from None
    return found


def aged_out(index: IndexInfo, cutoff: datetime) -> bool:
    """True when every document of the index lies before the cut-off."""
    if index.write_index:
        return False
    if index.newest is None:  # no dated document: judge by when the index was created
        return index.created < cutoff
    return index.newest < cutoff


def needs_rollover(index: IndexInfo, now: datetime) -> bool:
    """A write index whose documents span a day or more (its oldest is a day old)."""
    return index.write_index and index.oldest is not None and now - index.oldest >= ROLLOVER_AGE


def delete_index(client: ElasticsearchHttp, index: IndexInfo) -> None:
    try:
        client.request("DELETE", f"/{index.name}")
    except ElasticsearchUnreachable as exc:
        raise _unreachable(client.url, exc) from None
    log.info(
        "removed %s index %s (%d documents, newest %s)",
        index.data_class,
        index.name,
        index.docs,
        index.newest.isoformat() if index.newest else "none dated",
    )


def roll_over(client: ElasticsearchHttp, alias: str) -> str:
    answer = client.request("POST", f"/{alias}/_rollover")
    log.info("rolled %s over: new write index %s", alias, answer.get("new_index"))
    return str(answer.get("new_index"))


def has_ilm(client: ElasticsearchHttp) -> bool:
    try:
        return ilm_available(client)
    except ElasticsearchUnreachable as exc:
        raise _unreachable(client.url, exc) from None


def retention_policy_name(data_class: str) -> str:
    return f"fraudwatch-{data_class.replace('_', '-')}-retention"


def _lifecycle_names(client: ElasticsearchHttp, names: list[str]) -> dict[str, str | None]:
    answer = client.request("GET", f"/{','.join(names)}/_settings/index.lifecycle.name")
    return {
        index: body.get("settings", {}).get("index", {}).get("lifecycle", {}).get("name")
        for index, body in answer.items()
    }


def ilm_in_place(client: ElasticsearchHttp, data_class: str, names: list[str], days: int) -> bool:
    """True when the class's policy deletes after `days` and every index of it follows it
    (a second run then has nothing to change)."""
    name = retention_policy_name(data_class)
    try:
        body = client.request("GET", f"/_ilm/policy/{name}")
    except ElasticsearchRefused as exc:
        if exc.status == 404:
            return False
        raise
    delete = body.get(name, {}).get("policy", {}).get("phases", {}).get("delete", {})
    if delete.get("min_age") != f"{days}d":
        return False
    return all(v == name for v in _lifecycle_names(client, names).values())


def set_ilm_delete_phase(
    client: ElasticsearchHttp, data_class: str, names: list[str], days: int
) -> str:
    """Write the class's ILM policy (the phases its indices have now, deleted after `days`)
    and point the indices at it; the policy's name."""
    current = _lifecycle_names(client, names[:1]).get(names[0])
    phases: dict[str, Any] = {}
    if current:
        body = client.request("GET", f"/_ilm/policy/{current}")
        phases = dict(body.get(current, {}).get("policy", {}).get("phases", {}))
    phases["delete"] = {"min_age": f"{days}d", "actions": {"delete": {}}}
    name = retention_policy_name(data_class)
    client.request(
        "PUT",
        f"/_ilm/policy/{name}",
        {"policy": {"_meta": {"owner": "fraudwatch privacy retain"}, "phases": phases}},
    )
    client.request("PUT", f"/{','.join(names)}/_settings", {"index.lifecycle.name": name})
    log.info("ILM policy %s: %s indices deleted %d days after rollover", name, data_class, days)
    return name
