"""Bulk writes of scored events to Elasticsearch, idempotent and patient.

Talks to the bulk API over HTTP with httpx (elasticsearch-py 7.13, the last client that accepts
the 7.10 OSS node, does not import under numpy 2). Every document has a deterministic id
(`<tx_id>:<model_version>`), so a retried request or a replayed micro-batch overwrites instead
of duplicating. A cluster that is down, overloaded (429) or briefly unavailable (502-504) is
retried with exponential back-off for up to `retry_for_s` seconds; a document refused for its
content (a mapping conflict) fails at once with the reason.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from fraudwatch.errors import UserError

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class ElasticsearchUnavailable(RuntimeError):
    """The cluster stayed unreachable or busy for longer than the retry budget."""


def _auth() -> tuple[str, str] | None:
    username = os.environ.get("FRAUDWATCH_ES_USERNAME")
    if not username:
        return None
    password = os.environ.get("FRAUDWATCH_ES_PASSWORD")
    if not password:
        raise UserError(
            "FRAUDWATCH_ES_USERNAME is set but FRAUDWATCH_ES_PASSWORD is not; set both or neither"
        )
    return username, password


@dataclass
class BulkOutcome:
    indexed: int = 0
    retries: int = 0


class ElasticsearchWriter:
    def __init__(
        self,
        url: str,
        index: str,
        *,
        retry_for_s: float = 300.0,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 15.0,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"--es-url {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.index = index
        self.retry_for_s = retry_for_s
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._client = httpx.Client(base_url=self.url, timeout=timeout_s, auth=_auth())

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, retried with back-off while the cluster is unreachable or busy."""
        delay, deadline, attempt = self.initial_backoff_s, time.monotonic() + self.retry_for_s, 0
        while True:
            try:
                response = self._client.request(method, path, **kwargs)
                if response.status_code not in RETRYABLE_STATUSES:
                    return response
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                problem = type(exc).__name__
            attempt += 1
            if time.monotonic() + delay > deadline:
                raise ElasticsearchUnavailable(
                    f"Elasticsearch at {self.url} still failing ({problem}) after {attempt} "
                    f"attempts over {self.retry_for_s:.0f} s; the micro-batch will be retried"
                )
            self._sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)

    def ensure_write_index(self) -> None:
        """Make `index` usable: an existing index or alias is left alone; otherwise the first
        rollover index `<index>-000001` is created as the alias's write index (the index
        template `fraudwatch es apply` installs then gives it the fraudwatch mapping)."""
        if self._request("HEAD", f"/{self.index}").status_code == 200:
            return
        response = self._request(
            "PUT",
            f"/{self.index}-000001",
            json={"aliases": {self.index: {"is_write_index": True}}},
        )
        if response.status_code >= 300 and "resource_already_exists" not in response.text:
            raise UserError(
                f"could not create {self.index}-000001 ({response.status_code}: "
                f"{response.text[:300]}); check the index name and the cluster"
            )

    def bulk(self, documents: Sequence[tuple[str, dict[str, Any]]]) -> BulkOutcome:
        """Index (id, source) pairs; items refused as busy are re-sent until the budget ends."""
        outcome = BulkOutcome()
        pending = list(documents)
        delay, deadline = self.initial_backoff_s, time.monotonic() + self.retry_for_s
        while pending:
            lines = []
            for doc_id, source in pending:
                lines.append(json.dumps({"index": {"_index": self.index, "_id": doc_id}}))
                lines.append(json.dumps(source, separators=(",", ":")))
            response = self._request(
                "POST",
                "/_bulk",
                content=("\n".join(lines) + "\n").encode(),
                headers={"Content-Type": "application/x-ndjson"},
            )
            if response.status_code >= 300:
                raise UserError(
                    f"bulk request to {self.index} refused ({response.status_code}: "
                    f"{response.text[:300]})"
                )
            retry = []
            for pair, item in zip(pending, response.json()["items"], strict=True):
                result = item["index"]
                status = int(result.get("status", 500))
                if status < 300:
                    outcome.indexed += 1
                elif status in RETRYABLE_STATUSES:
                    retry.append(pair)
                else:
                    error = result.get("error", {})
                    raise UserError(
                        f"{self.index} refused document {pair[0]} ({status} "
                        f"{error.get('type', '')}: {error.get('reason', '')}); run "
                        "`fraudwatch es apply` so the index has the fraudwatch mapping"
                    )
            if retry:
                outcome.retries += 1
                if time.monotonic() + delay > deadline:
                    raise ElasticsearchUnavailable(
                        f"{len(retry)} documents still refused as busy by {self.url}"
                    )
                self._sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
            pending = retry
        return outcome

    def refresh(self) -> None:
        self._request("POST", f"/{self.index}/_refresh")

    def count(self) -> int:
        response = self._request("GET", f"/{self.index}/_count")
        return int(response.json()["count"]) if response.status_code == 200 else 0
