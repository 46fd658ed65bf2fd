"""One bad alert in a batch never drops or half-applies the others and never answers 5xx:
each alert gets its own outcome (applied / no_change / refused / queued / invalid, with the
reason), and every received alert is audited, invalid ones included."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fraudwatch.intervention.audit import verify_chain
from test_intervention_hooks import grafana_payload, post_signed, watcher_payload


def with_alert(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The payload with its last alert changed (labels/annotations merged, None deletes)."""
    alert = payload["alerts"][-1]
    for key, value in changes.items():
        if isinstance(value, dict):
            merged = {**alert.get(key, {}), **value}
            alert[key] = {k: v for k, v in merged.items() if v is not None}
        else:
            alert[key] = value
    return payload


BAD_ALERTS = {
    "39-digit user_id": {"labels": {"user_id": "1" * 39}},
    "60-digit user_id": {"labels": {"user_id": "9" * 60}},
    "missing user_id": {"labels": {"user_id": None}},
    "arabic-indic digits": {"labels": {"user_id": "١٦٤"}},
    "underscores in the id": {"labels": {"user_id": "1_6_4"}},
    "negative id": {"labels": {"user_id": "-5"}},
    "true as a score": {"labels": {"ensemble_score": True}},
    "score as text": {"labels": {"ensemble_score": "high"}},
    "alert_id too long": {"fingerprint": "f" * 60_000},
    "alert not an object": None,
}


@pytest.mark.parametrize("bad", list(BAD_ALERTS), ids=list(BAD_ALERTS))
def test_one_bad_alert_does_not_stop_the_valid_one(
    make_client: Callable[..., TestClient], bad: str
) -> None:
    client = make_client()  # a 100 KB alert fits hooks.max_body_bytes
    payload = grafana_payload((1, 0.99), (2, 0.99))
    if BAD_ALERTS[bad] is None:
        payload["alerts"][-1] = "not an alert"
    else:
        with_alert(payload, **BAD_ALERTS[bad])
    response = post_signed(client, "/v1/hooks/grafana", payload)
    assert response.status_code == 200, response.text
    first, second = response.json()["outcomes"]
    assert (first["user_id"], first["action"], first["result"]) == (1, "lock", "applied")
    assert second["result"] == "invalid" and second["index"] == 1, second
    assert second["detail"].startswith("alerts[1]"), second
    assert len(second.get("alert_id", "")) <= 200
    assert client.store.get_state("account", "1") == {"locked": True}  # type: ignore[attr-defined]
    assert client.store.get_state("account", "2") == {}  # type: ignore[attr-defined]
    entries = client.store.audit_entries()  # type: ignore[attr-defined]
    invalid = [e for e in entries if e["result"] == "invalid"]
    assert len(invalid) == 1 and invalid[0]["detail"] == second["detail"]
    assert invalid[0]["seq"] == second["audit_seq"]
    assert all(len(e["alert_id"] or "") <= 200 for e in entries)


def test_a_bad_user_id_on_the_watcher_hook_is_an_invalid_hit_not_a_500(
    client: TestClient,
) -> None:
    payload = watcher_payload((2, 0.99), (3, 0.99))
    payload["payload"]["hits"]["hits"][1]["_source"]["user_id"] = int("7" * 45)
    response = post_signed(client, "/v1/hooks/watcher", payload)
    assert response.status_code == 200, response.text
    first, second = response.json()["outcomes"]
    assert first["result"] == "applied" and second["result"] == "invalid"
    assert "whole number" in second["detail"]


def test_a_lone_surrogate_in_the_summary_is_escaped_and_the_alert_acts(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    payload = grafana_payload((1, 0.99), (2, 0.99))
    payload["alerts"][1]["annotations"]["summary"] = "bad \ud800 text"
    payload["alerts"][1]["fingerprint"] = "fp\udfff"
    raw = json.dumps(payload)  # ensure_ascii: the surrogate travels as \\ud800
    assert "\\ud800" in raw
    response = post_signed(client, "/v1/hooks/grafana", json.loads(raw))
    assert response.status_code == 200, response.text
    assert [o["result"] for o in response.json()["outcomes"]] == ["applied", "applied"]
    entries = client.store.audit_entries()  # type: ignore[attr-defined]
    assert any("bad \\ud800 text" in e["reason"] for e in entries)
    assert verify_chain(entries, client.store.audit_head()).ok  # type: ignore[attr-defined]
    verified = client.get("/v1/audit/verify", headers=token_for("admin"))
    assert verified.status_code == 200 and verified.json()["ok"] is True


def test_a_batch_of_only_bad_alerts_is_a_422_with_every_alert_audited(client: TestClient) -> None:
    payload = {"alerts": [{"labels": {}}, {"labels": {"user_id": "1e3"}}]}
    response = post_signed(client, "/v1/hooks/grafana", payload)
    assert response.status_code == 422, response.text
    body = response.json()
    assert "user_id" in body["error"]
    assert [o["result"] for o in body["answer"]["outcomes"]] == ["invalid", "invalid"]
    entries = client.store.audit_entries()  # type: ignore[attr-defined]
    assert [e["result"] for e in entries] == ["invalid", "invalid"]


@pytest.mark.parametrize("path", ["/v1/hooks/grafana", "/v1/hooks/watcher", "/v1/accounts/1/lock"])
def test_json_nested_5000_deep_is_a_4xx(
    client: TestClient, token_for: Callable[[str], dict[str, str]], path: str
) -> None:
    raw = b'{"alerts": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = client.post(
        path, content=raw, headers={**token_for("admin"), "content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert "error" in response.json()
    assert client.store.get_state("account", "1") == {}  # type: ignore[attr-defined]
