"""Stack configuration: read once at program start, validated, then passed to every component.

Every key lives under the `fraudwatch:` namespace of Pulumi.<stack>.yaml. A missing or wrong
key stops the program before any resource is registered, with a one-line message that names
the key and the `pulumi config set` command that fixes it. Components never read
`pulumi.Config` themselves, so dev and prod can only differ where this configuration says.

This module reads the stack as a whole (the top-level keys, the network, the third-party chart
source) into a PlatformConfig; the typed reads and their errors are in config_values.py, the
data services' settings in config_data_services.py, and the settings of what runs on them in
config_applications.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config_applications import (
    BiConfig,
    ComputeConfig,
    OrchestrationConfig,
    VisualisationConfig,
    WorkloadsConfig,
    parse_bi,
    parse_compute,
    parse_orchestration,
    parse_visualisation,
    parse_workloads,
)
from .config_data_services import (
    DocumentsConfig,
    SearchConfig,
    StorageConfig,
    StreamingConfig,
    parse_documents,
    parse_search,
    parse_storage,
    parse_streaming,
)
from .config_values import K8S_VERSION, NAMESPACE, ConfigError, ConfigSection, Image


@dataclass(frozen=True)
class NetworkConfig:
    api_server_cidrs: tuple[str, ...]
    node_cidrs: tuple[str, ...]
    allow_public_load_balancer: bool
    tableau_egress_cidrs: tuple[str, ...]
    ingress_namespace: str
    prometheus_namespace: str


# The Helm releases of third-party charts (operator_release's names): the keys of
# `charts.values`.
OPERATOR_RELEASES = (
    "cert-manager",
    "rook-ceph",
    "strimzi",
    "eck-operator",
    "psmdb-operator",
    "spark-operator",
    "airflow",
    "grafana-operator",
)


@dataclass(frozen=True)
class ChartSource:
    """Where the third-party charts come from. `directory`: a local folder of packaged charts
    named `<chart>-<version>.tgz` (the air-gapped mode: no chart repository is contacted);
    None: the upstream repositories in versions.py. `values`: per release name, Helm values
    merged over the program's own (e.g. image registries of an internal mirror)."""

    directory: str | None = None
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class PlatformConfig:
    kubernetes_version: str
    high_availability: bool
    workloads_image: Image
    network: NetworkConfig
    storage: StorageConfig
    streaming: StreamingConfig
    documents: DocumentsConfig
    search: SearchConfig
    compute: ComputeConfig
    orchestration: OrchestrationConfig
    visualisation: VisualisationConfig
    bi: BiConfig
    workloads: WorkloadsConfig
    charts: ChartSource = field(default_factory=ChartSource)
    extra: Mapping[str, Any] = field(default_factory=dict)


TOP_LEVEL_KEYS = (
    "kubernetesVersion",
    "highAvailability",
    "images",
    "network",
    "storage",
    "streaming",
    "documents",
    "search",
    "compute",
    "orchestration",
    "visualisation",
    "bi",
    "workloads",
    "charts",  # optional (ChartSource); every other top-level key is required
)
_STRING_KEYS = ("kubernetesVersion",)
SECRET_KEYS = ("tableauPatSecret", "interventionApiTokenHashes", "credentialsSeed")


def parse_config(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate the `fraudwatch:` keys of a stack (already parsed from YAML/JSON)."""
    unknown = sorted(set(raw) - set(TOP_LEVEL_KEYS) - set(SECRET_KEYS))
    if unknown:
        raise ConfigError(
            f"{NAMESPACE}:{unknown[0]} is not a known key (known: {', '.join(TOP_LEVEL_KEYS)}). "
            f"Fix: pulumi config rm '{NAMESPACE}:{unknown[0]}' or correct its spelling."
        )
    top = ConfigSection(raw, "")
    kubernetes_version = top.string("kubernetesVersion", '"1.33"', K8S_VERSION)
    high_availability = top.boolean("highAvailability")
    images = top.section("images")
    # Read in this order: with several keys wrong, the first one is the one named.
    network = _network(top.section("network"))
    storage = parse_storage(top.section("storage"))
    streaming = parse_streaming(top.section("streaming"))
    documents = parse_documents(top.section("documents"))
    search = parse_search(top.section("search"))
    compute = parse_compute(top.section("compute"))
    orchestration = parse_orchestration(top.section("orchestration"))
    visualisation = parse_visualisation(top.section("visualisation"))
    bi = parse_bi(top.section("bi"))
    workloads = parse_workloads(
        top.section("workloads"),
        high_availability=high_availability,
        allow_public_load_balancer=network.allow_public_load_balancer,
    )
    return PlatformConfig(
        charts=_chart_source(top),
        kubernetes_version=kubernetes_version,
        high_availability=high_availability,
        workloads_image=images.image("workloads"),
        network=network,
        storage=storage,
        streaming=streaming,
        documents=documents,
        search=search,
        compute=compute,
        orchestration=orchestration,
        visualisation=visualisation,
        bi=bi,
        workloads=workloads,
    )


def _network(net: ConfigSection) -> NetworkConfig:
    return NetworkConfig(
        api_server_cidrs=net.cidrs("apiServerCidrs", "10.0.0.1/32"),
        node_cidrs=net.cidrs("nodeCidrs", "10.0.0.0/24"),
        allow_public_load_balancer=net.boolean("allowPublicLoadBalancer"),
        tableau_egress_cidrs=net.cidrs("tableauEgressCidrs", "203.0.113.10/32"),
        ingress_namespace=net.string("ingressNamespace", "ingress-nginx"),
        prometheus_namespace=net.string("prometheusNamespace", "monitoring"),
    )


def _chart_source(top: ConfigSection) -> ChartSource:
    if top.raw.get("charts") is None:
        return ChartSource()
    ch = top.section("charts")
    directory = ch.optional_string("directory")
    values = ch.raw.get("values") or {}
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"{NAMESPACE}:charts.values must be an object keyed by release name "
            f"({', '.join(OPERATOR_RELEASES)}), got {type(values).__name__}."
        )
    for release, release_values in values.items():
        if release not in OPERATOR_RELEASES:
            raise ConfigError(
                f"{NAMESPACE}:charts.values.{release} is not a release of the platform "
                f"(known: {', '.join(OPERATOR_RELEASES)}). "
                f"Fix: pulumi config rm --path '{NAMESPACE}:charts.values.{release}'"
            )
        if not isinstance(release_values, Mapping):
            raise ConfigError(
                f"{NAMESPACE}:charts.values.{release} must be an object of Helm values, "
                f"got {release_values!r}."
            )
    unknown = sorted(set(ch.raw) - {"directory", "values"})
    if unknown:
        raise ConfigError(
            f"{NAMESPACE}:charts.{unknown[0]} is not a known key (known: directory, values). "
            f"Fix: pulumi config rm --path '{NAMESPACE}:charts.{unknown[0]}'"
        )
    return ChartSource(directory=directory, values=dict(values))


def raw_stack_config(config: Any) -> dict[str, Any]:
    """Read every known key from a `pulumi.Config("fraudwatch")` (objects come back parsed)."""
    raw: dict[str, Any] = {}
    for key in TOP_LEVEL_KEYS:
        if key in _STRING_KEYS:
            # Read as text: "1.30" parsed as JSON would become the number 1.3.
            value = config.get(key)
        else:
            try:
                value = config.get_object(key)
            except Exception:  # not JSON: keep the text, parse_config names the key
                value = config.get(key)
        if value is not None:
            raw[key] = value
    return raw


def unknown_stack_keys(all_config: Mapping[str, Any]) -> list[str]:
    """Keys under `fraudwatch:` that the program does not know (likely typos)."""
    prefix = f"{NAMESPACE}:"
    return sorted(
        k[len(prefix) :]
        for k in all_config
        if k.startswith(prefix) and k[len(prefix) :] not in (*TOP_LEVEL_KEYS, *SECRET_KEYS)
    )
