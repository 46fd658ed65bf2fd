"""What every concern's component starts with: its place (the stack configuration and the
concern's namespace), its Pulumi type `fraudwatch:platform:<class name>`, and most often a
third-party operator or chart installed by Helm (an Operator, operator_release.py) whose custom
resources the component then declares in its namespace (Component.custom_resource)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .config import PlatformConfig
from .namespaces import ConcernNamespace
from .operator_release import operator_release
from .versions import HelmChart

Options = pulumi.ResourceOptions | None


@dataclass(frozen=True)
class Placement:
    """Where a component is declared: with the stack's configuration, in its concern's
    namespace."""

    config: PlatformConfig
    namespace: ConcernNamespace

    @property
    def name(self) -> str:
        """The concern (storage, streaming, ...): the component's Pulumi name."""
        return self.namespace.concern

    @property
    def ns(self) -> str:
        """The Kubernetes namespace's name."""
        return self.namespace.name


@dataclass(frozen=True)
class Operator:
    """A concern's operator or server chart, installed by Helm as its component opens: the
    release's name (one of config.OPERATOR_RELEASES), the chart pinned in versions.py and the
    chart's values."""

    release: str
    chart: HelmChart
    values: dict[str, Any]


class Component(pulumi.ComponentResource):
    """One concern of the platform: a component resource of type
    `fraudwatch:platform:<class name>` whose children are its objects, opened by installing
    the concern's operator (kept as `self.release`) when there is one."""

    def __init__(self, at: Placement, opts: Options, operator: Operator | None = None) -> None:
        super().__init__(f"fraudwatch:platform:{type(self).__name__}", at.name, None, opts)
        self.at = at
        if operator is not None:
            self.release = self.install(operator.release, operator.chart, operator.values)

    def custom_resource(
        self,
        resource_name: str,
        api_version: str,
        kind: str,
        metadata: dict[str, Any],
        spec: dict[str, Any],
        depends_on: Sequence[pulumi.Input[pulumi.Resource]],
    ) -> k8s.apiextensions.CustomResource:
        """A custom resource in the concern's namespace (`metadata` names it, and may label
        or annotate it), a child of this component declared after `depends_on`."""
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version=api_version,
            kind=kind,
            metadata={"name": metadata["name"], "namespace": self.at.ns, **metadata},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )

    def install(
        self,
        release: str,
        chart: HelmChart,
        values: dict[str, Any],
        depends_on: Sequence[pulumi.Resource] | None = None,
    ) -> k8s.helm.v3.Release:
        """The concern's operator or chart, pinned in versions.py, from the stack's chart
        source, a child of this component in its namespace."""
        return operator_release(
            release,
            chart,
            self.at.namespace,
            values,
            parent=self,
            depends_on=depends_on,
            source=self.at.config.charts,
        )
