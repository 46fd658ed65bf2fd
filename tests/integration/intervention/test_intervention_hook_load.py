"""A large alert batch does not stop the service answering: the hooks work off the event
loop, so `/health` (the liveness probe) is answered while a batch is being processed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.results import ScoredResults
from live_service import running_service
from scored_fixture import N_USERS, write_scored


class GatedResults(ScoredResults):
    """The real Parquet reader with a gate in the hook's first account lookup: it announces
    that a batch is in flight and holds the batch there until the test lets it go. No
    clock is involved: the test orders the requests with the two events."""

    def __init__(self, scored_dir: Path) -> None:
        super().__init__(scored_dir)
        self.batch_in_flight = threading.Event()
        self.release = threading.Event()

    def user(self, user_id: int) -> dict[str, Any] | None:
        if not self.batch_in_flight.is_set():
            self.batch_in_flight.set()
            self.release.wait(timeout=300)
        return super().user(user_id)


def big_batch(size: int) -> dict[str, Any]:
    return {
        "alerts": [
            {
                "status": "firing",
                "labels": {"user_id": str(i % N_USERS + 1)},
                "values": {"score": 0.5},
                "fingerprint": f"fp{i}",
                "startsAt": "2026-01-01T00:00:00Z",
            }
            for i in range(size)
        ]
    }


@pytest.mark.parametrize("path", ["/v1/hooks/grafana"])
def test_health_answers_while_a_300_alert_batch_is_in_flight(tmp_path: Path, path: str) -> None:
    scored = write_scored(tmp_path / "scored")
    results = GatedResults(scored)
    with running_service(scored, tmp_path / "state.sqlite3", results=results) as (base, store):
        token, _ = create_token(store, "automation")
        answer: dict[str, httpx.Response] = {}

        def post_batch() -> None:
            answer["batch"] = httpx.post(
                f"{base}{path}",
                json=big_batch(300),
                headers={"Authorization": f"Bearer {token}"},
                timeout=300,
            )

        poster = threading.Thread(target=post_batch)
        poster.start()
        try:
            assert results.batch_in_flight.wait(timeout=120), "the batch never started"
            try:
                health: httpx.Response | None = httpx.get(f"{base}/health", timeout=30)
            except httpx.TimeoutException:
                health = None  # the event loop was blocked by the batch
            still_in_flight = not results.release.is_set() and poster.is_alive()
        finally:
            results.release.set()
            poster.join(timeout=300)
        assert health is not None and health.status_code == 200, "no /health during the batch"
        assert still_in_flight
        assert answer["batch"].status_code == 200, answer["batch"].text
        assert len(answer["batch"].json()["outcomes"]) == 300
