"""Replays cannot act twice: signed hooks carry a timestamp and a nonce (5-minute window,
nonces remembered in the state store), an alert firing (fingerprint + startsAt) is handled
once, and automation does not undo what a person decided about an account."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from fraudwatch.intervention.auth import sign, signed_headers
from test_intervention_hooks import grafana_payload, post_signed


def raw_post(client: TestClient, path: str, raw: bytes, headers: dict[str, str]):
    return client.post(path, content=raw, headers={"content-type": "application/json", **headers})


def test_a_replayed_signed_request_is_refused(client: TestClient) -> None:
    raw = json.dumps(grafana_payload((1, 0.99))).encode()
    headers = signed_headers(os.environ["FRAUDWATCH_HOOK_SECRET"], raw)
    first = raw_post(client, "/v1/hooks/grafana", raw, headers)
    assert first.status_code == 200 and first.json()["outcomes"][0]["result"] == "applied"
    replay = raw_post(client, "/v1/hooks/grafana", raw, headers)
    assert replay.status_code == 401 and "already used" in replay.json()["error"]


def test_a_signature_outside_the_window_or_without_a_nonce_is_refused(
    client: TestClient,
) -> None:
    secret = os.environ["FRAUDWATCH_HOOK_SECRET"]
    raw = json.dumps(grafana_payload((1, 0.99))).encode()
    stale = signed_headers(secret, raw, timestamp=int(time.time()) - 301)
    answer = raw_post(client, "/v1/hooks/grafana", raw, stale)
    assert answer.status_code == 401 and "300s" in answer.json()["error"]
    body_only = {"X-Fraudwatch-Signature": sign(secret, raw, int(time.time()), "")}
    answer = raw_post(client, "/v1/hooks/grafana", raw, body_only)
    assert answer.status_code == 401 and "X-Fraudwatch-Nonce" in answer.json()["error"]
    moved = {**signed_headers(secret, raw), "X-Fraudwatch-Timestamp": str(int(time.time()) + 1)}
    assert raw_post(client, "/v1/hooks/grafana", raw, moved).status_code == 401
    assert client.store.get_state("account", "1") == {}  # type: ignore[attr-defined]


def test_the_same_alert_firing_is_handled_once(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    automation = token_for("automation")
    body = grafana_payload((1, 0.99))
    first = client.post("/v1/hooks/grafana", json=body, headers=automation).json()
    assert first["outcomes"][0]["result"] == "applied"
    again = client.post("/v1/hooks/grafana", json=body, headers=automation).json()
    (outcome,) = again["outcomes"]
    assert outcome["result"] == "no_change" and "duplicate" in outcome["detail"]
    entries = client.store.audit_entries(subject_id="1")  # type: ignore[attr-defined]
    assert [e["result"] for e in entries] == ["applied", "no_change"]  # both audited


def test_automation_does_not_relock_an_account_an_analyst_unlocked(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    automation, analyst = token_for("automation"), token_for("analyst")
    body = grafana_payload((1, 0.99))
    client.post("/v1/hooks/grafana", json=body, headers=automation)
    unlocked = client.post(
        "/v1/accounts/1/unlock", json={"reason": "customer verified"}, headers=analyst
    )
    assert unlocked.json()["result"] == "applied"
    # the same alert still firing, as a new notification (new fingerprint: a relabelled rule)
    body["alerts"][0]["fingerprint"] = "fp1-repeat"
    (outcome,) = client.post("/v1/hooks/grafana", json=body, headers=automation).json()["outcomes"]
    assert outcome["result"] == "refused" and "human override" in outcome["detail"], outcome
    assert client.store.get_state("account", "1") == {"locked": False}  # type: ignore[attr-defined]


def test_after_the_cooldown_only_a_new_alert_acts_again(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    admin, automation = token_for("admin"), token_for("automation")
    client.put(
        "/v1/policy", json={"human_override_seconds": 0, "reason": "no cooldown"}, headers=admin
    )
    client.post("/v1/accounts/1/unlock", json={"reason": "checked"}, headers=admin)
    same = grafana_payload((1, 0.99))  # started firing before the admin acted
    (outcome,) = client.post("/v1/hooks/grafana", json=same, headers=automation).json()["outcomes"]
    assert outcome["result"] == "refused" and "same alert" in outcome["detail"], outcome
    later = grafana_payload((1, 0.99))
    later["alerts"][0]["startsAt"] = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    later["alerts"][0]["fingerprint"] = "fp1-new"
    (outcome,) = client.post("/v1/hooks/grafana", json=later, headers=automation).json()["outcomes"]
    assert outcome["result"] == "applied", outcome


def test_signed_hooks_still_work_with_fresh_nonces(client: TestClient) -> None:
    for user in (1, 2):
        answer = post_signed(client, "/v1/hooks/grafana", grafana_payload((user, 0.99)))
        assert answer.status_code == 200
        assert answer.json()["outcomes"][0]["result"] == "applied"
