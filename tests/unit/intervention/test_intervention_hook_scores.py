"""The hooks act on the score in the service's own results: the score an alert states is a
hint, and a mismatch is written to the audit entry."""

from __future__ import annotations

from fastapi.testclient import TestClient
from scored_fixture import user_score
from test_intervention_hooks import grafana_payload, post_signed, watcher_payload


def test_a_high_label_does_not_lock_a_low_scoring_user(client: TestClient) -> None:
    assert user_score(30) < 0.3
    response = post_signed(client, "/v1/hooks/grafana", grafana_payload((30, 0.99)))
    (outcome,) = response.json()["outcomes"]
    assert (outcome["action"], outcome["result"]) == ("none", "no_action"), outcome
    assert outcome["score"] == user_score(30) and outcome["alert_score"] == 0.99
    assert client.store.get_state("account", "30") == {}  # type: ignore[attr-defined]
    (entry,) = client.store.audit_entries(subject_id="30")  # type: ignore[attr-defined]
    assert "score mismatch" in entry["detail"]
    assert "0.990" in entry["detail"] and f"{user_score(30):.3f}" in entry["detail"]


def test_a_low_label_on_a_high_scoring_user_acts_on_the_results(client: TestClient) -> None:
    response = post_signed(client, "/v1/hooks/watcher", watcher_payload((2, 0.1)))
    (outcome,) = response.json()["outcomes"]
    assert (outcome["action"], outcome["result"]) == ("lock", "applied"), outcome
    (entry,) = client.store.audit_entries(subject_id="2")  # type: ignore[attr-defined]
    assert entry["result"] == "applied" and "score mismatch" in entry["detail"]


def test_an_alert_without_a_score_uses_the_results(client: TestClient) -> None:
    payload = grafana_payload((1, 0.99))
    payload["alerts"][0]["values"] = {"A": 1, "B": 0}  # no usable score in the alert
    (outcome,) = post_signed(client, "/v1/hooks/grafana", payload).json()["outcomes"]
    assert (outcome["action"], outcome["result"]) == ("lock", "applied"), outcome
    assert "alert_score" not in outcome or outcome["alert_score"] is None
    (entry,) = client.store.audit_entries(subject_id="1")  # type: ignore[attr-defined]
    assert entry["detail"] == ""  # nothing to compare, no mismatch noted


def test_a_matching_label_notes_no_mismatch(client: TestClient) -> None:
    post_signed(client, "/v1/hooks/grafana", grafana_payload((6, user_score(6))))
    (entry,) = client.store.audit_entries(subject_id="6")  # type: ignore[attr-defined]
    assert entry["action"] == "step_up" and entry["detail"] == ""
