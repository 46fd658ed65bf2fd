"""An Idempotency-Key left `pending` by a process that died mid-request is a lease that runs
out: a retry after IDEMPOTENCY_LEASE_SECONDS acts (once) instead of answering 409 forever."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.idempotency import request_fingerprint
from fraudwatch.intervention.stores.repository import IDEMPOTENCY_LEASE_SECONDS

BODY = {"reason": "retry after a crash", "alert_id": None}


def crashed_claim(client: TestClient, actor: str, key: str, seconds_ago: float) -> None:
    """What a request killed after claiming its key leaves in the store: a pending claim."""
    fingerprint = request_fingerprint("POST", "/v1/accounts/1/lock", BODY)
    claimed = client.store.claim_idempotency(  # type: ignore[attr-defined]
        actor, key, fingerprint, now=time.time() - seconds_ago
    )
    assert claimed is None


def test_a_key_left_pending_by_a_crash_can_be_retried_after_the_lease(
    client: TestClient,
) -> None:
    token, record = create_token(client.store, "analyst")  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "crash-1"}
    crashed_claim(client, f"token:{record['token_id']}", "crash-1", IDEMPOTENCY_LEASE_SECONDS + 5)
    retry = client.post("/v1/accounts/1/lock", json=BODY, headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.json()["result"] == "applied"
    again = client.post("/v1/accounts/1/lock", json=BODY, headers=headers)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    locks = [e for e in client.store.audit_entries() if e["action"] == "lock"]  # type: ignore[attr-defined]
    assert len(locks) == 1


def test_a_key_still_within_its_lease_is_a_409(client: TestClient) -> None:
    token, record = create_token(client.store, "analyst")  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "running-1"}
    crashed_claim(client, f"token:{record['token_id']}", "running-1", 0)
    running = client.post("/v1/accounts/1/lock", json=BODY, headers=headers)
    assert running.status_code == 409 and "still running" in running.json()["error"]
