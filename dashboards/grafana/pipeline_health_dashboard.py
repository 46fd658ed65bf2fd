"""Pipeline health: Kafka lag, streaming throughput, batch durations, indexing, model versions."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, table
from panel_queries import (
    ELASTICSEARCH,
    TRANSACTIONS,
    count,
    es_query,
    fraudwatch_dashboard,
    panel,
    prom_timeseries,
    terms,
)

UID = "fraudwatch-pipeline-health"
#: The streaming scorer's consumer group (kafka-exporter metrics, as Strimzi deploys it).
CONSUMER_GROUP = "fraudwatch-streaming-scorer"


def _model_versions() -> table.Panel:
    return panel(
        table.Panel,
        "Model versions in use",
        "Scored transactions per model version in the time range.",
        ELASTICSEARCH,
        span=12,
        height=8,
    ).with_target(es_query("A", TRANSACTIONS, [count()], [terms("model_version", "2", size=20)]))


def build() -> dashboard.Dashboard:
    return (
        fraudwatch_dashboard(
            "pipeline health",
            uid=UID,
            tag="pipeline",
            description="Is data flowing: Kafka lag, throughput, batch runs, Elasticsearch indexing.",
            since="6h",
        )
        .with_panel(
            prom_timeseries(
                "Kafka consumer lag",
                "Messages the streaming scorer has not consumed yet, per topic.",
                f'sum by (topic) (kafka_consumergroup_lag{{consumergroup="{CONSUMER_GROUP}"}})',
                legend="{{topic}}",
                unit="short",
            )
        )
        .with_panel(
            prom_timeseries(
                "Streaming throughput",
                "Messages per second consumed by the streaming scorer, per topic.",
                f'sum by (topic) (rate(kafka_consumergroup_current_offset{{consumergroup="{CONSUMER_GROUP}"}}[5m]))',
                legend="{{topic}}",
                unit="ops",
            )
        )
        .with_panel(
            prom_timeseries(
                "Batch job durations",
                "Wall time of the scheduled batch scoring runs (Spark Operator applications).",
                'max by (app_name) (spark_application_duration_seconds{namespace=~"fraudwatch.*"})',
                legend="{{app_name}}",
                unit="s",
            )
        )
        .with_panel(
            prom_timeseries(
                "Elasticsearch indexing rate",
                "Documents indexed per second into fraudwatch indices (elasticsearch-exporter).",
                'sum(rate(elasticsearch_indices_indexing_index_total{index=~"fraudwatch-.*"}[5m]))',
                legend="indexed/s",
                unit="ops",
            )
        )
        .with_panel(
            prom_timeseries(
                "Elasticsearch indexing errors",
                "Failed index operations per second (elasticsearch-exporter).",
                'sum(rate(elasticsearch_indices_indexing_index_failed_total{index=~"fraudwatch-.*"}[5m]))',
                legend="failed/s",
                unit="ops",
            )
        )
        .with_panel(_model_versions())
    )
