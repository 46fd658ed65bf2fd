"""Platform: CPU, memory and disk I/O per service (Prometheus, cAdvisor and node metrics)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, timeseries
from panel_queries import PROMETHEUS, promql

UID = "fraudwatch-platform"
#: Containers of the fraudwatch namespaces, grouped by the service (pod's container) name.
SELECTOR = 'namespace=~"fraudwatch.*", container!="", container!="POD"'


def _panel(
    title: str, description: str, expr: str, unit: str, legend: str = "{{container}}"
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


def build() -> dashboard.Dashboard:
    return (
        dashboard.Dashboard("fraudwatch: platform")
        .uid(UID)
        .tags(["fraudwatch", "platform"])
        .description("Resource use per service and per node.")
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("utc")
        .with_panel(
            _panel(
                "CPU per service",
                "CPU cores used, per container.",
                f"sum by (container) (rate(container_cpu_usage_seconds_total{{{SELECTOR}}}[5m]))",
                "short",
            )
        )
        .with_panel(
            _panel(
                "Memory per service",
                "Working-set memory, per container.",
                f"sum by (container) (container_memory_working_set_bytes{{{SELECTOR}}})",
                "bytes",
            )
        )
        .with_panel(
            _panel(
                "Disk I/O per service",
                "Bytes read and written per second, per container.",
                f"sum by (container) (rate(container_fs_reads_bytes_total{{{SELECTOR}}}[5m]) + rate(container_fs_writes_bytes_total{{{SELECTOR}}}[5m]))",
                "Bps",
            )
        )
        .with_panel(
            _panel(
                "Node CPU",
                "Busy share of each node's CPUs (node-exporter).",
                '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))',
                "percentunit",
                "{{instance}}",
            )
        )
        .with_panel(
            _panel(
                "Node memory",
                "Memory in use per node (node-exporter).",
                "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes",
                "bytes",
                "{{instance}}",
            )
        )
        .with_panel(
            _panel(
                "Node disk I/O",
                "Bytes read and written per second per node (node-exporter).",
                "sum by (instance) (rate(node_disk_read_bytes_total[5m]) + rate(node_disk_written_bytes_total[5m]))",
                "Bps",
                "{{instance}}",
            )
        )
    )
