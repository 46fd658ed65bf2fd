"""Interventions: what automation and analysts did, the circuit breaker, measured alert
precision, the inline decisions (latency, outcome mix, fallback share), the latest audit
entries."""

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
    panel,
    prom_timeseries,
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

# --- inline decisions (POST /v1/decisions, docs/intervention.md "Inline decisions") ---------
# The names the intervention service exports on /metrics (intervention/decisions.py, and the
# request histogram of intervention/context.py). That module exports no name constants, so
# they are spelled here once; tests/unit/dashboards/test_decision_panels.py scrapes the real
# service after a real decision and fails when a name or label below is not what it exports.
#: Counter: every recorded answer, labels `decision` (allow, step_up, block) and `fallback`.
DECISIONS_TOTAL = "fraudwatch_decisions_total"
#: Counter: answers that were decisions.fallback, label `cause` (no_model, model_error,
#: state_error, scoring_error, budget).
DECISION_FALLBACKS_TOTAL = "fraudwatch_decision_fallbacks_total"
#: Histogram of every route's latency, labels `method`, `route` (the route template), `status`.
REQUEST_SECONDS = "fraudwatch_http_request_seconds"
DECISION_ROUTE = "/v1/decisions"
#: Answered decisions only: a shed request (503, answered at once) or a refused body (4xx)
#: would pull the quantiles down without being a decision.
DECISION_ANSWERS = f'method="POST", route="{DECISION_ROUTE}", status="200"'
RATE_WINDOW = "5m"
_DECIDED = f"sum(rate({DECISIONS_TOTAL}[{RATE_WINDOW}]))"
#: Share of the decisions answered with the safe default, all causes; empty (no data) while
#: nothing is decided, 0 while decisions flow and none fell back. The alert rule reads it too.
FALLBACK_SHARE = (
    f"(sum(rate({DECISION_FALLBACKS_TOTAL}[{RATE_WINDOW}])) or vector(0)) / ({_DECIDED} > 0)"
)
FALLBACK_SHARE_BY_CAUSE = (
    f"sum by (cause) (rate({DECISION_FALLBACKS_TOTAL}[{RATE_WINDOW}]))"
    f" / on() group_left() ({_DECIDED} > 0)"
)


def decision_latency(quantile: float) -> str:
    """The `quantile` of answered decisions' latency over the last RATE_WINDOW, all replicas."""
    return (
        f"histogram_quantile({quantile}, sum by (le) "
        f"(rate({REQUEST_SECONDS}_bucket{{{DECISION_ANSWERS}}}[{RATE_WINDOW}])))"
    )


def decision_outcomes(fallback: bool) -> str:
    """Decisions per second by answer, the scored ones or the fallback ones."""
    flag = "true" if fallback else "false"
    return f'sum by (decision) (rate({DECISIONS_TOTAL}{{fallback="{flag}"}}[{RATE_WINDOW}]))'


def _actions(source: str, selector: str) -> timeseries.Panel:
    return (
        panel(
            timeseries.Panel,
            f"Actions over time: {source}",
            f"{source.capitalize()} interventions per minute by action and result "
            "(fraudwatch_interventions_total).",
            PROMETHEUS,
            span=9,
            height=8,
        )
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
    )


def _breaker() -> stat.Panel:
    return (
        panel(
            stat.Panel,
            "Circuit breaker",
            "1 = open: automated locks reached the limit within the window, so automation only "
            "queues for approval until the window moves on (fraudwatch_circuit_breaker_open; "
            "docs/intervention.md). B: automated actions queued in the last 15 minutes.",
            PROMETHEUS,
            span=6,
            height=8,
        )
        .with_target(promql("A", BREAKER_OPEN, "breaker open"))
        .with_target(promql("B", BREAKER_QUEUED, "queued automated actions"))
        .thresholds(
            dashboard.ThresholdsConfig()
            .mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(None, "green"), model.Threshold(1, "red")])
        )
    )


def _precision() -> timeseries.Panel:
    return (
        panel(
            timeseries.Panel,
            "Alert precision (confirmed fraud share)",
            "Of the flagged users analysts judged fraud or legitimate, the share judged fraud "
            f"(each user's latest verdict): per served model version ({ALERT_PRECISION}) and "
            f"per alert hook, over the accounts it acted on ({RULE_PRECISION}). Read from the "
            "service's state store at scrape time; few verdicts make a noisy ratio — the "
            "*_judged_users metrics give the count. docs/feedback.md.",
            PROMETHEUS,
            span=24,
            height=8,
        )
        .with_target(promql("A", PRECISION_BY_VERSION, "{{model_version}}"))
        .with_target(promql("B", PRECISION_BY_RULE, "{{via}} ({{model_version}})"))
        .unit("percentunit")
        .min(0)
        .max(1)
    )


def _decision_latency() -> timeseries.Panel:
    return (
        prom_timeseries(
            "Decision latency (p50, p99)",
            f"Server time of answered inline decisions (POST {DECISION_ROUTE}, status 200; "
            f"replays of a tx_id included), over {RATE_WINDOW}, all replicas "
            f"({REQUEST_SECONDS}). The quantiles are interpolated within the histogram's "
            "buckets (5, 10, 25, 50, 75, 100 ms, ...), so they are as fine as those. The target "
            "is p99 <= 25 ms; past decisions.budget_ms the answer is the fallback.",
            decision_latency(0.5),
            legend="p50",
            unit="s",
        )
        .with_target(promql("B", decision_latency(0.99), "p99"))
        .min(0)
    )


def _decision_outcomes() -> timeseries.Panel:
    return (
        prom_timeseries(
            "Decision outcomes (allow, step_up, block)",
            "Inline decisions per second by answer, stacked: the scored ones and, apart, "
            f"those that were the configured fallback ({DECISIONS_TOTAL}, labels decision "
            "and fallback). Replays of a tx_id and shed requests (503) are not counted.",
            decision_outcomes(fallback=False),
            legend="{{decision}}",
            unit="reqps",
        )
        .with_target(promql("B", decision_outcomes(fallback=True), "{{decision}} (fallback)"))
        .stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    )


def _decision_fallbacks() -> timeseries.Panel:
    return (
        prom_timeseries(
            "Decision fallback rate (safe default, by cause)",
            "Share of inline decisions answered with decisions.fallback instead of the "
            f"model's score, per cause ({DECISION_FALLBACKS_TOTAL}: no_model, model_error, "
            "state_error, scoring_error, budget) and in all (the alert rule's query: "
            "'Inline decisions falling back'). Empty while no decision is made.",
            FALLBACK_SHARE_BY_CAUSE,
            legend="{{cause}}",
            unit="percentunit",
        )
        .with_target(promql("B", FALLBACK_SHARE, "all causes"))
        .min(0)
        .max(1)
        .span(24)
    )


def _audit() -> table.Panel:
    raw = es.RawData().id("1").settings(es.ElasticsearchRawDataSettings().size("50"))
    return panel(
        table.Panel,
        "Latest audit entries",
        "The newest entries of the intervention service's audit log (index fraudwatch-audit); "
        "the admin page's /admin/audit is the authoritative, verifiable view.",
        ELASTICSEARCH,
        span=24,
        height=10,
    ).with_target(es_query("A", AUDIT, [raw], []))


def build() -> dashboard.Dashboard:
    board = fraudwatch_dashboard(
        "interventions",
        uid=UID,
        tag="interventions",
        description=(
            "Locks, step-ups and blocks by source, the automation circuit breaker, measured "
            "alert precision, inline decisions (latency, outcomes, fallback share), audit."
        ),
        since="24h",
    ).with_variable(admin_url_variable())
    for source, selector in SOURCES.items():
        board = board.with_panel(_actions(source, selector))
    board = board.with_panel(_breaker()).with_panel(_precision())
    for decision_panel in (_decision_latency(), _decision_outcomes(), _decision_fallbacks()):
        board = board.with_panel(decision_panel)
    return board.with_panel(_audit())
