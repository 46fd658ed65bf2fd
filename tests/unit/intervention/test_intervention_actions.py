"""Interventions through the API: lock/unlock, block/release, step-up, idempotency, history."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient


def test_lock_then_unlock_changes_the_account_and_the_history(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    h = token_for("analyst")
    lock = client.post("/v1/accounts/2/lock", json={"reason": "ATO", "alert_id": "a-1"}, headers=h)
    assert lock.status_code == 200 and lock.json()["result"] == "applied"
    assert client.get("/v1/users/2", headers=h).json()["state"] == {
        "locked": True,
        "step_up": False,
    }
    again = client.post("/v1/accounts/2/lock", json={"reason": "again"}, headers=h)
    assert again.json()["result"] == "no_change"
    client.post("/v1/accounts/2/unlock", json={"reason": "customer verified"}, headers=h)
    history = client.get("/v1/users/2/interventions", headers=h).json()
    assert history["state"]["locked"] is False
    assert [e["action"] for e in history["items"]] == ["unlock", "lock", "lock"]
    assert history["items"][-1]["alert_id"] == "a-1"
    assert history["items"][-1]["reason"] == "ATO"


def test_step_up_and_transaction_block_release(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    h = token_for("analyst")
    client.post("/v1/accounts/4/step-up", json={"reason": "unusual hour"}, headers=h)
    assert client.get("/v1/users/4", headers=h).json()["state"]["step_up"] is True
    client.post("/v1/accounts/4/step-up/clear", json={"reason": "passed"}, headers=h)
    assert client.get("/v1/users/4", headers=h).json()["state"]["step_up"] is False
    client.post("/v1/transactions/401/block", json={"reason": "card testing"}, headers=h)
    assert client.get("/v1/transactions/401", headers=h).json()["blocked"] is True
    blocked = client.get("/v1/anomalies?level=transactions&status=blocked", headers=h).json()
    assert [i["tx_id"] for i in blocked["items"]] == [401]
    client.post("/v1/transactions/401/release", json={"reason": "false positive"}, headers=h)
    assert client.get("/v1/transactions/401", headers=h).json()["blocked"] is False


def test_a_retry_with_the_same_idempotency_key_acts_once(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    h = {**token_for("analyst"), "Idempotency-Key": "retry-1"}
    first = client.post("/v1/accounts/5/lock", json={"reason": "r"}, headers=h)
    second = client.post("/v1/accounts/5/lock", json={"reason": "r"}, headers=h)
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    audit = client.get("/v1/audit?subject_id=5", headers=token_for("admin")).json()["items"]
    assert len([e for e in audit if e["action"] == "lock"]) == 1
    other = client.post("/v1/accounts/5/unlock", json={"reason": "r"}, headers=h)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()["error"]


def test_anomalies_are_ranked_filtered_and_paged(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    h = token_for("viewer")
    page = client.get("/v1/anomalies?page_size=5", headers=h).json()
    assert page["total"] == 40 and len(page["items"]) == 5
    scores = [i["ensemble_score"] for i in page["items"]]
    assert scores == sorted(scores, reverse=True) and all("user_id" in i for i in page["items"])
    page2 = client.get("/v1/anomalies?page_size=5&page=2", headers=h).json()
    assert page2["items"][0]["rank"] == 6
    ato = client.get("/v1/anomalies?scenario=account_takeover", headers=h).json()
    assert {i["user_id"] for i in ato["items"]} == {1, 2, 3}
    high = client.get("/v1/anomalies?score_min=0.9", headers=h).json()
    assert all(i["ensemble_score"] >= 0.9 for i in high["items"]) and high["total"] == 5
    persona = client.get("/v1/anomalies?persona=loose-passive", headers=h).json()
    assert {i["persona"] for i in persona["items"]} == {"loose-passive"}
    txs = client.get("/v1/anomalies?level=transactions&type=payment&hour=4", headers=h).json()
    assert txs["items"] and all(i["tx_type"] == "payment" and i["hour"] == 4 for i in txs["items"])
    client.post("/v1/accounts/1/lock", json={"reason": "r"}, headers=token_for("analyst"))
    locked = client.get("/v1/anomalies?status=locked", headers=h).json()
    assert [i["user_id"] for i in locked["items"]] == [1]
    open_ = client.get("/v1/anomalies?status=open&page_size=1", headers=h).json()
    assert open_["total"] == 39 and open_["items"][0]["user_id"] == 2


def test_user_detail_has_profile_scores_reasons_and_transactions(
    client: TestClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    user = client.get("/v1/users/1", headers=token_for("viewer")).json()
    assert user["scores"]["ensemble_score"] == 1.0 and user["scores"]["lstm_score"] is None
    assert user["reasons"] == ["amount_max far above persona", "new country"]
    assert user["features"]["amount_max"] == 510.0
    assert len(user["transactions"]) == 5
    assert "label" not in user["features"]
