"""Measured alert precision on /metrics (issue 16, item 3): analysts' verdicts recorded through
the API, scraped as Prometheus reads them, and the interventions dashboard's panel that
queries them (docs/feedback.md "Measured precision")."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fraudwatch.intervention import precision_metrics
from fraudwatch.intervention.api import create_app
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.results import ResultsUnavailable, ScoredResults
from fraudwatch.intervention.stores.sqlite import SqliteStore
from prometheus_client.parser import text_string_to_metric_families
from scored_fixture import user_score, write_scored
from test_intervention_hooks import grafana_payload, post_signed, watcher_payload

Headers = Callable[[str], dict[str, str]]
#: The fixture's flagged users (scored_fixture.py: users 1 to 4).
FLAGGED = [1, 2, 3, 4]
INTERVENTIONS_JSON = Path(__file__).parents[3] / "dashboards" / "grafana" / "interventions.json"
PANEL = "Alert precision (confirmed fraud share)"


def judge(client: TestClient, headers: dict[str, str], user: int, label: str) -> None:
    response = client.post(
        "/v1/dispositions",
        json={"user_id": user, "label": label, "reason": f"analyst says {label}"},
        headers=headers,
    )
    assert response.status_code == 201, response.text


def scrape(client: TestClient, headers: dict[str, str]) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) → value, for the precision metrics, parsed the way
    Prometheus parses the exposition."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name in precision_metrics.METRIC_NAMES
    }


def fresh(client: TestClient) -> None:
    """Every scrape reads the store again (the cache is tested on its own)."""
    client.app.state.precision_metrics.max_age = 0  # type: ignore[attr-defined]


def version(name: str) -> tuple:
    return (("model_version", name),)


def test_precision_is_the_confirmed_share_of_judged_flagged_users(
    client: TestClient, token_for: Headers
) -> None:
    analyst = token_for("analyst")
    for user, label in ((1, "fraud"), (2, "fraud"), (3, "legitimate"), (4, "unsure")):
        judge(client, analyst, user, label)
    # User 10 is not flagged in the results: a verdict on it is counted, not in the ratio.
    judge(client, analyst, 10, "fraud")
    scraped = scrape(client, token_for("viewer"))
    # The fixture has no run.json: the verdicts name no version, reported as "unknown".
    assert scraped[(precision_metrics.ALERT_PRECISION, version("unknown"))] == pytest.approx(0.6667)
    assert scraped[(precision_metrics.ALERT_JUDGED, version("unknown"))] == 3
    totals = {
        labels[0][1]: value
        for (name, labels), value in scraped.items()
        if name == precision_metrics.DISPOSITIONS_TOTAL
    }
    assert totals == {"fraud": 3, "legitimate": 1, "unsure": 1}
    # No alert hook acted on anyone: no per-rule series.
    assert not [k for k in scraped if k[0] == precision_metrics.RULE_PRECISION]


def test_the_latest_verdict_on_a_user_counts(client: TestClient, token_for: Headers) -> None:
    fresh(client)
    analyst, viewer = token_for("analyst"), token_for("viewer")
    judge(client, analyst, 1, "fraud")
    judge(client, analyst, 2, "legitimate")
    assert scrape(client, viewer)[(precision_metrics.ALERT_PRECISION, version("unknown"))] == 0.5
    judge(client, analyst, 2, "fraud")  # the analyst changes their mind
    assert scrape(client, viewer)[(precision_metrics.ALERT_PRECISION, version("unknown"))] == 1.0
    judge(client, analyst, 1, "unsure")  # withdrawn: user 1 leaves the ratio
    scraped = scrape(client, viewer)
    assert scraped[(precision_metrics.ALERT_JUDGED, version("unknown"))] == 1
    assert scraped[(precision_metrics.DISPOSITIONS_TOTAL, (("label", "fraud"),))] == 2


def test_without_judged_flagged_users_there_is_no_ratio(
    client: TestClient, token_for: Headers
) -> None:
    judge(client, token_for("analyst"), 4, "unsure")
    scraped = scrape(client, token_for("viewer"))
    assert (precision_metrics.ALERT_PRECISION, version("unknown")) not in scraped
    assert scraped[(precision_metrics.ALERT_JUDGED, version("unknown"))] == 0


def test_precision_per_alert_rule_counts_the_accounts_a_hook_acted_on(
    client: TestClient, token_for: Headers
) -> None:
    # Grafana locks user 1 (score 1.0) and steps up user 5 (0.9, not flagged); user 20 (0.525)
    # is below the step-up threshold, so the hook does nothing to it. Watcher locks user 2.
    assert user_score(20) < 0.8 <= user_score(5)
    outcomes = post_signed(
        client, "/v1/hooks/grafana", grafana_payload((1, 1.0), (5, 0.9), (20, 0.525))
    ).json()["outcomes"]
    assert [o["result"] for o in outcomes] == ["applied", "applied", "no_action"]
    watched = post_signed(client, "/v1/hooks/watcher", watcher_payload((2, 0.99))).json()
    assert [o["result"] for o in watched["outcomes"]] == ["applied"]
    analyst = token_for("analyst")
    for user, label in ((1, "fraud"), (5, "legitimate"), (20, "fraud"), (2, "fraud")):
        judge(client, analyst, user, label)
    judge(client, analyst, 3, "legitimate")  # flagged, but no hook acted on it
    scraped = scrape(client, token_for("automation"))

    def rule(name: str, via: str) -> float:
        return scraped[(name, (("model_version", "unknown"), ("via", via)))]

    assert rule(precision_metrics.RULE_PRECISION, "hook:grafana") == 0.5
    assert rule(precision_metrics.RULE_JUDGED, "hook:grafana") == 2
    assert rule(precision_metrics.RULE_PRECISION, "hook:watcher") == 1.0
    assert rule(precision_metrics.RULE_JUDGED, "hook:watcher") == 1
    # Flagged users judged: 1 and 2 fraud, 3 legitimate (5 and 20 are not flagged).
    assert scraped[(precision_metrics.ALERT_PRECISION, version("unknown"))] == pytest.approx(0.6667)


def test_a_dry_run_counts_as_the_rule_acting(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(FRAUDWATCH_DRY_RUN="true")
    headers = {"Authorization": "Bearer " + create_token(client.store, "analyst")[0]}  # type: ignore[attr-defined]
    outcomes = post_signed(client, "/v1/hooks/grafana", grafana_payload((1, 1.0))).json()
    assert [o["result"] for o in outcomes["outcomes"]] == ["dry_run"]
    judge(client, headers, 1, "legitimate")
    scraped = scrape(client, headers)
    key = (
        precision_metrics.RULE_PRECISION,
        (("model_version", "unknown"), ("via", "hook:grafana")),
    )
    assert scraped[key] == 0.0


def test_scrapes_within_the_cache_age_reuse_the_last_read(
    client: TestClient, token_for: Headers
) -> None:
    collector = client.app.state.precision_metrics  # type: ignore[attr-defined]
    assert collector.max_age == precision_metrics.CACHE_SECONDS
    now = [1000.0]
    collector.clock = lambda: now[0]
    analyst, viewer = token_for("analyst"), token_for("viewer")
    judge(client, analyst, 1, "fraud")
    key = (precision_metrics.ALERT_JUDGED, version("unknown"))
    assert scrape(client, viewer)[key] == 1
    judge(client, analyst, 2, "fraud")
    now[0] += precision_metrics.CACHE_SECONDS - 1
    assert scrape(client, viewer)[key] == 1  # cached
    now[0] += 1
    assert scrape(client, viewer)[key] == 2


def test_results_that_cannot_be_read_keep_the_last_values_and_metrics_answer(
    client: TestClient, token_for: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    fresh(client)
    analyst, viewer = token_for("analyst"), token_for("viewer")
    judge(client, analyst, 1, "fraud")
    key = (precision_metrics.ALERT_PRECISION, version("unknown"))
    assert scrape(client, viewer)[key] == 1.0

    class Down:
        def anomalies(self, *args: object, **kwargs: object) -> None:
            raise ResultsUnavailable("Elasticsearch is down")

    client.app.state.precision_metrics.results = Down()  # type: ignore[attr-defined]
    response = client.get("/metrics", headers=viewer)
    assert response.status_code == 200
    assert "fraudwatch_http_request_seconds" in response.text
    assert scrape(client, viewer)[key] == 1.0
    assert "measured precision" in caplog.text


def test_metrics_need_a_token_that_may_read_them(client: TestClient, token_for: Headers) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=token_for("decisions")).status_code == 403


# --- the served model version -----------------------------------------------------------
@pytest.fixture
def versioned(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Path]]:
    """A service whose scored directory names its model version in run.json."""
    scored = write_scored(tmp_path / "scored")
    monkeypatch.setenv("FRAUDWATCH_HOOK_SECRET", "test-hook-secret-not-for-production")
    store = SqliteStore(home / "state.sqlite3")
    app = create_app(load_settings().with_scored(scored), store, ScoredResults(scored))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.store = store  # type: ignore[attr-defined]
        yield client, scored


def serve_version(scored: Path, name: str) -> None:
    (scored / "run.json").write_text(
        json.dumps({"model_version": name, "created_at": "2026-03-01T00:00:00+00:00"})
    )


def test_the_series_is_the_served_versions_and_counts_only_its_verdicts(
    versioned: tuple[TestClient, Path],
) -> None:
    client, scored = versioned
    fresh(client)
    headers = {"Authorization": "Bearer " + create_token(client.store, "analyst")[0]}  # type: ignore[attr-defined]
    serve_version(scored, "v1")
    judge(client, headers, 1, "fraud")
    judge(client, headers, 2, "legitimate")
    scraped = scrape(client, headers)
    assert scraped[(precision_metrics.ALERT_PRECISION, version("v1"))] == 0.5
    serve_version(scored, "v2")  # a new model version is served
    judge(client, headers, 2, "fraud")
    scraped = scrape(client, headers)
    assert [k for k in scraped if k[1] == version("v1")] == []
    assert scraped[(precision_metrics.ALERT_PRECISION, version("v2"))] == 1.0
    assert scraped[(precision_metrics.ALERT_JUDGED, version("v2"))] == 1
    assert scraped[(precision_metrics.DISPOSITIONS_TOTAL, (("label", "fraud"),))] == 2


# --- the dashboard panel ------------------------------------------------------------------
def test_the_interventions_dashboard_panel_queries_the_exported_metrics(
    client: TestClient, token_for: Headers
) -> None:
    """The committed dashboard's panel queries the precision metrics by the names the
    service exports (read from a scrape, not retyped)."""
    post_signed(client, "/v1/hooks/grafana", grafana_payload((1, 1.0)))
    judge(client, token_for("analyst"), 1, "fraud")
    text = client.get("/metrics", headers=token_for("viewer")).text
    exported = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert {precision_metrics.ALERT_PRECISION, precision_metrics.RULE_PRECISION} <= exported
    board = json.loads(INTERVENTIONS_JSON.read_text())
    (panel,) = [p for p in board["panels"] if p["title"] == PANEL]
    assert panel["datasource"]["uid"] == "prometheus"
    exprs = [t["expr"] for t in panel["targets"]]
    for name in (precision_metrics.ALERT_PRECISION, precision_metrics.RULE_PRECISION):
        assert any(name + "{" in e or name + ")" in e or e.endswith(name) for e in exprs), name
    legends = " ".join(t["legendFormat"] for t in panel["targets"])
    assert "{{model_version}}" in legends and "{{via}}" in legends
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"
