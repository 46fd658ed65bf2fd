"""Platform: CPU, memory and disk I/O per service (Prometheus, cAdvisor and node metrics)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from panel_queries import fraudwatch_dashboard, prom_timeseries

UID = "fraudwatch-platform"
#: Containers of the fraudwatch namespaces, grouped by the service (pod's container) name.
SELECTOR = 'namespace=~"fraudwatch.*", container!="", container!="POD"'
PER_CONTAINER = "{{container}}"
PER_NODE = "{{instance}}"


def build() -> dashboard.Dashboard:
    return (
        fraudwatch_dashboard(
            "platform",
            uid=UID,
            tag="platform",
            description="Resource use per service and per node.",
            since="6h",
        )
        .with_panel(
            prom_timeseries(
                "CPU per service",
                "CPU cores used, per container.",
                f"sum by (container) (rate(container_cpu_usage_seconds_total{{{SELECTOR}}}[5m]))",
                legend=PER_CONTAINER,
                unit="short",
            )
        )
        .with_panel(
            prom_timeseries(
                "Memory per service",
                "Working-set memory, per container.",
                f"sum by (container) (container_memory_working_set_bytes{{{SELECTOR}}})",
                legend=PER_CONTAINER,
                unit="bytes",
            )
        )
        .with_panel(
            prom_timeseries(
                "Disk I/O per service",
                "Bytes read and written per second, per container.",
                f"sum by (container) (rate(container_fs_reads_bytes_total{{{SELECTOR}}}[5m]) + rate(container_fs_writes_bytes_total{{{SELECTOR}}}[5m]))",
                legend=PER_CONTAINER,
                unit="Bps",
            )
        )
        .with_panel(
            prom_timeseries(
                "Node CPU",
                "Busy share of each node's CPUs (node-exporter).",
                '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))',
                legend=PER_NODE,
                unit="percentunit",
            )
        )
        .with_panel(
            prom_timeseries(
                "Node memory",
                "Memory in use per node (node-exporter).",
                "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes",
                legend=PER_NODE,
                unit="bytes",
            )
        )
        .with_panel(
            prom_timeseries(
                "Node disk I/O",
                "Bytes read and written per second per node (node-exporter).",
                "sum by (instance) (rate(node_disk_read_bytes_total[5m]) + rate(node_disk_written_bytes_total[5m]))",
                legend=PER_NODE,
                unit="Bps",
            )
        )
    )
