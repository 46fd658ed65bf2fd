"""Anomaly overview: what the models see, who is most anomalous, where anomalies concentrate."""

from __future__ import annotations

from fraudwatch.contract.scored_output import SCORE_COLUMNS
from grafana_foundation_sdk.builders import barchart, dashboard, geomap, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.models import common
from panel_queries import (
    ELASTICSEARCH,
    FLAGGED_TRANSACTIONS,
    TRANSACTIONS,
    USERS,
    admin_url_variable,
    admin_user_link,
    average,
    count,
    es_query,
    fraudwatch_dashboard,
    maximum,
    over_time,
    panel,
    terms,
)

UID = "fraudwatch-anomaly-overview"


def _score_over_time() -> timeseries.Panel:
    scores = (
        panel(
            timeseries.Panel,
            "Anomaly score over time, per model",
            "Mean per-model calibrated score of scored transactions (the share of the training population scoring lower).",
            ELASTICSEARCH,
            span=24,
            height=8,
        )
        .unit("percentunit")
        .min(0)
        .max(1)
    )
    # The ensemble, then one line per model: queries A, B, ...
    for n, field in enumerate(SCORE_COLUMNS):
        scores = scores.with_target(
            es_query(chr(ord("A") + n), TRANSACTIONS, [average(field)], [over_time()], alias=field)
        )
    return scores


def _top_users() -> table.Panel:
    return (
        panel(
            table.Panel,
            "Top anomalous users",
            "Highest ensemble score per user in the time range; click a user to open it in the admin page.",
            ELASTICSEARCH,
            span=12,
            height=10,
        )
        .with_target(
            es_query(
                "A",
                USERS,
                [maximum("ensemble_score", "1")],
                [terms("user_id", "2", size=25, order_by="1"), terms("persona", "3", size=1)],
            )
        )
        .override_by_name("user_id", [admin_user_link()])
    )


def _by(field: str, title: str, size: int = 24, width: int = 8) -> barchart.Panel:
    return panel(
        barchart.Panel,
        title,
        f"Flagged transactions by {field}.",
        ELASTICSEARCH,
        span=width,
        height=10,
    ).with_target(es_query("A", FLAGGED_TRANSACTIONS, [count()], [terms(field, "2", size=size)]))


def _geo() -> geomap.Panel:
    layer = (
        common_builders.MapLayerOptions()
        .type("markers")
        .name("Flagged transactions")
        .location(
            common_builders.FrameGeometrySource()
            .mode(common.FrameGeometrySourceMode.LOOKUP)
            .lookup("country")
            .gazetteer("public/gazetteer/countries.json")
        )
        .config({"showLegend": True, "style": {"size": {"field": "Count", "min": 2, "max": 30}}})
    )
    return (
        panel(
            geomap.Panel,
            "Anomalies by IP country",
            "Flagged transactions by the country their IP resolves to (ISO 3166 alpha-2).",
            ELASTICSEARCH,
            span=24,
            height=12,
        )
        .with_target(
            es_query("A", FLAGGED_TRANSACTIONS, [count()], [terms("country", "2", size=250)])
        )
        .layers([layer])
    )


def build() -> dashboard.Dashboard:
    return (
        fraudwatch_dashboard(
            "anomaly overview",
            uid=UID,
            tag="anomalies",
            description="Scores over time, the most anomalous users and where anomalies concentrate.",
            since="24h",
        )
        .with_variable(admin_url_variable())
        .with_panel(_score_over_time())
        .with_panel(_top_users())
        .with_panel(_by("hour", "Anomalies by hour of day", width=12))
        .with_panel(_by("tx_type", "Anomalies by transaction type", size=10))
        .with_panel(_by("persona", "Anomalies by persona", size=4))
        .with_panel(_by("channel", "Anomalies by channel", size=10))
        .with_panel(_geo())
    )
