"""Installing a third-party operator or chart as a Helm release pinned in versions.py, from its
upstream repository or, in the air-gapped mode, from a local chart directory
(`fraudwatch:charts.directory`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .config import OPERATOR_RELEASES, ChartSource
from .namespaces import ConcernNamespace
from .versions import HelmChart


def merged_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` merged into `base`, objects key by key (as Helm merges values files)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged_values(out[key], value)
        else:
            out[key] = value
    return out


def local_chart(directory: str, chart: HelmChart) -> str:
    """The packaged chart `<name>-<version>.tgz` in `directory` (the name is the last part of
    an oci:// reference). Raises ValueError naming the file when it is not there."""
    name = chart.chart.rsplit("/", 1)[-1]
    path = Path(directory) / f"{name}-{chart.version}.tgz"
    if not path.is_file():
        raise ValueError(
            f"fraudwatch:charts.directory is {directory!r} but {path.name} is not in it: "
            f"put the packaged chart there (helm pull {chart.chart} --version {chart.version})"
        )
    return str(path)


def operator_release(
    name: str,
    chart: HelmChart,
    namespace: ConcernNamespace,
    values: dict[str, Any],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] | None = None,
    source: ChartSource | None = None,
) -> k8s.helm.v3.Release:
    """A Helm release that waits for its pods (atomic: a failed upgrade rolls back)."""
    if name not in OPERATOR_RELEASES:
        raise ValueError(f"{name} is not in config.OPERATOR_RELEASES")
    source = source or ChartSource()
    if source.directory:
        chart_ref, repository_opts = local_chart(source.directory, chart), None
    else:
        chart_ref = chart.chart
        repository_opts = {"repo": chart.repo} if chart.repo else None
    return helm_release(
        name,
        chart_ref,
        namespace.name,
        merged_values(values, source.values.get(name, {})),
        pulumi.ResourceOptions(
            parent=parent, depends_on=[namespace.namespace, *(depends_on or [])]
        ),
        version=chart.version,
        repository_opts=repository_opts,
    )


def helm_release(
    name: str,
    chart: str,
    namespace: str,
    values: dict[str, Any],
    opts: pulumi.ResourceOptions,
    *,
    version: str | None = None,
    repository_opts: dict[str, str] | None = None,
) -> k8s.helm.v3.Release:
    """A Helm release `name` of `chart` in an existing namespace, waiting for its pods (atomic:
    a failed install or upgrade rolls back); third-party charts give their pinned `version`
    and repository, fraudwatch's own chart is a local directory."""
    return k8s.helm.v3.Release(
        name,
        name=name,
        chart=chart,
        version=version,
        repository_opts=repository_opts,
        namespace=namespace,
        create_namespace=False,
        atomic=True,
        cleanup_on_fail=True,
        timeout=900,
        values=values,
        opts=opts,
    )
