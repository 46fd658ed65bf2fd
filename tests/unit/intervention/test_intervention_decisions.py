"""Inline decisions, `POST /v1/decisions` (issue 19, items 1-3): the contract on really scored
data (allow, step_up, block), one score with the stream's function, 4xx on bad bodies, who
may call it, idempotency by tx_id, the safe default, load shedding and retention.

A small population is generated and scored by the real `fraudwatch generate` and
`fraudwatch score` (all four models) once per session; its model version is promoted in a
real registry. No timing is asserted: the time budget is made to run out by holding the
scorer's lock, and the overload by holding a request inside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from fastapi.testclient import TestClient
from fraudwatch.contract.events import MAX_ID
from fraudwatch.intervention.auth import PERMISSIONS, ROLES
from fraudwatch.intervention.decisions import DECISION_OF_ACTION, PERMISSION
from fraudwatch.models.bundle import ModelVersion
from fraudwatch.models.registry import ModelRegistry
from fraudwatch.streaming.job import RAW_TRANSACTION_SCHEMA, score_transactions, transaction_table
from fraudwatch.streaming.user_history import UserHistory
from test_intervention_admin import csrf_of
from typer.testing import CliRunner

Headers = Callable[[str], dict[str, str]]
#: Scores inline and in the stream's function agree to this (the same code on the same
#: inputs: in practice they are bit-identical).
TOLERANCE = 1e-9
#: ... and with the batch job's score of the same transaction, when the user's whole past is
#: in the kept history and the batch job sees no later transaction of the user (the data
#: set's last transactions): the deep models' float rounding, one row against a batch
#: (measured: at most 1.2e-8).
BATCH_TOLERANCE = 1e-6
#: Transactions before the cut are the users' history; the decided ones come after it.
DECIDED = 8
#: Large enough that a busy test machine never runs out of it by accident.
NO_BUDGET = "600000"


@dataclass
class RealModel:
    registry: Path
    version: ModelVersion
    past: pa.Table  # the transactions before the decided ones, oldest first
    decided: list[dict[str, Any]]  # the next DECIDED transactions as events (JSON-ready)
    batch_scores: dict[int, float]  # tx_id -> the batch job's ensemble score


def as_event(row: dict[str, Any]) -> dict[str, Any]:
    event = {k: row[k] for k in RAW_TRANSACTION_SCHEMA.names if row.get(k) is not None}
    event["ts"] = row["ts"].astimezone(UTC).isoformat()
    return event


@pytest.fixture(scope="session")
def real_model(tmp_path_factory: pytest.TempPathFactory) -> RealModel:
    from fraudwatch.cli import app

    root = tmp_path_factory.mktemp("decisions-model")
    raw, scored = root / "raw", root / "scored"
    runner = CliRunner()
    for args in (
        ["generate", "--out", str(raw), "--users", "300", "--transactions", "3000", "--seed", "7"],
        ["score", "--input", str(raw), "--out", str(scored), "--fit-users", "300"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    registry = ModelRegistry(root / "registry")
    (folder,) = (scored / "models").iterdir()
    version_id = registry.add(folder)
    registry.promote(version_id, "decisions test")
    table = (
        ds.dataset(raw / "transactions", partitioning="hive")
        .to_table()
        .select(RAW_TRANSACTION_SCHEMA.names)
        .cast(RAW_TRANSACTION_SCHEMA)
        .sort_by([("ts", "ascending"), ("tx_id", "ascending")])
    )
    cut = table.num_rows - DECIDED
    decided = [as_event(row) for row in table.slice(cut).to_pylist()]
    scored_tx = ds.dataset(scored / "transactions").to_table(columns=["tx_id", "ensemble_score"])
    batch_scores = dict(
        zip(scored_tx["tx_id"].to_pylist(), scored_tx["ensemble_score"].to_pylist(), strict=True)
    )
    return RealModel(
        registry.root,
        ModelVersion.load(registry.path(version_id)),
        table.slice(0, cut),
        decided,
        batch_scores,
    )


def seeded_history(path: Path, past: pa.Table) -> UserHistory:
    history = UserHistory(path, RAW_TRANSACTION_SCHEMA)
    history.remember(past)
    return history


def stream_scores(real: RealModel, folder: Path) -> list[float]:
    """The stream's function over the decided transactions, one micro-batch each, against a
    history that starts as the service's does and learns each transaction after scoring."""
    history = seeded_history(folder / "stream-history.duckdb", real.past)
    scores = []
    for event in real.decided:
        table = transaction_table([{**event, "ts": datetime.fromisoformat(event["ts"])}])
        scored = score_transactions(real.version, table, history)
        scores.append(float(scored["ensemble_score"][0].as_py()))
        history.remember(table)
    history.close()
    return scores


@pytest.fixture
def decider(
    make_client: Callable[..., TestClient], real_model: RealModel, tmp_path: Path
) -> Iterator[Callable[..., TestClient]]:
    """A service whose decisions use the real promoted model and a history seeded with the
    transactions before the decided ones."""
    made: list[TestClient] = []

    def make(seed: bool = True, **env: str) -> TestClient:
        history = tmp_path / f"service-history-{len(made)}.duckdb"
        if seed:
            seeded_history(history, real_model.past).close()
        settings = {
            "FRAUDWATCH_DECISIONS_REGISTRY": str(real_model.registry),
            "FRAUDWATCH_DECISIONS_HISTORY": str(history),
            "FRAUDWATCH_DECISIONS_BUDGET_MS": NO_BUDGET,
            **env,
        }
        client = make_client(**settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.app.state.decisions.close()  # type: ignore[attr-defined]


def decide(client: TestClient, headers: dict[str, str], event: dict[str, Any]) -> Any:
    return client.post("/v1/decisions", json=event, headers=headers)


def history_count(client: TestClient) -> int:
    engine = client.app.state.decisions  # type: ignore[attr-defined]
    with engine.scoring:
        return int(engine.history().count())


def metric(client: TestClient, name: str, **labels: str) -> float:
    registry = client.app.state.ctx.registry  # type: ignore[attr-defined]
    return float(registry.get_sample_value(name, labels) or 0.0)


# --- the contract on real scores -----------------------------------------------------------
def test_allow_step_up_and_block_by_the_policy_with_the_streams_scores(
    decider: Callable[..., TestClient],
    real_model: RealModel,
    token_for: Headers,
    tmp_path: Path,
) -> None:
    expected = stream_scores(real_model, tmp_path)
    ordered = sorted(expected)
    assert len(set(ordered)) == DECIDED, ordered  # distinct scores, so bands can split them
    # Thresholds between real scores: three allowed, three stepped up, two blocked.
    step_up_at = (ordered[2] + ordered[3]) / 2
    lock_at = (ordered[5] + ordered[6]) / 2
    client = decider(
        FRAUDWATCH_POLICY_STEP_UP_AT=str(step_up_at), FRAUDWATCH_POLICY_LOCK_AT=str(lock_at)
    )
    headers = token_for("decisions")
    answers = []
    for event, score in zip(real_model.decided, expected, strict=True):
        response = decide(client, headers, event)
        assert response.status_code == 200, response.text
        answer = response.json()
        answers.append(answer)
        # One score everywhere: the stream's function on the same transaction and history,
        # and the batch job's score of it.
        assert answer["score"] == pytest.approx(score, abs=TOLERANCE)
        batch = real_model.batch_scores[event["tx_id"]]
        assert answer["score"] == pytest.approx(batch, abs=BATCH_TOLERANCE)
        assert answer["fallback"] is False and answer["fallback_reason"] is None
        assert answer["model_version"] == real_model.version.version
        assert answer["thresholds"] == {"step_up_at": step_up_at, "lock_at": lock_at}
        assert (answer["tx_id"], answer["user_id"]) == (event["tx_id"], event["user_id"])
        assert isinstance(answer["reasons"], list)
        assert all(isinstance(r, str) and "σ" in r for r in answer["reasons"])
        band = "block" if score >= lock_at else "step_up" if score >= step_up_at else "allow"
        assert answer["decision"] == band
    assert sorted(a["decision"] for a in answers) == ["allow"] * 3 + ["block"] * 2 + ["step_up"] * 3
    # Every decision is recorded with the answer the caller got, and counted.
    for answer in answers:
        stored = client.store.get_decision(str(answer["tx_id"]))  # type: ignore[attr-defined]
        assert stored["answer"] == answer and stored["actor"].startswith("token:")
    for verdict in ("allow", "step_up", "block"):
        count = sum(a["decision"] == verdict for a in answers)
        assert metric(
            client, "fraudwatch_decisions_total", decision=verdict, fallback="false"
        ) == float(count)
    # The history learnt each decided transaction once.
    assert history_count(client) == real_model.past.num_rows + DECIDED


def test_the_decision_map_covers_every_policy_action() -> None:
    assert set(DECISION_OF_ACTION.values()) == {"allow", "step_up", "block"}


# --- idempotency ---------------------------------------------------------------------------
def test_the_same_tx_id_gets_the_same_answer_and_joins_the_history_once(
    decider: Callable[..., TestClient], real_model: RealModel, token_for: Headers
) -> None:
    client = decider()
    headers = token_for("decisions")
    event = real_model.decided[0]
    first = decide(client, headers, event)
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    learnt = history_count(client)
    assert learnt == real_model.past.num_rows + 1
    again = decide(client, token_for("decisions"), event)  # another caller, the same tx
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert history_count(client) == learnt
    # The same tx_id with another body is another transaction: refused, nothing learnt.
    changed = decide(client, headers, {**event, "amount": event["amount"] + 1})
    assert changed.status_code == 409
    assert f"transaction {event['tx_id']} was already decided" in changed.json()["error"]
    assert history_count(client) == learnt
    total = sum(
        metric(client, "fraudwatch_decisions_total", decision=d, fallback="false")
        for d in ("allow", "step_up", "block")
    )
    assert total == 1.0


# --- bad bodies ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"amount": -5}, "body.amount"),
        ({"ts": "2026-01-01T12:00:00"}, "body.ts"),
        ({"tx_type": "teleport"}, "body.tx_type"),
        ({"ip": "not-an-ip"}, "body.ip"),
        ({"currency": "EURO"}, "body.currency"),
        ({"extra_field": 1}, "body.extra_field"),
        ({"tx_id": MAX_ID + 1}, "body.tx_id"),
        ({"user_id": "seven"}, "body.user_id"),
        ({"ts": "0001-01-01T00:00:00+14:00"}, "body.ts"),
        ({"amount": "Infinity"}, "body.amount"),
    ],
)
def test_a_bad_transaction_is_a_422_naming_the_field(
    decider: Callable[..., TestClient],
    real_model: RealModel,
    token_for: Headers,
    change: dict[str, Any],
    where: str,
) -> None:
    client = decider(seed=False)
    response = decide(client, token_for("decisions"), {**real_model.decided[0], **change})
    assert response.status_code == 422, response.text
    assert where in response.json()["error"]
    assert "Traceback" not in response.text


def test_a_missing_field_a_non_json_body_and_a_wrong_type_are_refused(
    decider: Callable[..., TestClient], real_model: RealModel, token_for: Headers
) -> None:
    client = decider(seed=False)
    headers = token_for("decisions")
    event = dict(real_model.decided[0])
    del event["device_id"]
    missing = decide(client, headers, event)
    assert missing.status_code == 422 and "body.device_id" in missing.json()["error"]
    broken = client.post(
        "/v1/decisions",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
    text = client.post(
        "/v1/decisions", content=b"tx_id=1", headers={**headers, "Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    assert client.post("/v1/decisions", json=[event], headers=headers).status_code == 422
    assert history_count(client) == 0  # nothing refused reached the history


# --- who may call it -----------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_only_the_decisions_role_and_admin_may_decide(
    decider: Callable[..., TestClient], real_model: RealModel, token_for: Headers, role: str
) -> None:
    client = decider(seed=False)
    response = decide(client, token_for(role), real_model.decided[0])
    if role in ("decisions", "admin"):
        assert role in PERMISSIONS[PERMISSION]
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403, response.text
        assert PERMISSION in response.json()["error"]
    assert decide(client, {}, real_model.decided[0]).status_code == 401


def test_the_decisions_role_is_refused_everywhere_else(
    decider: Callable[..., TestClient], token_for: Headers
) -> None:
    client = decider(seed=False)
    headers = token_for("decisions")
    spec = client.get("/openapi.json").json()
    checked = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not operation.get("security") or (method, path) == ("post", "/v1/decisions"):
                continue
            url = path
            for name in ("{user_id}", "{tx_id}", "{approval_id}", "{token_id}"):
                url = url.replace(name, "1")
            url = url.replace("{decision}", "approve")
            body: dict[str, Any] | None = {} if operation.get("requestBody") else None
            response = client.request(method, url, json=body, headers=headers)
            assert response.status_code == 403, (method, path, response.text)
            checked += 1
    assert checked >= 20
    assert client.get("/metrics", headers=headers).status_code == 403
    # Nor may it sign in to the admin page.
    token = headers["Authorization"].removeprefix("Bearer ")
    form = client.get("/admin/login")
    page = client.post("/admin/login", data={"token": token, "csrf": csrf_of(form.text)})
    assert "cannot use the admin page" in page.text


def test_tokens_create_makes_a_decisions_token(
    decider: Callable[..., TestClient],
    real_model: RealModel,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fraudwatch.cli import app

    monkeypatch.setenv("FRAUDWATCH_STATE_URL", f"sqlite:///{home / 'state.sqlite3'}")
    result = CliRunner().invoke(app, ["tokens", "create", "--role", "decisions"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    client = decider(seed=False)
    response = decide(client, {"Authorization": f"Bearer {token}"}, real_model.decided[0])
    assert response.status_code == 200, response.text


# --- the safe default ----------------------------------------------------------------------
@pytest.mark.parametrize("fallback", ["step_up", "allow"])
def test_no_promoted_model_answers_the_configured_fallback(
    decider: Callable[..., TestClient],
    real_model: RealModel,
    token_for: Headers,
    tmp_path: Path,
    fallback: str,
) -> None:
    env = {"FRAUDWATCH_DECISIONS_REGISTRY": str(tmp_path / "empty-registry")}
    if fallback != "step_up":  # step_up is the default
        env["FRAUDWATCH_DECISIONS_FALLBACK"] = fallback
    client = decider(**env)
    response = decide(client, token_for("decisions"), real_model.decided[0])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["decision"] == fallback and answer["fallback"] is True
    assert "no model version is promoted" in answer["fallback_reason"]
    assert str(tmp_path) not in answer["fallback_reason"]  # no server paths in answers
    assert answer["score"] is None and answer["model_version"] is None
    assert metric(client, "fraudwatch_decision_fallbacks_total", cause="no_model") == 1.0
    assert metric(client, "fraudwatch_decisions_total", decision=fallback, fallback="true") == 1.0
    exposed = client.get("/metrics", headers=token_for("admin")).text
    assert 'fraudwatch_decision_fallbacks_total{cause="no_model"} 1.0' in exposed
    # The transaction still joined its user's history: the stream sees it too.
    assert history_count(client) == real_model.past.num_rows + 1


def test_a_broken_promoted_version_answers_the_fallback(
    decider: Callable[..., TestClient], real_model: RealModel, token_for: Headers, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "broken-registry")
    folder = registry.versions_dir / "v-broken"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"version": "v-broken", "levels": {}}')
    registry.promote("v-broken", "a version without transaction models")
    client = decider(FRAUDWATCH_DECISIONS_REGISTRY=str(registry.root))
    answer = decide(client, token_for("decisions"), real_model.decided[0]).json()
    assert answer["decision"] == "step_up" and answer["fallback"] is True
    assert "cannot be loaded" in answer["fallback_reason"]
    assert metric(client, "fraudwatch_decision_fallbacks_total", cause="model_error") == 1.0


def test_a_spent_time_budget_answers_the_fallback(
    decider: Callable[..., TestClient], real_model: RealModel, token_for: Headers
) -> None:
    client = decider(FRAUDWATCH_DECISIONS_BUDGET_MS="50")
    engine = client.app.state.decisions  # type: ignore[attr-defined]
    with engine.scoring:  # the scorer is busy for longer than the budget
        response = decide(client, token_for("decisions"), real_model.decided[0])
    answer = response.json()
    assert response.status_code == 200, response.text
    assert answer["decision"] == "step_up" and answer["fallback"] is True
    assert "time budget of 50 ms" in answer["fallback_reason"]
    assert metric(client, "fraudwatch_decision_fallbacks_total", cause="budget") == 1.0
    # Recorded like any answer: a retry gets the same fallback back.
    again = decide(client, token_for("decisions"), real_model.decided[0])
    assert again.json() == answer and again.headers["Idempotent-Replayed"] == "true"


# --- overload ------------------------------------------------------------------------------
def test_above_max_in_flight_a_decision_is_shed_with_503_and_retry_after(
    decider: Callable[..., TestClient], real_model: RealModel, token_for: Headers
) -> None:
    client = decider(FRAUDWATCH_DECISIONS_MAX_IN_FLIGHT="1")
    engine = client.app.state.decisions  # type: ignore[attr-defined]
    headers = token_for("decisions")
    held: list[Any] = []
    engine.scoring.acquire()  # the first decision will wait inside its slot
    try:
        first = threading.Thread(
            target=lambda: held.append(decide(client, headers, real_model.decided[0]))
        )
        first.start()
        # Wait (on a condition, not a clock) until the first decision holds the only slot.
        while metric(client, "fraudwatch_decisions_in_flight") < 1 and first.is_alive():
            threading.Event().wait(0.01)
        assert first.is_alive()
        shed = decide(client, headers, real_model.decided[1])
        assert shed.status_code == 503, shed.text
        assert shed.headers["Retry-After"] == "1"
        assert "decisions.max_in_flight = 1" in shed.json()["error"]
        assert metric(client, "fraudwatch_decisions_shed_total") == 1.0
    finally:
        engine.scoring.release()
    first.join()
    assert held[0].status_code == 200 and held[0].json()["fallback"] is False
    # The shed transaction was not recorded: a retry is decided normally.
    assert client.store.get_decision(str(real_model.decided[1]["tx_id"])) is None  # type: ignore[attr-defined]
    assert decide(client, headers, real_model.decided[1]).status_code == 200


def test_the_spec_documents_the_decision_route_and_its_errors(
    decider: Callable[..., TestClient],
) -> None:
    client = decider(seed=False)
    operation = client.get("/openapi.json").json()["paths"]["/v1/decisions"]["post"]
    assert operation["x-permission"] == PERMISSION
    assert {"400", "401", "403", "409", "413", "415", "422", "503"} <= set(operation["responses"])
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/DecisionAnswer"}


# --- retention -----------------------------------------------------------------------------
def test_recording_a_decision_prunes_those_past_the_retention(
    decider: Callable[..., TestClient], real_model: RealModel, token_for: Headers
) -> None:
    client = decider(seed=False, FRAUDWATCH_DECISIONS_RETENTION_DAYS="7")
    store = client.store  # type: ignore[attr-defined]
    for age_days, tx_id in ((8, "1"), (6, "2")):
        decided_at = (datetime.now(UTC) - timedelta(days=age_days)).isoformat()
        store.record_decision(
            {
                "tx_id": tx_id,
                "user_id": 1,
                "decided_at": decided_at,
                "decision": "allow",
                "score": 0.1,
                "model_version": "old",
                "fallback": False,
                "fallback_reason": None,
                "actor": "token:old",
                "fingerprint": "old",
                "answer": {},
            }
        )
    assert decide(client, token_for("decisions"), real_model.decided[0]).status_code == 200
    assert store.get_decision("1") is None  # older than 7 days
    assert store.get_decision("2") is not None
    assert store.get_decision(str(real_model.decided[0]["tx_id"])) is not None


# --- reading them --------------------------------------------------------------------------
def test_readers_of_the_results_list_the_decisions_newest_first(
    decider: Callable[..., TestClient], real_model: RealModel, token_for: Headers
) -> None:
    client = decider()
    headers = token_for("decisions")
    answers = [decide(client, headers, event).json() for event in real_model.decided[:3]]
    listed = client.get("/v1/decisions", headers=token_for("analyst"))
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 3
    assert [item["tx_id"] for item in body["items"]] == [a["tx_id"] for a in reversed(answers)]
    assert body["items"][0] == {**answers[-1], "actor": body["items"][0]["actor"]}
    user = answers[0]["user_id"]
    mine = client.get(f"/v1/decisions?user_id={user}", headers=token_for("viewer")).json()
    assert mine["items"] and {item["user_id"] for item in mine["items"]} == {user}
    later = client.get("/v1/decisions?since=2999-01-01T00:00:00", headers=token_for("admin"))
    assert later.json()["total"] == 0
    assert client.get("/v1/decisions", headers=headers).status_code == 403
    viewer = token_for("viewer")
    assert client.get("/v1/decisions?page_size=501", headers=viewer).status_code == 422
    early = client.get("/v1/decisions?since=0001-01-01T00:00:00%2B01:00", headers=viewer)
    assert early.status_code == 422 and "query.since" in early.json()["error"]
