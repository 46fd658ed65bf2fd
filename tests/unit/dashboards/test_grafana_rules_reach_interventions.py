"""Every committed Grafana alert rule, sent as Grafana's webhook payload to the intervention
service: the rules routed to the intervention contact point act as the policy says, with an
audit entry naming the alert; the others cannot act there.

Grafana itself cannot run here, so this test builds what Grafana's webhook contact point
posts (its documented JSON: receiver, status, alerts[{status, labels, annotations, values,
fingerprint, ...}], groupLabels, commonLabels, ...) from each rule in
dashboards/grafana/provisioning/alerting/fraudwatch.yaml, and posts it to the real service
app (in process) with the Authorization header the contact point is configured to send.
The rule list comes from the YAML, so a new rule without an expectation here fails.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pytest
import yaml
from dashboards_fixtures import DASHBOARDS
from fastapi.testclient import TestClient
from fraudwatch.intervention.api import create_app
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.results import ScoredResults
from fraudwatch.intervention.stores.sqlite import SqliteStore

ALERTING = DASHBOARDS / "grafana" / "provisioning" / "alerting" / "fraudwatch.yaml"
PROVISIONING = yaml.safe_load(ALERTING.read_text(encoding="utf-8"))
RULES = {rule["uid"]: (group, rule) for group in PROVISIONING["groups"] for rule in group["rules"]}
#: What each committed rule must do at the intervention service. A rule added to
#: alert_rules.py needs a line here (the test below fails until it has one).
EXPECTED = {
    "fraudwatch-high-ensemble-score": "acts",
    "fraudwatch-anomaly-surge": "refused",
    "fraudwatch-streaming-lag": "refused",
    "fraudwatch-circuit-breaker-open": "refused",
    "fraudwatch-decision-fallbacks": "refused",
}
INTERVENTION_RECEIVER = "fraudwatch-intervention"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


# --- what Grafana would send -------------------------------------------------------------
def _receivers_for(labels: dict[str, str]) -> list[str]:
    """Walk the committed notification policy tree as Grafana's Alertmanager does."""
    (policy,) = PROVISIONING["policies"]
    matched: list[str] = []
    for route in policy.get("routes", []):
        ops = {"=": str.__eq__, "!=": str.__ne__}
        if all(
            ops[op](labels.get(name, ""), value) for name, op, value in route["object_matchers"]
        ):
            matched.append(route["receiver"])
            if not route.get("continue", False):
                return matched
    return matched or [policy["receiver"]]


def _contact_point(name: str) -> dict[str, Any]:
    (point,) = [p for p in PROVISIONING["contactPoints"] if p["name"] == name]
    (receiver,) = point["receivers"]
    return receiver


def _dimension_labels(rule: dict[str, Any]) -> list[str]:
    """Labels of each alert instance that come from the query's series (multi-dimensional
    rules): an Elasticsearch `terms` bucket per field, a PromQL `by (...)` clause."""
    (query,) = [q for q in rule["data"] if q["datasourceUid"] != "__expr__"]
    model = query["model"]
    if "bucketAggs" in model:
        return [agg["field"] for agg in model["bucketAggs"] if agg["type"] == "terms"]
    by = re.search(r"\bby\s*\(([^)]*)\)", model.get("expr", ""))
    return [name.strip() for name in by.group(1).split(",")] if by else []


def _render(template: str, labels: dict[str, str]) -> str:
    """The template forms our rules use: `{{ index .Labels "x" }}` and `{{ $labels.x }}`."""
    text = re.sub(r'{{\s*index \.Labels "([^"]+)"\s*}}', lambda m: labels[m.group(1)], template)
    text = re.sub(r"{{\s*\$labels\.(\w+)\s*}}", lambda m: labels[m.group(1)], text)
    assert "{{" not in text, f"annotation template this test cannot render: {template}"
    return text


def grafana_webhook_body(
    group: dict[str, Any], rule: dict[str, Any], value: float, series: dict[str, str]
) -> dict[str, Any]:
    """The body Grafana's webhook contact point posts for one firing instance of `rule`
    whose reduce expression evaluated to `value` on the series labelled `series`."""
    labels = {
        "alertname": rule["title"],
        "grafana_folder": group["folder"],
        **rule.get("labels", {}),
        **series,
    }
    annotations = {k: _render(v, labels) for k, v in rule.get("annotations", {}).items()}
    expressions = [q for q in rule["data"] if q["datasourceUid"] == "__expr__"]
    # Grafana reports every expression's value: the reduce ones the number, the condition 1.
    values = {q["refId"]: (1 if q["refId"] == rule["condition"] else value) for q in expressions}
    fingerprint = hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]
    series_text = ", ".join(f"{k}={v}" for k, v in series.items())
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": f"http://grafana.invalid/alerting/grafana/{rule['uid']}/view",
        "fingerprint": fingerprint,
        "silenceURL": "http://grafana.invalid/alerting/silence/new",
        "dashboardURL": "",
        "panelURL": "",
        "values": values,
        "valueString": ", ".join(
            f"[ var='{ref}' labels={{{series_text}}} value={v} ]" for ref, v in values.items()
        ),
    }
    common = {k: v for k, v in labels.items() if k != "user_id"}
    return {
        "receiver": INTERVENTION_RECEIVER,
        "status": "firing",
        "orgId": group["orgId"],
        "alerts": [alert],
        "groupLabels": {"alertname": rule["title"]},
        "commonLabels": common,
        "commonAnnotations": annotations,
        "externalURL": "http://grafana.invalid/",
        "version": "1",
        "groupKey": f'{{}}:{{alertname="{rule["title"]}"}}',
        "truncatedAlerts": 0,
        "title": f"[FIRING:1] {rule['title']}",
        "state": "alerting",
        "message": annotations.get("summary", ""),
    }


# --- the intervention service ------------------------------------------------------------
@pytest.fixture
def service(
    tmp_path: Path, scored_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The real app on a fresh SQLite store with the shipped step-up threshold."""
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path / "home"))
    for name in (
        "FRAUDWATCH_CONFIG",
        "FRAUDWATCH_STATE_URL",
        "FRAUDWATCH_DRY_RUN",
        "FRAUDWATCH_ALLOW_LIST",
        "FRAUDWATCH_POLICY_STEP_UP_AT",
        "FRAUDWATCH_HOOK_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    # 300 users: nobody reaches the shipped lock threshold (a 0.1 % budget), so this
    # deployment locks at its top user's score; step-up stays at the shipped default.
    ((top,),) = duckdb.sql(
        f"SELECT max(ensemble_score) FROM read_parquet('{scored_dir}/users.parquet')"
    ).fetchall()
    monkeypatch.setenv("FRAUDWATCH_POLICY_LOCK_AT", f"{math.floor(top * 1e6) / 1e6}")
    settings = load_settings().with_scored(scored_dir)
    store = SqliteStore(tmp_path / "state.sqlite3")
    with TestClient(create_app(settings, store, ScoredResults(scored_dir))) as client:
        client.store = store  # type: ignore[attr-defined]
        yield client


def _contact_point_request(client: TestClient) -> tuple[str, dict[str, str]]:
    """Path and headers the intervention contact point posts with, its `${...}` secrets
    filled the way the deployment fills them (an automation token, the service URL)."""
    settings = _contact_point(INTERVENTION_RECEIVER)["settings"]
    token, _ = create_token(client.store, "automation", "grafana")  # type: ignore[attr-defined]
    secrets = {
        "FRAUDWATCH_INTERVENTION_HOOK_TOKEN": token,
        "FRAUDWATCH_INTERVENTION_URL": "http://intervention.invalid",
    }

    def fill(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: secrets[m.group(1)], text)

    assert settings["httpMethod"] == "POST"
    path = urlsplit(fill(settings["url"])).path
    authorization = (
        f"{settings['authorization_scheme']} {fill(settings['authorization_credentials'])}"
    )
    return path, {"Authorization": authorization}


def _analyst(client: TestClient) -> dict[str, str]:
    token, _ = create_token(client.store, "analyst")  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


def _admin(client: TestClient) -> dict[str, str]:
    token, _ = create_token(client.store, "admin")  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def scored_user_ids(scored_dir: Path) -> list[int]:
    rows = duckdb.sql(
        f"SELECT user_id FROM read_parquet('{scored_dir}/users.parquet') ORDER BY user_id LIMIT 2"
    ).fetchall()
    return [int(user_id) for (user_id,) in rows]


def _reduce_ref(rule: dict[str, Any]) -> str:
    (reduce,) = [q for q in rule["data"] if q["model"].get("type") == "reduce"]
    return str(reduce["refId"])


# --- the tests ---------------------------------------------------------------------------
def test_every_committed_rule_has_an_expectation() -> None:
    assert set(RULES) == set(EXPECTED), (
        "alert rules changed: add each new rule's expected effect to EXPECTED "
        "(and its case below) so its webhook payload is tested"
    )


def test_only_rules_with_a_user_label_route_to_the_intervention_hook() -> None:
    """What reaches the hook must identify an account and carry a score named as the hook
    reads it; the rest goes to on-call only."""
    for uid, (group, rule) in RULES.items():
        body = grafana_webhook_body(group, rule, 0.9, {k: "1" for k in _dimension_labels(rule)})
        receivers = _receivers_for(body["alerts"][0]["labels"])
        if EXPECTED[uid] == "acts":
            assert INTERVENTION_RECEIVER in receivers, uid
            assert "user_id" in _dimension_labels(rule), uid
            assert _reduce_ref(rule) == "score", f"{uid}: the hook reads values['score']"
        else:
            assert INTERVENTION_RECEIVER not in receivers, uid


def _user_for(service: TestClient, scored_dir: Path, action: str) -> tuple[int, float]:
    """The highest-scored user of the real results whose own ensemble score the service's
    policy maps to `action` (the hook acts on that score, not on the alert's)."""
    policy = service.get("/v1/policy", headers=_admin(service)).json()
    low, high = (
        (policy["lock_at"], 1.1) if action == "lock" else (policy["step_up_at"], policy["lock_at"])
    )
    found = duckdb.sql(
        f"SELECT user_id, ensemble_score FROM read_parquet('{scored_dir}/users.parquet') "
        f"WHERE ensemble_score >= {low} AND ensemble_score < {high} "
        "ORDER BY ensemble_score DESC LIMIT 1"
    ).fetchall()
    assert found, f"the scored population has no user in the {action} band [{low}, {high})"
    ((user_id, score),) = found
    return int(user_id), float(score)


@pytest.mark.parametrize(
    ("action", "state"),
    [
        ("step_up", {"locked": False, "step_up": True}),
        ("lock", {"locked": True, "step_up": False}),
    ],
)
@pytest.mark.parametrize("uid", [u for u, e in EXPECTED.items() if e == "acts"])
def test_user_rule_payload_applies_the_policy_action_and_audits_it(
    service: TestClient,
    scored_dir: Path,
    uid: str,
    action: str,
    state: dict[str, bool],
) -> None:
    group, rule = RULES[uid]
    user_id, score = _user_for(service, scored_dir, action)
    body = grafana_webhook_body(group, rule, score, {"user_id": str(user_id)})
    path, headers = _contact_point_request(service)

    answer = service.post(path, json=body, headers=headers)

    assert answer.status_code == 200, answer.text
    (outcome,) = answer.json()["outcomes"]
    fingerprint = body["alerts"][0]["fingerprint"]
    assert outcome["user_id"] == user_id
    assert outcome["alert_id"] == fingerprint
    assert outcome["result"] == "applied", outcome
    assert outcome["action"] == action
    user = service.get(f"/v1/users/{user_id}", headers=_analyst(service)).json()
    assert user["state"] == state

    audit = service.get(
        "/v1/audit",
        params={"subject_kind": "account", "subject_id": str(user_id)},
        headers=_analyst(service),
    ).json()["items"]
    (entry,) = [e for e in audit if e["alert_id"] == fingerprint]
    assert entry["via"] == "hook:grafana"
    assert entry["role"] == "automation"
    assert entry["result"] == "applied"
    assert entry["action"] == action
    assert body["alerts"][0]["annotations"]["summary"] in entry["reason"]
    assert f"{score:.3f}" in entry["reason"]


@pytest.mark.parametrize("uid", [u for u, e in EXPECTED.items() if e == "refused"])
def test_rule_without_user_label_cannot_act_on_the_hook(
    service: TestClient, scored_user_ids: list[int], uid: str
) -> None:
    """Were an on-call rule misrouted to the hook, the service refuses it (422 naming the
    missing label, as docs/intervention.md says), audits the refusal and changes nothing."""
    group, rule = RULES[uid]
    series = {k: "1" for k in _dimension_labels(rule)}
    assert "user_id" not in series
    threshold = rule["data"][-1]["model"]["conditions"][0]["evaluator"]["params"][0]
    body = grafana_webhook_body(group, rule, float(threshold) + 1, series)
    path, headers = _contact_point_request(service)
    analyst = _analyst(service)
    before = service.get("/v1/audit", headers=analyst).json()["head"]

    answer = service.post(path, json=body, headers=headers)

    assert answer.status_code == 422, answer.text
    assert "label 'user_id' is missing" in answer.json()["error"]
    assert before is None
    (entry,) = service.get("/v1/audit", headers=analyst).json()["items"]
    assert (entry["result"], entry["action"], entry["via"]) == ("invalid", "none", "hook:grafana")
    assert "label 'user_id' is missing" in entry["detail"]
    for user_id in scored_user_ids:
        history = service.get(f"/v1/users/{user_id}/interventions", headers=analyst).json()
        assert not history.get("items"), history
