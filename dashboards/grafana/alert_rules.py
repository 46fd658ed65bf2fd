"""Grafana alerting as code: rule groups, contact points and the notification policy.

Built with grafana-foundation-sdk's alerting builders, then written in Grafana's file
provisioning format (provisioning/alerting/fraudwatch.yaml). Grafana expands `${VAR}` in
provisioning files, so templates here avoid `$` (they use `index .Labels "user_id"`), and the
score threshold lives in the Elasticsearch query (`ensemble_score:>=ALERT_AT`) rather than in
a math expression; its value comes from fraudwatch.scoring.thresholds, the one home of the
score thresholds. Operational thresholds (anomalies per minute, consumer lag, the inline
decisions' fallback share) compare no score: they are named constants here, beside their rules.

Routing: rules labelled `fraudwatch_route=intervention` carry a `user_id` label and go to the
intervention service's Grafana hook (which acts per the policy in docs/intervention.md) and on
to on-call; everything else goes to on-call only.
"""

from __future__ import annotations

import json
from typing import Any

from fraudwatch.scoring.thresholds import THRESHOLDS
from grafana_foundation_sdk.builders import alerting
from grafana_foundation_sdk.builders import elasticsearch as es
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from interventions_dashboard import BREAKER_QUEUED, FALLBACK_SHARE, RATE_WINDOW
from panel_queries import (
    ELASTICSEARCH_UID,
    FLAGGED_TRANSACTIONS,
    PROMETHEUS_UID,
    TIME_FIELD,
    promql,
    terms,
)
from pipeline_health_dashboard import CONSUMER_GROUP

FOLDER = "fraudwatch"
#: Ensemble score at which a user is sent to the intervention service; the service's own policy
#: then picks step-up or lock (all from fraudwatch.scoring.thresholds).
SCORE_THRESHOLD = THRESHOLDS.alert_at
#: Flagged transactions per minute that count as a surge.
SURGE_PER_MINUTE = 50
#: Unconsumed messages of the streaming scorer's consumer group that page on-call.
MAX_STREAMING_LAG = 10_000
#: Share of inline decisions (POST /v1/decisions) answered with the safe default
#: (decisions.fallback) above which on-call is paged: scored answers are ~100 % in normal
#: operation (a missing model makes it 100 % fallback); 5 % sustained for FALLBACK_FOR is an
#: outage or a saturated scorer, not a few slow requests.
MAX_DECISION_FALLBACK_SHARE = 0.05
FALLBACK_FOR = "5m"
INTERVENTION_RECEIVER = "fraudwatch-intervention"
ONCALL_RECEIVER = "fraudwatch-oncall"
ROUTE_LABEL = "fraudwatch_route"
EXPRESSION_DATASOURCE = "__expr__"


def _plain(obj: Any) -> Any:
    """An SDK model as plain JSON data (the SDK's to_json is shallow)."""
    return json.loads(JSONEncoder(sort_keys=True).encode(obj))


def _es_model(ref_id: str, query: str, metrics: list[Any], buckets: list[Any]) -> es.Dataquery:
    return (
        es.Dataquery()
        .ref_id(ref_id)
        .query(query)
        .time_field(TIME_FIELD)
        .metrics(metrics)
        .bucket_aggs(buckets)
    )


def _per_minute() -> es.DateHistogram:
    return (
        es.DateHistogram()
        .id("3")
        .field(TIME_FIELD)
        .settings(es.ElasticsearchDateHistogramSettings().interval("1m").min_doc_count("0"))
    )


def _expression(ref_id: str, model: dict[str, Any]) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "datasourceUid": EXPRESSION_DATASOURCE,
        "relativeTimeRange": {"from": 0, "to": 0},
        "model": {
            "refId": ref_id,
            "datasource": {"type": EXPRESSION_DATASOURCE, "uid": EXPRESSION_DATASOURCE},
            **model,
        },
    }


def _reduce(ref_id: str, expression: str, reducer: str) -> dict[str, Any]:
    return _expression(ref_id, {"type": "reduce", "expression": expression, "reducer": reducer})


def _above(ref_id: str, expression: str, value: float) -> dict[str, Any]:
    return _expression(
        ref_id,
        {
            "type": "threshold",
            "expression": expression,
            "conditions": [{"evaluator": {"type": "gt", "params": [value]}}],
        },
    )


def _query(ref_id: str, datasource_uid: str, model: Any, seconds: int) -> alerting.Query:
    return (
        alerting.Query(ref_id)
        .datasource_uid(datasource_uid)
        .model(model)
        .relative_time_range(_relative(seconds))
    )


def _relative(seconds: int) -> Any:
    from grafana_foundation_sdk.models.alerting import RelativeTimeRange

    return RelativeTimeRange(from_val=seconds, to=0)


def _rule(
    uid: str,
    title: str,
    query: alerting.Query,
    expressions: list[dict[str, Any]],
    *,
    labels: dict[str, str],
    summary: str,
    description: str,
    for_: str,
    no_data: str = "OK",
) -> dict[str, Any]:
    """One rule in provisioning form: the SDK builds and types it, expressions are appended."""
    built = (
        alerting.Rule(title)
        .uid(uid)
        .condition("alert")
        .with_query(query)
        .for_val(for_)
        .no_data_state(no_data)  # type: ignore[arg-type]
        .exec_err_state("Error")
        .labels(labels)
        .annotations({"summary": summary, "description": description})
        .is_paused(False)
        .build()
    )
    built = _plain(built)
    rule = {
        key: built[key]
        for key in ("uid", "title", "condition", "data", "noDataState", "execErrState", "for")
    }
    rule["data"] = [_query_json(q) for q in rule["data"]] + expressions
    rule["annotations"] = built["annotations"]
    rule["labels"] = built["labels"]
    rule["isPaused"] = False
    return rule


def _query_json(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in ("refId", "datasourceUid", "relativeTimeRange", "model")}


def high_score_rule(threshold: float = SCORE_THRESHOLD) -> dict[str, Any]:
    query = f"record_type:transaction AND ensemble_score:>={threshold}"
    model = _es_model(
        "A",
        query,
        [es.Max().id("1").field("ensemble_score")],
        [terms("user_id", "2", size=100, order_by="1"), _per_minute()],
    )
    return _rule(
        "fraudwatch-high-ensemble-score",
        "High ensemble anomaly score",
        _query("A", ELASTICSEARCH_UID, model, 300),
        [_reduce("score", "A", "max"), _above("alert", "score", 0)],
        labels={"severity": "critical", ROUTE_LABEL: "intervention"},
        summary='User {{ index .Labels "user_id" }} scored at or above the alert threshold',
        description=(
            f"A transaction of this user was scored with ensemble_score >= {threshold} in the "
            "last 5 minutes; the intervention service applies step-up or lock per its policy."
        ),
        for_="0s",
    )


def surge_rule(per_minute: int = SURGE_PER_MINUTE) -> dict[str, Any]:
    model = _es_model("A", FLAGGED_TRANSACTIONS, [es.Count().id("1")], [_per_minute()])
    return _rule(
        "fraudwatch-anomaly-surge",
        "Surge in anomalies per minute",
        _query("A", ELASTICSEARCH_UID, model, 600),
        [_reduce("per_minute", "A", "max"), _above("alert", "per_minute", per_minute)],
        labels={"severity": "warning", ROUTE_LABEL: "oncall"},
        summary=f"More than {per_minute} flagged transactions in one minute",
        description="A campaign (card testing, takeover wave) or a scoring regression: check the anomaly overview dashboard.",
        for_="2m",
    )


def streaming_lag_rule(max_lag: int = MAX_STREAMING_LAG) -> dict[str, Any]:
    expr = f'sum(kafka_consumergroup_lag{{consumergroup="{CONSUMER_GROUP}"}})'
    return _rule(
        "fraudwatch-streaming-lag",
        "Streaming scorer lagging",
        _query("A", PROMETHEUS_UID, promql("A", expr, "lag"), 600),
        [_reduce("lag", "A", "last"), _above("alert", "lag", max_lag)],
        labels={"severity": "warning", ROUTE_LABEL: "oncall"},
        summary=f"The streaming scorer is more than {max_lag} messages behind",
        description="Transactions are scored late, so alerts and interventions are late too: check the pipeline health dashboard.",
        for_="5m",
        no_data="Alerting",
    )


def circuit_breaker_rule() -> dict[str, Any]:
    return _rule(
        "fraudwatch-circuit-breaker-open",
        "Intervention circuit breaker open",
        _query("A", PROMETHEUS_UID, promql("A", BREAKER_QUEUED, "queued"), 900),
        [_reduce("queued", "A", "last"), _above("alert", "queued", 0)],
        labels={"severity": "critical", ROUTE_LABEL: "oncall"},
        summary="Automated interventions are queued for approval",
        description="Too many automated locks in the breaker window: approve or reject them in the admin page's approvals.",
        for_="0s",
    )


def decision_fallback_rule(max_share: float = MAX_DECISION_FALLBACK_SHARE) -> dict[str, Any]:
    """An operations alert (on-call), not a fraud alert: it names no account, so it is never
    routed to the intervention hook."""
    return _rule(
        "fraudwatch-decision-fallbacks",
        "Inline decisions falling back",
        _query("A", PROMETHEUS_UID, promql("A", FALLBACK_SHARE, "fallback share"), 600),
        [_reduce("fallback_share", "A", "last"), _above("alert", "fallback_share", max_share)],
        labels={"severity": "critical", ROUTE_LABEL: "oncall"},
        summary=(
            f"More than {max_share:.0%} of inline decisions are the safe default "
            "(decisions.fallback), not the model's"
        ),
        description=(
            f"Over the last {RATE_WINDOW}, more than {max_share:.0%} of POST /v1/decisions "
            "answers were decisions.fallback: payments get the fallback answer instead of a "
            "scored one. The cause is in fraudwatch_decision_fallbacks_total{cause}: no_model "
            "(nothing promoted in decisions.registry), model_error, state_error (the user "
            "history), scoring_error, budget (decisions.budget_ms spent: the scorer is "
            "saturated). See the 'Decision fallback rate' panel of the interventions dashboard "
            "and the service log."
        ),
        for_=FALLBACK_FOR,
    )


def rule_groups(threshold: float = SCORE_THRESHOLD) -> list[dict[str, Any]]:
    return [
        {
            "orgId": 1,
            "name": "fraudwatch-anomalies",
            "folder": FOLDER,
            "interval": "1m",
            "rules": [high_score_rule(threshold), surge_rule()],
        },
        {
            "orgId": 1,
            "name": "fraudwatch-pipeline",
            "folder": FOLDER,
            "interval": "1m",
            "rules": [streaming_lag_rule(), circuit_breaker_rule(), decision_fallback_rule()],
        },
    ]


def contact_points() -> list[dict[str, Any]]:
    intervention = (
        alerting.ContactPoint()
        .name(INTERVENTION_RECEIVER)
        .uid("fraudwatch-intervention-webhook")
        .type("webhook")
        .disable_resolve_message(True)  # undoing an action is a human decision
        .settings(
            {
                "url": "${FRAUDWATCH_INTERVENTION_URL}/v1/hooks/grafana",
                "httpMethod": "POST",
                "authorization_scheme": "Bearer",
                # A token of role automation (`fraudwatch tokens create --role automation`),
                # from the secret mounted into Grafana; never in this file.
                "authorization_credentials": "${FRAUDWATCH_INTERVENTION_HOOK_TOKEN}",
                "maxAlerts": 100,
            }
        )
        .build()
    )
    oncall = (
        alerting.ContactPoint()
        .name(ONCALL_RECEIVER)
        .uid("fraudwatch-oncall-email")
        .type("email")
        .settings({"addresses": "${FRAUDWATCH_ONCALL_EMAIL}", "singleEmail": True})
        .build()
    )
    return [
        {
            "orgId": 1,
            "name": point["name"],
            "receivers": [
                {
                    "uid": point["uid"],
                    "type": point["type"],
                    "settings": point["settings"],
                    "disableResolveMessage": point.get("disableResolveMessage", False),
                }
            ],
        }
        for point in (_plain(intervention), _plain(oncall))
    ]


def notification_policies() -> list[dict[str, Any]]:
    route = (
        alerting.NotificationPolicy()
        .receiver(INTERVENTION_RECEIVER)
        .object_matchers([[ROUTE_LABEL, "=", "intervention"]])
        .group_by(["alertname", "user_id"])
        .group_wait("0s")
        .group_interval("1m")
        .repeat_interval("4h")
        .continue_val(True)
        .build()
    )
    root = (
        alerting.NotificationPolicy()
        .receiver(ONCALL_RECEIVER)
        .group_by(["grafana_folder", "alertname"])
        .group_wait("30s")
        .group_interval("5m")
        .repeat_interval("4h")
        .build()
    )
    root = _plain(root)
    root["routes"] = [_plain(route)]
    return [{"orgId": 1, **root}]


def provisioning(threshold: float = SCORE_THRESHOLD) -> dict[str, Any]:
    """The whole alerting provisioning document."""
    return {
        "apiVersion": 1,
        "groups": rule_groups(threshold),
        "contactPoints": contact_points(),
        "policies": notification_policies(),
    }
