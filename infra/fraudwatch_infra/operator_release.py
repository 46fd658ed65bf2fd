"""Installing a third-party operator or chart as a Helm release pinned in versions.py."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .namespaces import ConcernNamespace
from .versions import HelmChart


def operator_release(
    name: str,
    chart: HelmChart,
    namespace: ConcernNamespace,
    values: dict[str, Any],
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource] | None = None,
) -> k8s.helm.v3.Release:
    """A Helm release that waits for its pods (atomic: a failed upgrade rolls back)."""
    return k8s.helm.v3.Release(
        name,
        name=name,
        chart=chart.chart,
        version=chart.version,
        repository_opts={"repo": chart.repo} if chart.repo else None,
        namespace=namespace.name,
        create_namespace=False,
        atomic=True,
        cleanup_on_fail=True,
        timeout=900,
        values=values,
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=[namespace.namespace, *(depends_on or [])]
        ),
    )
