"""Interventions: what automation and analysts did, the circuit breaker, measured alert
precision, the latest audit entries."""

from __future__ import annotations

from fraudwatch.intervention.precision_metrics import ALERT_PRECISION, RULE_PRECISION
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, stat, table, timeseries
from grafana_foundation_sdk.builders import elasticsearch as es
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from panel_queries import (
    AUDIT,
    ELASTICSEARCH,
    PROMETHEUS,
    admin_url_variable,
    es_query,
    fraudwatch_dashboard,
    promql,
)

UID = "fraudwatch-interventions"
#: The intervention service counts actions by `via`: hook:* is automation, the rest are people.
SOURCES = {"automated": 'via=~"hook:.*"', "manual": 'via!~"hook:.*"'}
#: 1 while any replica reports the breaker open (the gauge is read from the shared store).
BREAKER_OPEN = "max(fraudwatch_circuit_breaker_open) or vector(0)"
#: Measured precision as the service exports it (fraudwatch.intervention.precision_metrics);
#: every replica reads the same store, so `max` merges them.
PRECISION_BY_VERSION = f"max by (model_version) ({ALERT_PRECISION})"
PRECISION_BY_RULE = f"max by (model_version, via) ({RULE_PRECISION})"
BREAKER_QUEUED = (
    'sum(increase(fraudwatch_interventions_total{result="queued", via=~"hook:.*"}[15m]))'
    " or vector(0)"
)


def _actions(source: str, selector: str) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(f"Actions over time: {source}")
        .description(
            f"{source.capitalize()} interventions per minute by action and result "
            "(fraudwatch_interventions_total)."
        )
        .datasource(PROMETHEUS)
        .with_target(
            promql(
                "A",
                "sum by (action, result) "
                f"(rate(fraudwatch_interventions_total{{{selector}}}[5m])) * 60",
                "{{action}} ({{result}})",
            )
        )
        .unit("short")
        .stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
        .span(9)
        .height(8)
    )


def _breaker() -> stat.Panel:
    return (
        stat.Panel()
        .title("Circuit breaker")
        .description(
            "1 = open: automated locks reached the limit within the window, so automation only "
            "queues for approval until the window moves on (fraudwatch_circuit_breaker_open; "
            "docs/intervention.md). B: automated actions queued in the last 15 minutes."
        )
        .datasource(PROMETHEUS)
        .with_target(promql("A", BREAKER_OPEN, "breaker open"))
        .with_target(promql("B", BREAKER_QUEUED, "queued automated actions"))
        .thresholds(
            dashboard.ThresholdsConfig()
            .mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(None, "green"), model.Threshold(1, "red")])
        )
        .span(6)
        .height(8)
    )


def _precision() -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title("Alert precision (confirmed fraud share)")
        .description(
            "Of the flagged users analysts judged fraud or legitimate, the share judged fraud "
            f"(each user's latest verdict): per served model version ({ALERT_PRECISION}) and "
            f"per alert hook, over the accounts it acted on ({RULE_PRECISION}). Read from the "
            "service's state store at scrape time; few verdicts make a noisy ratio — the "
            "*_judged_users metrics give the count. docs/feedback.md."
        )
        .datasource(PROMETHEUS)
        .with_target(promql("A", PRECISION_BY_VERSION, "{{model_version}}"))
        .with_target(promql("B", PRECISION_BY_RULE, "{{via}} ({{model_version}})"))
        .unit("percentunit")
        .min(0)
        .max(1)
        .span(24)
        .height(8)
    )


def _audit() -> table.Panel:
    raw = es.RawData().id("1").settings(es.ElasticsearchRawDataSettings().size("50"))
    return (
        table.Panel()
        .title("Latest audit entries")
        .description(
            "The newest entries of the intervention service's audit log (index fraudwatch-audit); "
            "the admin page's /admin/audit is the authoritative, verifiable view."
        )
        .datasource(ELASTICSEARCH)
        .with_target(es_query("A", AUDIT, [raw], []))
        .span(24)
        .height(10)
    )


def build() -> dashboard.Dashboard:
    board = fraudwatch_dashboard(
        "interventions",
        uid=UID,
        tag="interventions",
        description=(
            "Locks, step-ups and blocks by source, the automation circuit breaker, measured "
            "alert precision, audit."
        ),
        since="24h",
    ).with_variable(admin_url_variable())
    for source, selector in SOURCES.items():
        board = board.with_panel(_actions(source, selector))
    return board.with_panel(_breaker()).with_panel(_precision()).with_panel(_audit())
