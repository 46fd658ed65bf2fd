"""Alert hooks: Grafana and Watcher payloads drive the policy; dry-run, allow-list and the
circuit breaker hold automation back."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from fraudwatch.intervention.auth import signed_headers


def grafana_payload(*alerts: tuple[int, float]) -> dict[str, Any]:
    """Grafana's documented webhook contact point body, one firing alert per (user, score)."""
    return {
        "receiver": "fraudwatch-intervention",
        "status": "firing",
        "orgId": 1,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HighEnsembleScore", "user_id": str(user)},
                "annotations": {"summary": f"user {user} scores high"},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://grafana.invalid/alerting/grafana/abc/view",
                "fingerprint": f"fp{user}",
                "silenceURL": "http://grafana.invalid/alerting/silence/new",
                "dashboardURL": "",
                "panelURL": "",
                "values": {"score": score, "threshold": 1},
                "valueString": f"[ var='score' labels={{user_id={user}}} value={score} ]",
            }
            for user, score in alerts
        ],
        "groupLabels": {"alertname": "HighEnsembleScore"},
        "commonLabels": {"alertname": "HighEnsembleScore"},
        "commonAnnotations": {},
        "externalURL": "http://grafana.invalid/",
        "version": "1",
        "groupKey": '{}:{alertname="HighEnsembleScore"}',
        "truncatedAlerts": 0,
        "title": "[FIRING] HighEnsembleScore",
        "state": "alerting",
        "message": "fraudwatch alert",
    }


def watcher_payload(*hits: tuple[int, float]) -> dict[str, Any]:
    """The webhook action body docs/intervention.md tells a watch to send."""
    return {
        "watch_id": "fraudwatch-high-score",
        "payload": {
            "took": 3,
            "hits": {
                "total": {"value": len(hits), "relation": "eq"},
                "hits": [
                    {
                        "_index": "fraudwatch-scores",
                        "_id": f"doc{u}",
                        "_source": {"user_id": u, "ensemble_score": s},
                    }
                    for u, s in hits
                ],
            },
        },
    }


def post_signed(client: TestClient, path: str, body: dict[str, Any]):
    raw = json.dumps(body).encode()
    return client.post(
        path,
        content=raw,
        headers={
            "content-type": "application/json",
            **signed_headers(os.environ["FRAUDWATCH_HOOK_SECRET"], raw),
        },
    )


def state(client: TestClient, headers: dict[str, str], user: int) -> dict[str, bool]:
    return client.get(f"/v1/users/{user}", headers=headers).json()["state"]


def test_grafana_alert_locks_above_095_and_steps_up_above_08(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    body = grafana_payload((1, 0.97), (6, 0.85), (20, 0.5))
    response = client.post("/v1/hooks/grafana", json=body, headers=token_for("automation"))
    assert response.status_code == 200, response.text
    results = {o["user_id"]: (o["action"], o["result"]) for o in response.json()["outcomes"]}
    assert results == {1: ("lock", "applied"), 6: ("step_up", "applied"), 20: ("none", "no_action")}
    viewer = token_for("viewer")
    assert state(client, viewer, 1)["locked"] is True
    assert state(client, viewer, 6) == {"locked": False, "step_up": True}
    audit = client.get(
        "/v1/audit?subject_kind=account&subject_id=1", headers=token_for("admin")
    ).json()["items"]
    assert audit[0]["via"] == "hook:grafana" and audit[0]["alert_id"] == "fp1"
    assert audit[0]["role"] == "automation"


def test_watcher_payload_with_hmac_signature_triggers_the_policy(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    response = post_signed(client, "/v1/hooks/watcher", watcher_payload((2, 0.99), (7, 0.81)))
    assert response.status_code == 200, response.text
    outcomes = {o["user_id"]: o["action"] for o in response.json()["outcomes"]}
    assert outcomes == {2: "lock", 7: "step_up"}
    assert state(client, token_for("viewer"), 2)["locked"] is True


def test_a_bad_signature_or_no_credentials_is_refused(client: TestClient) -> None:
    raw = json.dumps(watcher_payload((2, 0.99))).encode()
    forged = client.post(
        "/v1/hooks/watcher",
        content=raw,
        headers={"content-type": "application/json", **signed_headers("guess", raw)},
    )
    assert forged.status_code == 401
    assert client.post("/v1/hooks/grafana", json=grafana_payload((1, 0.99))).status_code == 401


def test_dry_run_records_but_changes_nothing(make_client: Callable[..., TestClient]) -> None:
    client = make_client(FRAUDWATCH_DRY_RUN="true")
    response = post_signed(client, "/v1/hooks/grafana", grafana_payload((1, 0.99)))
    outcome = response.json()["outcomes"][0]
    assert outcome["result"] == "dry_run" and outcome["action"] == "lock"
    assert client.store.get_state("account", "1") == {}  # type: ignore[attr-defined]


def test_automation_never_locks_an_allow_listed_account(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(FRAUDWATCH_ALLOW_LIST="1,2")
    outcome = post_signed(client, "/v1/hooks/grafana", grafana_payload((1, 0.99))).json()
    assert outcome["outcomes"][0]["result"] == "refused"
    assert "allow-list" in outcome["outcomes"][0]["detail"]
    assert client.store.get_state("account", "1") == {}  # type: ignore[attr-defined]


def test_circuit_breaker_queues_locks_past_the_limit_for_human_approval(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(FRAUDWATCH_MAX_AUTOMATED_LOCKS="2")
    from fraudwatch.intervention.auth import create_token

    analyst = {"Authorization": "Bearer " + create_token(client.store, "analyst")[0]}  # type: ignore[attr-defined]

    def scraped() -> dict[str, float]:
        """The breaker's gauges as Prometheus scrapes them."""
        text = client.get("/metrics", headers=analyst).text
        return {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line.startswith(("fraudwatch_circuit_breaker_open", "fraudwatch_automated_locks"))
        }

    assert scraped() == {
        "fraudwatch_circuit_breaker_open": 0.0,
        "fraudwatch_automated_locks_in_window": 0.0,
    }
    body = grafana_payload((1, 0.99), (2, 0.99), (3, 0.99), (4, 0.99))
    outcomes = post_signed(client, "/v1/hooks/grafana", body).json()["outcomes"]
    assert [o["result"] for o in outcomes] == ["applied", "applied", "queued", "queued"]
    assert client.get("/v1/users/3", headers=analyst).json()["state"]["locked"] is False
    policy = client.get("/v1/policy", headers=analyst).json()
    assert policy["circuit_breaker"]["open"] is True
    assert scraped() == {
        "fraudwatch_circuit_breaker_open": 1.0,
        "fraudwatch_automated_locks_in_window": 2.0,
    }
    pending = client.get("/v1/approvals", headers=analyst).json()["items"]
    assert sorted(p["subject_id"] for p in pending) == ["3", "4"]
    approve = next(p for p in pending if p["subject_id"] == "3")
    done = client.post(
        f"/v1/approvals/{approve['id']}/approve",
        json={"reason": "checked the alert"},
        headers=analyst,
    )
    assert done.json()["result"] == "applied"
    assert client.get("/v1/users/3", headers=analyst).json()["state"]["locked"] is True
    twice = client.post(
        f"/v1/approvals/{approve['id']}/approve", json={"reason": "again"}, headers=analyst
    )
    assert twice.status_code == 409


def test_admin_changes_thresholds_at_run_time_and_it_is_audited(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    admin = token_for("admin")
    changed = client.put(
        "/v1/policy", json={"lock_at": 0.99, "reason": "fewer locks"}, headers=admin
    )
    assert changed.json()["lock_at"] == 0.99
    # user 2 scores 0.975 in the results: a lock under 0.95, a step-up under 0.99
    outcome = post_signed(client, "/v1/hooks/grafana", grafana_payload((2, 0.975))).json()
    assert outcome["outcomes"][0]["action"] == "step_up"
    audit = client.get("/v1/audit", headers=admin).json()["items"]
    assert any(e["action"] == "policy_change" and e["reason"] == "fewer locks" for e in audit)
    bad = client.put("/v1/policy", json={"lock_at": 0.5, "reason": "x"}, headers=admin)
    assert bad.status_code == 422 and "lock_at" in bad.json()["error"]


def test_malformed_alert_payloads_get_a_4xx_naming_the_problem(client: TestClient) -> None:
    missing = post_signed(client, "/v1/hooks/grafana", {"alerts": [{"labels": {}}]})
    assert missing.status_code == 422 and "user_id" in missing.json()["error"]
    wrong = post_signed(
        client,
        "/v1/hooks/watcher",
        {"payload": {"hits": {"hits": [{"_source": {"user_id": "x", "ensemble_score": 0.9}}]}}},
    )
    assert wrong.status_code == 422 and "whole number" in wrong.json()["error"]
    unknown = post_signed(client, "/v1/hooks/grafana", grafana_payload((999, 0.99)))
    assert unknown.json()["outcomes"][0]["result"] == "refused"


def test_a_batch_over_hooks_max_alerts_is_a_413_and_nothing_is_done(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(FRAUDWATCH_HOOK_MAX_ALERTS="3")
    body = grafana_payload((1, 0.99), (2, 0.99), (3, 0.99), (4, 0.99))
    response = post_signed(client, "/v1/hooks/grafana", body)
    assert response.status_code == 413, response.text
    assert "hooks.max_alerts" in response.json()["error"]
    assert client.store.get_state("account", "1") == {}  # type: ignore[attr-defined]
    fine = post_signed(client, "/v1/hooks/grafana", grafana_payload((1, 0.99), (2, 0.99)))
    assert fine.status_code == 200


def test_a_full_notification_fits_the_hooks_body_limit_not_the_apis(
    make_client: Callable[..., TestClient],
) -> None:
    """hooks.max_alerts alerts in one notification are answered alert by alert, although the
    body is far above the API's 64 KiB; past hooks.max_body_bytes the hook says which limit."""
    client = make_client()
    body = grafana_payload(*((100_000 + n, 0.99) for n in range(1000)))
    assert len(json.dumps(body)) > 65536
    response = post_signed(client, "/v1/hooks/grafana", body)
    assert response.status_code == 200, response.text
    assert len(response.json()["outcomes"]) == 1000
    small = make_client(FRAUDWATCH_HOOK_MAX_BODY_BYTES="2048")
    nine = grafana_payload(*((n, 0.99) for n in range(9)))
    refused = post_signed(small, "/v1/hooks/grafana", nine)
    assert refused.status_code == 413 and "hooks.max_body_bytes" in refused.json()["error"]
    api = small.post("/v1/accounts/1/lock", json={"reason": "x" * 70_000})
    assert api.status_code == 413 and "server.max_body_bytes" in api.json()["error"]


def test_repeated_alerts_while_the_breaker_is_open_queue_one_approval(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(FRAUDWATCH_MAX_AUTOMATED_LOCKS="0")  # open from the start
    first = post_signed(client, "/v1/hooks/grafana", grafana_payload((1, 0.99))).json()
    repeat = grafana_payload((1, 0.99))
    repeat["alerts"][0]["fingerprint"] = "fp1-again"  # another alert about the same account
    second = post_signed(client, "/v1/hooks/grafana", repeat).json()
    (a,), (b,) = first["outcomes"], second["outcomes"]
    assert a["result"] == b["result"] == "queued"
    assert a["approval_id"] == b["approval_id"]
    assert "already queued" in b["detail"]
    assert len(client.store.list_approvals()) == 1  # type: ignore[attr-defined]
