"""Pipeline health: Kafka lag, streaming throughput, batch durations, indexing, model versions."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, table, timeseries
from panel_queries import ELASTICSEARCH, PROMETHEUS, TRANSACTIONS, count, es_query, promql, terms

UID = "fraudwatch-pipeline-health"
#: The streaming scorer's consumer group (kafka-exporter metrics, as Strimzi deploys it).
CONSUMER_GROUP = "fraudwatch-streaming-scorer"


def _prom_panel(
    title: str, description: str, expr: str, legend: str, unit: str
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .with_target(promql("A", expr, legend))
        .unit(unit)
        .span(12)
        .height(8)
    )


def _model_versions() -> table.Panel:
    return (
        table.Panel()
        .title("Model versions in use")
        .description("Scored transactions per model version in the time range.")
        .datasource(ELASTICSEARCH)
        .with_target(es_query("A", TRANSACTIONS, [count()], [terms("model_version", "2", size=20)]))
        .span(12)
        .height(8)
    )


def build() -> dashboard.Dashboard:
    return (
        dashboard.Dashboard("fraudwatch: pipeline health")
        .uid(UID)
        .tags(["fraudwatch", "pipeline"])
        .description("Is data flowing: Kafka lag, throughput, batch runs, Elasticsearch indexing.")
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("utc")
        .with_panel(
            _prom_panel(
                "Kafka consumer lag",
                "Messages the streaming scorer has not consumed yet, per topic.",
                f'sum by (topic) (kafka_consumergroup_lag{{consumergroup="{CONSUMER_GROUP}"}})',
                "{{topic}}",
                "short",
            )
        )
        .with_panel(
            _prom_panel(
                "Streaming throughput",
                "Messages per second consumed by the streaming scorer, per topic.",
                f'sum by (topic) (rate(kafka_consumergroup_current_offset{{consumergroup="{CONSUMER_GROUP}"}}[5m]))',
                "{{topic}}",
                "ops",
            )
        )
        .with_panel(
            _prom_panel(
                "Batch job durations",
                "Wall time of the scheduled batch scoring runs (Spark Operator applications).",
                'max by (app_name) (spark_application_duration_seconds{namespace=~"fraudwatch.*"})',
                "{{app_name}}",
                "s",
            )
        )
        .with_panel(
            _prom_panel(
                "Elasticsearch indexing rate",
                "Documents indexed per second into fraudwatch indices (elasticsearch-exporter).",
                'sum(rate(elasticsearch_indices_indexing_index_total{index=~"fraudwatch-.*"}[5m]))',
                "indexed/s",
                "ops",
            )
        )
        .with_panel(
            _prom_panel(
                "Elasticsearch indexing errors",
                "Failed index operations per second (elasticsearch-exporter).",
                'sum(rate(elasticsearch_indices_indexing_index_failed_total{index=~"fraudwatch-.*"}[5m]))',
                "failed/s",
                "ops",
            )
        )
        .with_panel(_model_versions())
    )
