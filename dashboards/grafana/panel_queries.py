"""Query and panel builders shared by the fraudwatch dashboards (grafana-foundation-sdk).

Datasources are referenced by the UIDs the deployment provisions (`elasticsearch`,
`prometheus`); hosts live only in provisioning/datasources/fraudwatch.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import elasticsearch as es
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import elasticsearch as es_model

ELASTICSEARCH_UID = "elasticsearch"
PROMETHEUS_UID = "prometheus"
ELASTICSEARCH = model.DataSourceRef(type_val="elasticsearch", uid=ELASTICSEARCH_UID)
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
TIME_FIELD = "ts"
#: Lucene filters that pick one document kind out of the `fraudwatch-*` index pattern.
TRANSACTIONS = "record_type:transaction"
FLAGGED_TRANSACTIONS = "record_type:transaction AND flagged:true"
USERS = "record_type:user"
AUDIT = "record_type:audit"


class PanelBuilder(Protocol):
    """What every panel builder of the SDK (timeseries, table, stat, ...) has."""

    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def datasource(self, datasource: model.DataSourceRef) -> Self: ...
    def span(self, w: int) -> Self: ...
    def height(self, h: int) -> Self: ...


Panel = TypeVar("Panel", bound=PanelBuilder)


def es_query(
    ref_id: str,
    query: str,
    metrics: list,
    buckets: list,
    alias: str | None = None,
) -> es.Dataquery:
    """An Elasticsearch query on the `ts` time field."""
    q = (
        es.Dataquery()
        .ref_id(ref_id)
        .datasource(ELASTICSEARCH)
        .query(query)
        .time_field(TIME_FIELD)
        .metrics(metrics)
        .bucket_aggs(buckets)
    )
    return q.alias(alias) if alias else q


def over_time(field_id: str = "2", interval: str = "auto") -> es.DateHistogram:
    return (
        es.DateHistogram()
        .id(field_id)
        .field(TIME_FIELD)
        .settings(es.ElasticsearchDateHistogramSettings().interval(interval).min_doc_count("0"))
    )


def terms(field: str, field_id: str, size: int = 10, order_by: str = "_count") -> es.Terms:
    return (
        es.Terms()
        .id(field_id)
        .field(field)
        .settings(
            es.ElasticsearchTermsSettings()
            .size(str(size))
            .order_by(order_by)
            .order(es_model.TermsOrder.DESC)
            .min_doc_count("1")
        )
    )


def count(metric_id: str = "1") -> es.Count:
    return es.Count().id(metric_id)


def maximum(field: str, metric_id: str = "1") -> es.Max:
    return es.Max().id(metric_id).field(field)


def average(field: str, metric_id: str = "1") -> es.Average:
    return es.Average().id(metric_id).field(field)


def promql(ref_id: str, expr: str, legend: str) -> prom.Dataquery:
    return (
        prom.Dataquery()
        .ref_id(ref_id)
        .datasource(PROMETHEUS)
        .expr(expr)
        .legend_format(legend)
        .range()
    )


def fraudwatch_dashboard(
    title: str, *, uid: str, tag: str, description: str, since: str
) -> dash.Dashboard:
    """A dashboard titled `fraudwatch: <title>`, tagged fraudwatch and `tag`, showing the last
    `since` (e.g. 6h) in UTC and refreshed every minute; its panels are added by the caller."""
    return (
        dash.Dashboard(f"fraudwatch: {title}")
        .uid(uid)
        .tags(["fraudwatch", tag])
        .description(description)
        .time(f"now-{since}", "now")
        .refresh("1m")
        .timezone("utc")
    )


def panel(
    kind: Callable[[], Panel],
    title: str,
    description: str,
    datasource: model.DataSourceRef,
    *,
    span: int,
    height: int,
) -> Panel:
    """A `kind` panel (timeseries.Panel, table.Panel, ...) with its title, description and
    datasource, `span` of the grid's 24 columns wide and `height` rows high; its queries and
    options are added by the caller."""
    return (
        kind()
        .title(title)
        .description(description)
        .datasource(datasource)
        .span(span)
        .height(height)
    )


def prom_timeseries(
    title: str, description: str, expr: str, *, legend: str, unit: str
) -> timeseries.Panel:
    """A half-width time series of one PromQL expression (the pipeline-health and platform
    dashboards' panels)."""
    return (
        panel(timeseries.Panel, title, description, PROMETHEUS, span=12, height=8)
        .with_target(promql("A", expr, legend))
        .unit(unit)
    )


def admin_user_link() -> model.DynamicConfigValue:
    """A data link from a `user_id` cell to the admin page's user view."""
    return model.DynamicConfigValue(
        id_val="links",
        value=[
            {
                "title": "Open user in the admin page",
                "url": "${admin_url}/admin/users/${__value.raw}",
                "targetBlank": True,
            }
        ],
    )


def admin_url_variable() -> dash.TextBoxVariable:
    """The intervention service's public URL, for links into its admin page."""
    return (
        dash.TextBoxVariable("admin_url")
        .label("Admin page URL")
        .description("Base URL of the intervention service (its /admin page)")
        .default_value("https://fraudwatch.example.internal")
    )
