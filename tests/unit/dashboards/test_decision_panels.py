"""The interventions dashboard's inline-decision panels and the fallback alert rule query what
the intervention service really exports (issue 19, item 5).

Grafana and Prometheus cannot run here. Instead the real service app (in process) decides two
real transactions — one while no model version is promoted (the safe default, cause
`no_model`), one after the batch job's model version is promoted in a real registry (scored)
— and its `/metrics` is scraped and parsed as Prometheus parses it. Every metric selector,
label matcher and `by (...)` label of the committed panels' and rule's PromQL must then match
a series the service exported: a renamed metric, label or route fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
import yaml
from dashboards_fixtures import DASHBOARDS
from fastapi.testclient import TestClient
from fraudwatch.intervention.api import create_app
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.decisions import DECISION_OF_ACTION
from fraudwatch.intervention.results import ScoredResults
from fraudwatch.intervention.stores.sqlite import SqliteStore
from fraudwatch.models.registry import ModelRegistry
from fraudwatch.streaming.job import RAW_TRANSACTION_SCHEMA
from prometheus_client.parser import text_string_to_metric_families
from test_grafana_rules_reach_interventions import INTERVENTION_RECEIVER, _receivers_for

GRAFANA = DASHBOARDS / "grafana"
RULE_UID = "fraudwatch-decision-fallbacks"
PANELS = {
    "latency": "Decision latency (p50, p99)",
    "outcomes": "Decision outcomes (allow, step_up, block)",
    "fallbacks": "Decision fallback rate (safe default, by cause)",
}
#: A metric selector in PromQL (`name` or `name{matchers}`) of the service's metrics.
SELECTOR = re.compile(r"\b(fraudwatch_\w+)(?:\{([^}]*)\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
BY = re.compile(r"\bby\s*\(([^)]*)\)")
Sample = tuple[str, dict[str, str], float]


def _panels() -> dict[str, dict[str, Any]]:
    board = json.loads((GRAFANA / "interventions.json").read_text(encoding="utf-8"))
    by_title = {panel["title"]: panel for panel in board["panels"]}
    return {key: by_title[title] for key, title in PANELS.items() if title in by_title}


def _rule() -> tuple[dict[str, Any], dict[str, Any]]:
    document = yaml.safe_load(
        (GRAFANA / "provisioning/alerting/fraudwatch.yaml").read_text(encoding="utf-8")
    )
    ((group, rule),) = [
        (g, r) for g in document["groups"] for r in g["rules"] if r["uid"] == RULE_UID
    ]
    return group, rule


def _exprs(panel: dict[str, Any]) -> list[str]:
    return [target["expr"] for target in panel["targets"]]


# --- the real service, after two real decisions --------------------------------------------
def _events(scored_dir: Path, count: int) -> list[dict[str, Any]]:
    """The generated data set's last transactions, as `transactions` topic events."""
    table = (
        ds.dataset(scored_dir.parent / "raw" / "transactions", partitioning="hive")
        .to_table()
        .select(RAW_TRANSACTION_SCHEMA.names)
        .sort_by([("ts", "ascending"), ("tx_id", "ascending")])
    )
    events = []
    for row in table.slice(table.num_rows - count).to_pylist():
        event = {k: v for k, v in row.items() if v is not None}
        event["ts"] = row["ts"].astimezone(UTC).isoformat()
        events.append(event)
    return events


@pytest.fixture(scope="module")
def scraped(
    scored_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[Sample], list[dict[str, Any]]]]:
    """The service's /metrics samples after a fallback and a scored decision, and the two
    answers."""
    home = tmp_path_factory.mktemp("decision-panels")
    registry = ModelRegistry(home / "registry")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FRAUDWATCH_HOME", str(home / "home"))
        for name in ("FRAUDWATCH_CONFIG", "FRAUDWATCH_STATE_URL", "FRAUDWATCH_DECISIONS_FALLBACK"):
            env.delenv(name, raising=False)
        env.setenv("FRAUDWATCH_DECISIONS_REGISTRY", str(registry.root))
        env.setenv("FRAUDWATCH_DECISIONS_HISTORY", str(home / "history.duckdb"))
        # Large enough that a busy machine never turns the scored decision into a fallback.
        env.setenv("FRAUDWATCH_DECISIONS_BUDGET_MS", "600000")
        settings = load_settings().with_scored(scored_dir)
        store = SqliteStore(home / "state.sqlite3")
        app = create_app(settings, store, ScoredResults(scored_dir))
        with TestClient(app) as client:
            decider = {"Authorization": "Bearer " + create_token(store, "decisions")[0]}
            first, second = _events(scored_dir, 2)
            answers = [client.post("/v1/decisions", json=first, headers=decider)]
            (folder,) = (scored_dir / "models").iterdir()
            registry.promote(registry.add(folder), "decision panels test")
            answers.append(client.post("/v1/decisions", json=second, headers=decider))
            for answer in answers:
                assert answer.status_code == 200, answer.text
            admin = {"Authorization": "Bearer " + create_token(store, "admin")[0]}
            exposed = client.get("/metrics", headers=admin)
            assert exposed.status_code == 200, exposed.text
            client.app.state.decisions.close()  # type: ignore[attr-defined]
    samples = [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(exposed.text)
        for s in family.samples
    ]
    yield samples, [a.json() for a in answers]


def test_the_service_answered_one_fallback_and_one_scored_decision(
    scraped: tuple[list[Sample], list[dict[str, Any]]],
) -> None:
    """The premise of the checks below: both kinds of series exist in the scrape."""
    _, (fallback, decided) = scraped
    assert fallback["fallback"] is True and fallback["score"] is None
    assert decided["fallback"] is False and decided["score"] is not None


def _matches(labels: dict[str, str], matchers: str | None) -> bool:
    for name, op, value in MATCHER.findall(matchers or ""):
        actual = labels.get(name)
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op in ("=~", "!~") and (re.fullmatch(value, actual or "") is None) == (op == "=~"):
            return False
    return True


def _check_against_scrape(expr: str, samples: list[Sample]) -> None:
    selectors = SELECTOR.findall(expr)
    assert selectors, f"no fraudwatch metric in {expr}"
    selected: list[dict[str, str]] = []
    for name, matchers in selectors:
        named = [labels for sample, labels, _ in samples if sample == name]
        assert named, f"{expr}: the service exports no series named {name}"
        picked = [labels for labels in named if _matches(labels, matchers)]
        assert picked, f"{expr}: no exported {name} series matches {{{matchers}}}"
        selected += picked
    for clause in BY.findall(expr):
        for label in (part.strip() for part in clause.split(",") if part.strip()):
            assert any(label in labels for labels in selected), f"{expr}: no series has {label}"


def test_the_decision_panels_query_what_the_service_exports(
    scraped: tuple[list[Sample], list[dict[str, Any]]],
) -> None:
    samples, _ = scraped
    panels = _panels()
    assert set(panels) == set(PANELS), "a decision panel is missing from interventions.json"
    for key, panel in panels.items():
        assert panel["datasource"]["uid"] == "prometheus", key
        for expr in _exprs(panel):
            _check_against_scrape(expr, samples)


def test_the_latency_panel_is_p50_and_p99_of_the_decision_routes_histogram(
    scraped: tuple[list[Sample], list[dict[str, Any]]],
) -> None:
    samples, _ = scraped
    latency = _panels()["latency"]
    quantiles = [re.match(r"histogram_quantile\(([0-9.]+),", e) for e in _exprs(latency)]
    assert [float(q.group(1)) for q in quantiles if q] == [0.5, 0.99]
    for expr in _exprs(latency):
        assert "_bucket{" in expr and "sum by (le)" in expr, expr
        assert 'route="/v1/decisions"' in expr and 'method="POST"' in expr, expr
    assert latency["fieldConfig"]["defaults"]["unit"] == "s"
    # The description states the bucket bounds the quantiles are interpolated within.
    bounds = {
        float(labels["le"])
        for name, labels, _ in samples
        if name == "fraudwatch_http_request_seconds_bucket"
        and labels.get("route") == "/v1/decisions"
    }
    assert {0.005, 0.01, 0.025, 0.05, 0.075, 0.1} <= bounds
    assert "5, 10, 25, 50, 75, 100 ms" in latency["description"]


def test_the_outcome_panel_shows_every_answer_the_route_gives(
    scraped: tuple[list[Sample], list[dict[str, Any]]],
) -> None:
    samples, answers = scraped
    outcomes = _panels()["outcomes"]
    assert set(DECISION_OF_ACTION.values()) == {"allow", "step_up", "block"}
    assert all(answer in outcomes["title"] for answer in DECISION_OF_ACTION.values())
    assert [t["legendFormat"] for t in outcomes["targets"]] == [
        "{{decision}}",
        "{{decision}} (fallback)",
    ]
    # Scored and fallback answers are counted apart, under the labels the panel splits by.
    counted = {
        (labels["decision"], labels["fallback"]): value
        for name, labels, value in samples
        if name == "fraudwatch_decisions_total"
    }
    assert counted == {
        (answers[0]["decision"], "true"): 1.0,
        (answers[1]["decision"], "false"): 1.0,
    }


def test_the_fallback_panel_is_the_share_by_cause_and_in_all(
    scraped: tuple[list[Sample], list[dict[str, Any]]],
) -> None:
    samples, _ = scraped
    panel = _panels()["fallbacks"]
    by_cause, total = _exprs(panel)
    assert "sum by (cause)" in by_cause and "fraudwatch_decisions_total" in by_cause
    assert "fraudwatch_decisions_total" in total
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"
    causes = {
        labels["cause"]
        for name, labels, _ in samples
        if name == "fraudwatch_decision_fallbacks_total"
    }
    assert causes == {"no_model"}
    # The rule alerts on exactly the share the panel draws as "all causes".
    _, rule = _rule()
    (query,) = [d for d in rule["data"] if d["datasourceUid"] == "prometheus"]
    assert query["model"]["expr"] == total


def test_the_fallback_rule_has_its_threshold_a_for_and_goes_to_on_call_only(
    scraped: tuple[list[Sample], list[dict[str, Any]]],
) -> None:
    import alert_rules

    samples, _ = scraped
    group, rule = _rule()
    (query,) = [d for d in rule["data"] if d["datasourceUid"] == "prometheus"]
    _check_against_scrape(query["model"]["expr"], samples)
    (condition,) = [d for d in rule["data"] if d["refId"] == rule["condition"]]
    (evaluator,) = [c["evaluator"] for c in condition["model"]["conditions"]]
    assert evaluator == {"type": "gt", "params": [alert_rules.MAX_DECISION_FALLBACK_SHARE]}
    assert 0 < alert_rules.MAX_DECISION_FALLBACK_SHARE < 1
    assert rule["for"] == alert_rules.FALLBACK_FOR and rule["for"] not in ("0s", "0m")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    share = f"{alert_rules.MAX_DECISION_FALLBACK_SHARE:.0%}"
    assert share in rule["annotations"]["summary"]
    # An operations alert: on-call only, never the intervention hook (it names no account).
    assert rule["labels"]["fraudwatch_route"] == "oncall"
    labels = {"alertname": rule["title"], "grafana_folder": group["folder"], **rule["labels"]}
    assert INTERVENTION_RECEIVER not in _receivers_for(labels)
    assert "user_id" not in query["model"]["expr"]


def test_no_decision_traffic_is_no_data_not_an_alert() -> None:
    """The rule's expression divides only by a positive decision rate: without traffic it has
    no data (noDataState OK: an idle route is not this rule's concern), never 0/0."""
    _, rule = _rule()
    (query,) = [d for d in rule["data"] if d["datasourceUid"] == "prometheus"]
    assert query["model"]["expr"].endswith("[5m])) > 0)")
    assert rule["noDataState"] == "OK"
