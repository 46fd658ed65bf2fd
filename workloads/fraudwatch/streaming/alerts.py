"""Forward high-scoring events to the intervention service's Watcher hook.

The body is the shape `POST /v1/hooks/watcher` documents (a Watcher webhook action carrying
search hits), so the service needs nothing new: `{"watch_id": "fraudwatch-stream",
"payload": {"hits": {"hits": [{"_id": <document id>, "_source": {...}}]}}}`. The bearer
token (role automation) comes from FRAUDWATCH_INTERVENTION_TOKEN.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from fraudwatch.errors import UserError

WATCH_ID = "fraudwatch-stream"
HOOK_PATH = "/v1/hooks/watcher"
TOKEN_VARIABLE = "FRAUDWATCH_INTERVENTION_TOKEN"


class InterventionUnavailable(RuntimeError):
    """The intervention service did not accept the alerts within the retry budget."""


def watcher_body(index: str, hits: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "watch_id": WATCH_ID,
        "payload": {
            "hits": {
                "total": len(hits),
                "hits": [{"_index": index, "_id": i, "_source": s} for i, s in hits],
            }
        },
    }


class AlertForwarder:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        retry_for_s: float = 120.0,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        token = token or os.environ.get(TOKEN_VARIABLE)
        if not token:
            raise UserError(
                f"--intervention-url needs a token: set {TOKEN_VARIABLE} to an automation "
                "token (`fraudwatch tokens create --role automation`)"
            )
        if not base_url.startswith(("http://", "https://")):
            raise UserError(f"--intervention-url {base_url!r} must start with http(s)://")
        self.url = base_url.rstrip("/") + HOOK_PATH
        self.retry_for_s = retry_for_s
        self._sleep = sleep
        self._client = httpx.Client(timeout=timeout_s, headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._client.close()

    def forward(self, index: str, hits: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """POST the hits; retry while the service is down or busy; the service's answer."""
        if not hits:
            return {"outcomes": []}
        body = watcher_body(index, hits)
        delay, deadline = 0.5, time.monotonic() + self.retry_for_s
        while True:
            try:
                response = self._client.post(self.url, json=body)
                if response.status_code < 300:
                    return dict(response.json())
                if response.status_code in (401, 403, 422):
                    raise UserError(
                        f"the intervention service refused the alerts ({response.status_code}: "
                        f"{response.text[:300]}); check {TOKEN_VARIABLE} has role automation"
                    )
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                problem = type(exc).__name__
            if time.monotonic() + delay > deadline:
                raise InterventionUnavailable(
                    f"{self.url} still failing ({problem}) after {self.retry_for_s:.0f} s"
                )
            self._sleep(delay)
            delay = min(delay * 2, 15.0)
