"""Bulk indexing with a retry budget: the one writer of documents for the batch publisher,
the streaming job and the audit exporter (one retry policy, one set of errors)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fraudwatch.elasticsearch.client import (
    ElasticsearchHttp,
    ElasticsearchRefused,
    ElasticsearchUnreachable,
)
from fraudwatch.errors import UserError

#: Bulk item statuses worth retrying: overloaded or briefly unavailable.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


def _not_ready(client: ElasticsearchHttp) -> str | None:
    """Why the cluster cannot take writes yet (not yellow within 30 s), or None."""
    try:
        health = client.request(
            "GET", "/_cluster/health", params={"wait_for_status": "yellow", "timeout": "30s"}
        )
    except ElasticsearchRefused as exc:  # 408 when still not yellow, 503 while starting
        return f"answered {exc.status} to a health check ({exc.reason or exc.error_type})"
    if health.get("timed_out") or health.get("status") == "red":
        return f"is {health.get('status', 'unknown')}, not ready for writes"
    return None


class ElasticsearchUnavailable(UserError):
    """The cluster stayed unreachable or busy for longer than the retry budget. A UserError,
    so the CLI prints one line; the streaming job lets it fail the micro-batch, which Spark
    then re-runs from the same offsets."""


@dataclass(frozen=True)
class RetryBudget:
    """How long `bulk_index` keeps trying while the cluster is down or busy (connection
    errors, 429, 502-504): at most `retries` retries (None: no limit) and at most `seconds`
    since the chunk's first attempt (None: no limit), whichever ends first. The wait doubles
    from `initial_s` up to `max_s`. The batch publisher gives up after a few retries; the
    streaming job rides out an outage of minutes (docs/streaming.md)."""

    retries: int | None = 5
    seconds: float | None = None
    initial_s: float = 0.5
    max_s: float = 15.0

    def __post_init__(self) -> None:
        if self.retries is None and self.seconds is None:
            raise ValueError("a retry budget needs a limit: retries, seconds or both")


@dataclass
class BulkReport:
    indexed: int = 0
    retries: int = 0


def bulk_index(
    client: ElasticsearchHttp,
    alias: str,
    documents: Iterable[tuple[str, dict[str, Any]]],
    *,
    chunk_size: int = 2000,
    budget: RetryBudget = RetryBudget(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> BulkReport:
    """Index (id, source) pairs into `alias` with the bulk API. Items the cluster is too busy
    for (429/5xx), whole requests it answers so, and requests that fail in transit are retried
    with exponential back-off within `budget`, then ElasticsearchUnavailable; an item refused
    for its content (e.g. a mapping conflict) stops the run at once (UserError)."""
    report = BulkReport()
    chunk: list[tuple[str, dict[str, Any]]] = []

    def send(pending: list[tuple[str, dict[str, Any]]]) -> None:
        delay, started, attempt = budget.initial_s, clock(), 0
        while True:
            actions: list[dict[str, Any]] = []
            for doc_id, source in pending:
                actions.append({"index": {"_index": alias, "_id": doc_id}})
                actions.append(source)
            try:
                # After a failure, write only once the cluster has recovered its state: a
                # node that has just restarted can take a bulk request before it knows its
                # aliases, and then refuses the alias as an index name (400, not retryable).
                problem = _not_ready(client) if attempt else None
                if problem is None:
                    response = client.bulk(actions)
            except ElasticsearchUnreachable as exc:
                problem = f"did not answer ({exc})"
            except ElasticsearchRefused as exc:
                if exc.status not in RETRYABLE_STATUSES:
                    raise UserError(
                        f"bulk request to {alias} failed ({exc.status}: "
                        f"{exc.reason or exc.error_type})"
                    ) from None
                problem = f"answered {exc.status} ({exc.reason or exc.error_type})"
            if problem is None:
                retry: list[tuple[str, dict[str, Any]]] = []
                for (doc_id, source), item in zip(pending, response["items"], strict=True):
                    outcome = item["index"]
                    status = int(outcome.get("status", 500))
                    if status < 300:
                        report.indexed += 1
                    elif status in RETRYABLE_STATUSES:
                        retry.append((doc_id, source))
                    else:
                        error = outcome.get("error", {})
                        raise UserError(
                            f"{alias} refused document {doc_id} ({status} "
                            f"{error.get('type', '')}: {error.get('reason', '')}); "
                            "run `fraudwatch es apply` so the index has the fraudwatch mapping"
                        )
                if not retry:
                    return
                pending = retry
                problem = f"still refused {len(retry)} documents as busy"
            out_of_retries = budget.retries is not None and attempt >= budget.retries
            out_of_time = budget.seconds is not None and clock() + delay - started > budget.seconds
            if out_of_retries or out_of_time:
                raise ElasticsearchUnavailable(
                    f"Elasticsearch at {client.url} {problem} after {attempt} retries over "
                    f"{clock() - started:.0f} s; check --es-url / FRAUDWATCH_ELASTICSEARCH_URL "
                    "and that the cluster is up, then try again"
                )
            attempt += 1
            report.retries += 1
            sleep(delay)
            delay = min(delay * 2, budget.max_s)

    for item in documents:
        chunk.append(item)
        if len(chunk) >= chunk_size:
            send(chunk)
            chunk = []
    if chunk:
        send(chunk)
    return report
