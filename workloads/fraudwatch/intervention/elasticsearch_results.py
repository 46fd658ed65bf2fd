"""Read ranked anomalies from Elasticsearch: the indices `fraudwatch publish --to
elasticsearch` writes (aliases `fraudwatch-transactions` and `fraudwatch-users` by default).

Same interface and answers as the Parquet reader (`results.ScoredResults`); one contract test
suite runs on both. An index can hold several published runs (document ids are
`<id>:<model_version>`): every query is restricted to one model version, the configured
`results.elasticsearch_model_version` or else the newest run in the users index (looked up
again every VERSION_TTL_SECONDS, so a new publish is picked up without a restart).

HTTP goes through `elasticsearch.client.ElasticsearchHttp`. When the cluster does not
answer, or refuses, a query raises `ResultsUnavailable` with one line saying what to do; the
API answers it with 503.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudwatch.contract.scored_output import TRANSACTIONS_INDEX, USERS_INDEX
from fraudwatch.elasticsearch.client import (
    ElasticsearchHttp,
    ElasticsearchRefused,
    ElasticsearchUnreachable,
)
from fraudwatch.intervention.config import ElasticsearchSettings
from fraudwatch.intervention.results import (
    TX_SUMMARY,
    USER_SUMMARY,
    USER_TX_COLUMNS,
    AnomalyFilter,
    ResultsUnavailable,
    user_view,
)

#: How long the resolved newest model version (and the facets of it) is reused.
VERSION_TTL_SECONDS = 30.0
#: Elasticsearch's default index.max_result_window: deeper pages walk with search_after.
MAX_WINDOW = 10_000
#: Elasticsearch's default index.max_terms_count: longer id lists are split into clauses.
MAX_TERMS = 65_536
#: Fields the publisher adds that are not part of a scored row.
PUBLISH_FIELDS = {"record_type", "model_version", "scored_at"}
FACET_SIZE = 10_000
#: Ids are `long` in the mappings: anything outside cannot exist (and Elasticsearch would
#: refuse the query with a 400, which is no reason for a 503).
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


def _is_long(value: int) -> bool:
    return LONG_MIN <= value <= LONG_MAX


def _iso(value: Any) -> Any:
    """A date as the Parquet reader prints it: ISO 8601 in UTC with `+00:00`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC).isoformat()
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC).isoformat()
    return value


def _row(source: dict[str, Any], columns: tuple[str, ...] | None = None) -> dict[str, Any]:
    keys = columns if columns is not None else [k for k in source if k not in PUBLISH_FIELDS]
    row = {k: source.get(k) for k in keys}
    if "ts" in row:
        row["ts"] = _iso(row["ts"])
    return row


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), MAX_TERMS):
        yield ids[start : start + MAX_TERMS]


def _ids_clause(field: str, ids: list[int]) -> dict[str, Any]:
    clauses = [{"terms": {field: chunk}} for chunk in _chunks(ids)]
    if len(clauses) == 1:
        return clauses[0]
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


class ElasticsearchResults:
    """Queries over the published transactions and users indices."""

    def __init__(
        self,
        client: ElasticsearchHttp,
        *,
        transactions_index: str = TRANSACTIONS_INDEX,
        users_index: str = USERS_INDEX,
        model_version: str = "",
    ) -> None:
        self.client = client
        self.tx_index = transactions_index
        self.users_index = users_index
        self._pinned_version = model_version
        self._lock = threading.Lock()
        self._version: tuple[str, float] | None = None
        self._facets: dict[str, dict[str, list[Any]]] = {}

    @classmethod
    def from_settings(cls, settings: ElasticsearchSettings) -> ElasticsearchResults:
        basic = (settings.username, settings.password) if settings.username else None
        client = ElasticsearchHttp(
            settings.url,
            basic_auth=None if settings.api_key else basic,
            api_key=settings.api_key or None,
            ca_cert=Path(settings.ca_cert).expanduser() if settings.ca_cert else None,
            timeout=settings.timeout_seconds,
        )
        return cls(
            client,
            transactions_index=settings.transactions_index,
            users_index=settings.users_index,
            model_version=settings.model_version,
        )

    def describe(self) -> str:
        return (
            f"results from Elasticsearch {self.client.url} "
            f"(indices {self.users_index}, {self.tx_index})"
        )

    def close(self) -> None:
        self.client.close()

    # --- talking to the cluster ---------------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self.client.request(method, path, body)
        except ElasticsearchUnreachable as exc:
            raise ResultsUnavailable(
                f"results are unavailable: Elasticsearch at {self.client.url} did not answer "
                f"({exc}); check results.elasticsearch_url and that the cluster is up"
            ) from None
        except ElasticsearchRefused as exc:
            if exc.status in (401, 403):
                hint = (
                    "it refused our credentials: check results.elasticsearch_username/_password "
                    "or results.elasticsearch_api_key"
                )
            elif exc.error_type == "index_not_found_exception":
                hint = (
                    f"{exc.reason}: run `fraudwatch es apply` and `fraudwatch publish --to "
                    "elasticsearch`, or set results.elasticsearch_*_index"
                )
            else:
                hint = f"it answered {exc.status} {exc.error_type}: {exc.reason}"
            raise ResultsUnavailable(
                f"results are unavailable: Elasticsearch at {self.client.url}: {hint}"
            ) from None

    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("POST", f"/{index}/_search", body)
        return answer

    def model_version(self) -> str:
        """The run every query reads: the pinned one, else the newest in the users index."""
        if self._pinned_version:
            return self._pinned_version
        with self._lock:
            cached = self._version
        if cached is not None and time.monotonic() - cached[1] < VERSION_TTL_SECONDS:
            return cached[0]
        hits = self._search(
            self.users_index,
            {
                "size": 1,
                "sort": [{"scored_at": {"order": "desc"}}, {"model_version": {"order": "desc"}}],
                "_source": ["model_version"],
                "query": {"exists": {"field": "model_version"}},
            },
        )["hits"]["hits"]
        if not hits:
            raise ResultsUnavailable(
                f"results are unavailable: {self.users_index} on {self.client.url} holds no "
                "scored users: run `fraudwatch publish --to elasticsearch --scored DIR`"
            )
        version = str(hits[0]["_source"]["model_version"])
        with self._lock:
            self._version = (version, time.monotonic())
        return version

    def _version_filter(self) -> dict[str, Any]:
        return {"term": {"model_version": self.model_version()}}

    # --- queries ------------------------------------------------------------------------
    def _users_with_flagged_tx(self, conditions: list[dict[str, Any]]) -> list[int]:
        """Distinct user ids with a flagged transaction matching `conditions` (composite
        aggregation, paged, so any number of users)."""
        query = {
            "bool": {"filter": [self._version_filter(), {"term": {"flagged": True}}, *conditions]}
        }
        users: list[int] = []
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": 10_000,
                "sources": [{"user_id": {"terms": {"field": "user_id"}}}],
            }
            if after is not None:
                composite["after"] = after
            agg = self._search(
                self.tx_index, {"size": 0, "query": query, "aggs": {"u": {"composite": composite}}}
            )["aggregations"]["u"]
            users.extend(int(b["key"]["user_id"]) for b in agg["buckets"])
            after = agg.get("after_key")
            if not agg["buckets"] or after is None:
                return users

    def _query(
        self,
        flt: AnomalyFilter,
        level: str,
        include: list[str] | None,
        exclude: list[str] | None,
    ) -> dict[str, Any] | None:
        """The bool query of a filter; None when nothing can match."""
        must: list[dict[str, Any]] = [self._version_filter()]
        if flt.score_min is not None or flt.score_max is not None:
            bounds = {}
            if flt.score_min is not None:
                bounds["gte"] = flt.score_min
            if flt.score_max is not None:
                bounds["lte"] = flt.score_max
            must.append({"range": {"ensemble_score": bounds}})
        for field in ("persona", "scenario"):
            value = getattr(flt, field)
            if value is not None:
                must.append({"term": {field: value}})
        if flt.flagged is not None:
            must.append({"term": {"flagged": flt.flagged}})
        tx_conditions = [
            {"term": {field: value}}
            for field, value in (
                ("hour", flt.hour),
                ("tx_type", flt.tx_type),
                ("country", flt.country),
            )
            if value is not None
        ]
        if tx_conditions and level == "transactions":
            must.extend(tx_conditions)
        elif tx_conditions:
            # A user matches when one of their flagged transactions does.
            users = self._users_with_flagged_tx(tx_conditions)
            if not users:
                return None
            must.append(_ids_clause("user_id", users))
        id_field = "tx_id" if level == "transactions" else "user_id"
        if include is not None:
            if not include:
                return None
            wanted = sorted(i for i in {int(i) for i in include} if _is_long(i))
            if not wanted:
                return None
            must.append(_ids_clause(id_field, wanted))
        query: dict[str, Any] = {"filter": must}
        unwanted = sorted(i for i in {int(i) for i in exclude or ()} if _is_long(i))
        if unwanted:
            query["must_not"] = [_ids_clause(id_field, unwanted)]
        return {"bool": query}

    def _page(
        self,
        index: str,
        query: dict[str, Any],
        sort: list[dict[str, Any]],
        offset: int,
        limit: int,
        columns: tuple[str, ...],
    ) -> tuple[list[dict[str, Any]], int]:
        """Hits `offset`..`offset+limit` of a sorted query and the total; pages past the
        result window are reached with search_after (the sort ends in a unique id)."""
        body: dict[str, Any] = {
            "query": query,
            "sort": sort,
            "track_total_hits": True,
            "_source": list(columns),
        }
        if offset + limit <= MAX_WINDOW:
            answer = self._search(index, {**body, "from": offset, "size": limit})
            hits = answer["hits"]
            return [_row(h["_source"], columns) for h in hits["hits"]], int(hits["total"]["value"])
        after: list[Any] | None = None
        total = 0
        skipped = 0
        while skipped < offset:
            step = min(MAX_WINDOW, offset - skipped)
            walk = {**body, "_source": False, "size": step}
            if after is not None:
                walk["search_after"] = after
            hits = self._search(index, walk)["hits"]
            total = int(hits["total"]["value"])
            if len(hits["hits"]) < step:
                return [], total
            skipped += step
            after = hits["hits"][-1]["sort"]
        page = {**body, "size": limit, "search_after": after}
        hits = self._search(index, page)["hits"]
        return [_row(h["_source"], columns) for h in hits["hits"]], int(hits["total"]["value"])

    def anomalies(
        self,
        flt: AnomalyFilter,
        *,
        level: str = "users",
        offset: int = 0,
        limit: int = 50,
        include_ids: list[str] | None = None,
        exclude_ids: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of anomalies ranked by ensemble score (ties: rank), and the total."""
        transactions = level == "transactions"
        index, columns = (
            (self.tx_index, TX_SUMMARY) if transactions else (self.users_index, USER_SUMMARY)
        )
        query = self._query(flt, level, include_ids, exclude_ids)
        if query is None:
            return [], 0
        id_field = "tx_id" if transactions else "user_id"
        sort = [
            {"ensemble_score": {"order": "desc", "missing": "_last"}},
            {"rank": {"order": "asc", "missing": "_last"}},
            {id_field: {"order": "asc"}},
        ]
        return self._page(index, query, sort, offset, limit, columns)

    def _one(self, index: str, field: str, value: int) -> dict[str, Any] | None:
        if not _is_long(value):
            return None
        hits = self._search(
            index,
            {
                "size": 1,
                "query": {"bool": {"filter": [self._version_filter(), {"term": {field: value}}]}},
            },
        )["hits"]["hits"]
        return hits[0]["_source"] if hits else None

    def user(self, user_id: int) -> dict[str, Any] | None:
        source = self._one(self.users_index, "user_id", user_id)
        if source is None:
            return None
        return user_view(source, source.get("features") or {})

    def user_exists(self, user_id: int) -> bool:
        if not _is_long(user_id):
            return False
        answer = self._call(
            "POST",
            f"/{self.users_index}/_count",
            {
                "query": {
                    "bool": {"filter": [self._version_filter(), {"term": {"user_id": user_id}}]}
                }
            },
        )
        return int(answer["count"]) > 0

    def transactions_of(self, user_id: int, limit: int = 200) -> list[dict[str, Any]]:
        if not _is_long(user_id):
            return []
        hits = self._search(
            self.tx_index,
            {
                "size": limit,
                "query": {
                    "bool": {"filter": [self._version_filter(), {"term": {"user_id": user_id}}]}
                },
                "sort": [{"ts": {"order": "desc"}}, {"tx_id": {"order": "desc"}}],
                "_source": list(USER_TX_COLUMNS),
            },
        )["hits"]["hits"]
        return [_row(h["_source"], USER_TX_COLUMNS) for h in hits]

    def transaction(self, tx_id: int) -> dict[str, Any] | None:
        source = self._one(self.tx_index, "tx_id", tx_id)
        if source is None:
            return None
        row = _row(source)
        row.pop("label", None)
        return row

    def facets(self) -> dict[str, list[Any]]:
        """Values the admin page offers in its filter drop-downs, per model version."""
        version = self.model_version()
        cached = self._facets.get(version)
        if cached is None:
            cached = self._compute_facets()
            self._facets = {version: cached}
        return cached

    def _terms(self, index: str, fields: tuple[str, ...]) -> dict[str, list[Any]]:
        aggs = {
            f: {"terms": {"field": f, "size": FACET_SIZE, "order": {"_key": "asc"}}} for f in fields
        }
        answer = self._search(index, {"size": 0, "query": self._version_filter(), "aggs": aggs})[
            "aggregations"
        ]
        return {f: [b["key"] for b in answer[f]["buckets"]] for f in fields}

    def _compute_facets(self) -> dict[str, list[Any]]:
        return {
            **self._terms(self.users_index, ("persona", "scenario")),
            **self._terms(self.tx_index, ("tx_type", "country")),
        }
