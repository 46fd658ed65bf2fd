"""Stack configuration: read once at program start, validated, then passed to every component.

Every key lives under the `fraudwatch:` namespace of Pulumi.<stack>.yaml. A missing or wrong
key stops the program before any resource is registered, with a one-line message that names
the key and the `pulumi config set` command that fixes it. Components never read
`pulumi.Config` themselves, so dev and prod can only differ where this configuration says.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NAMESPACE = "fraudwatch"

# The product's topics (workloads/fraudwatch/streaming/schemas.py, the prefix in
# workloads/fraudwatch/contract/events.py): `fraudwatch stream` reads
# "<prefix>transactions|logins|api-calls" and writes "<prefix>dead-letter". The stack
# configuration keys them by the name without the prefix.
TOPIC_PREFIX = "fraudwatch."
EVENT_TOPICS = ("transactions", "logins", "api-calls")
DEAD_LETTER = "dead-letter"
REQUIRED_TOPICS = (*EVENT_TOPICS, DEAD_LETTER)

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_SPARK_MEMORY = re.compile(r"^[0-9]+[mgk]$")
# A Kubernetes namespace name (RFC 1123 label).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_K8S_VERSION = re.compile(r"^1\.[0-9]{2}$")


class ConfigError(ValueError):
    """A stack configuration value is missing or wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class Size:
    """CPU and memory for one container: used as both request and limit (Guaranteed QoS)."""

    cpu: str
    memory: str

    def resources(self) -> dict[str, dict[str, str]]:
        """A Kubernetes ResourceRequirements object."""
        quantities = {"cpu": self.cpu, "memory": self.memory}
        return {"requests": dict(quantities), "limits": dict(quantities)}


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class NetworkConfig:
    api_server_cidrs: tuple[str, ...]
    node_cidrs: tuple[str, ...]
    allow_public_load_balancer: bool
    tableau_egress_cidrs: tuple[str, ...]
    ingress_namespace: str
    prometheus_namespace: str


@dataclass(frozen=True)
class StorageConfig:
    mon_count: int
    use_all_nodes: bool
    device_filter: str
    data_replicas: int
    object_gateway_instances: int
    #: dm-crypt under every OSD (Rook `storage.config.encryptedDevice`): every block volume
    #: (Kafka, Elasticsearch, MongoDB) and every S3 object is encrypted at rest.
    encrypt_devices: bool
    size: Size


@dataclass(frozen=True)
class TopicConfig:
    partitions: int
    retention_hours: int


@dataclass(frozen=True)
class StreamingConfig:
    controllers: int
    brokers: int
    broker_storage: str
    replication_factor: int
    min_insync_replicas: int
    topics: Mapping[str, TopicConfig]
    broker_size: Size
    controller_size: Size


@dataclass(frozen=True)
class DocumentsConfig:
    replicas: int
    storage: str
    size: Size


@dataclass(frozen=True)
class SearchConfig:
    master_nodes: int
    data_nodes: int
    data_storage: str
    master_size: Size
    data_size: Size


@dataclass(frozen=True)
class ComputeConfig:
    schedule: str
    executors: int
    executor_cores: int
    executor_memory: str
    driver_memory: str
    main_application_file: str


@dataclass(frozen=True)
class OrchestrationConfig:
    dags_git_repo: str | None
    dags_git_branch: str
    dags_git_sub_path: str
    scheduler_replicas: int


@dataclass(frozen=True)
class VisualisationConfig:
    prometheus_url: str


@dataclass(frozen=True)
class BiConfig:
    enabled: bool
    tableau_server_url: str
    tableau_site: str
    tableau_pat_name: str
    schedule: str


@dataclass(frozen=True)
class WorkloadsConfig:
    intervention_replicas: int
    service_type: str
    # Secret (workloads namespace) with the streaming scorer's automation token for the
    # intervention service, key `intervention-token`; None: the scorer does not forward.
    intervention_token_secret: str | None = None
    # PersistentVolumeClaim (workloads namespace) holding the model registry the scorer
    # follows; None: the scorer has no model until one is given.
    model_registry_claim: str | None = None
    # The inline decision route's own pods (chart intervention.decisions): replicas (the HPA's
    # minimum with highAvailability), the HPA's maximum, and the namespaces whose pods (the
    # payment systems) may call them.
    decision_replicas: int = 1
    decision_max_replicas: int = 3
    decision_client_namespaces: tuple[str, ...] = ()


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


def _fix(path: str, example: str) -> str:
    return f"Fix: pulumi config set --path '{NAMESPACE}:{path}' {example}"


class _Section:
    """Typed reads from one config object, each error naming its full dotted key."""

    def __init__(self, raw: Any, path: str) -> None:
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{NAMESPACE}:{path} must be an object, got {type(raw).__name__}. "
                f"See infra/Pulumi.dev.yaml for its shape."
            )
        self.raw = raw
        self.path = path

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, example: str) -> Any:
        if key not in self.raw or self.raw[key] is None:
            raise ConfigError(
                f"{NAMESPACE}:{self._key(key)} is not set. {_fix(self._key(key), example)}"
            )
        return self.raw[key]

    def section(self, key: str) -> _Section:
        if key not in self.raw:
            raise ConfigError(
                f"{NAMESPACE}:{self._key(key)} is not set. Copy the `{key}` block from "
                f"infra/Pulumi.dev.yaml into the stack file."
            )
        return _Section(self.raw[key], self._key(key))

    def integer(self, key: str, example: int, minimum: int = 1) -> int:
        value = self._get(key, str(example))
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(
                f"{NAMESPACE}:{self._key(key)} must be an integer >= {minimum}, got {value!r}. "
                f"{_fix(self._key(key), str(example))}"
            )
        return value

    def boolean(self, key: str, example: bool = False) -> bool:
        value = self._get(key, str(example).lower())
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(
                f"{NAMESPACE}:{self._key(key)} must be true or false, got {value!r}. "
                f"{_fix(self._key(key), str(example).lower())}"
            )
        return value

    def string(self, key: str, example: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self._get(key, example)
        if not isinstance(value, str) or not value or (pattern and not pattern.match(value)):
            raise ConfigError(
                f"{NAMESPACE}:{self._key(key)} has the wrong form: {value!r}. "
                f"{_fix(self._key(key), example)}"
            )
        return value

    def optional_string(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            raise ConfigError(
                f"{NAMESPACE}:{self._key(key)} must be a string, got {value!r}. "
                f"{_fix(self._key(key), 'VALUE')}"
            )
        return value

    def quantity(self, key: str, example: str) -> str:
        return self.string(key, example, _QUANTITY)

    def cidrs(self, key: str, example: str) -> tuple[str, ...]:
        value = self._get(key, f"'[\"{example}\"]'")
        if not isinstance(value, list) or not value:
            raise ConfigError(
                f"{NAMESPACE}:{self._key(key)} must be a non-empty list of CIDRs, got {value!r}. "
                f"{_fix(self._key(key) + '[0]', example)}"
            )
        for cidr in value:
            try:
                ipaddress.ip_network(str(cidr), strict=True)
            except ValueError as err:
                raise ConfigError(
                    f"{NAMESPACE}:{self._key(key)} holds {cidr!r}, which is not a CIDR ({err}). "
                    f"{_fix(self._key(key) + '[0]', example)}"
                ) from None
        return tuple(str(c) for c in value)

    def size(self, key: str, cpu: str, memory: str) -> Size:
        sub = self.section(key)
        return Size(cpu=sub.quantity("cpu", cpu), memory=sub.quantity("memory", memory))

    def image(self, key: str) -> Image:
        sub = self.section(key)
        repository = sub.string("repository", "ghcr.io/fraudwatch/fraudwatch")
        tag = sub.string("tag", "0.1.0")
        if tag == "latest" or ":" in repository.rsplit("/", 1)[-1]:
            raise ConfigError(
                f"{NAMESPACE}:{sub._key('tag')} must pin a release, not {tag!r}. "
                f"{_fix(sub._key('tag'), '0.1.0')}"
            )
        return Image(repository, tag)


def _odd(section: _Section, key: str, value: int) -> int:
    if value % 2 == 0:
        raise ConfigError(
            f"{NAMESPACE}:{section._key(key)} must be odd so a majority survives a failure, "
            f"got {value}. {_fix(section._key(key), str(value + 1))}"
        )
    return value


def parse_config(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate the `fraudwatch:` keys of a stack (already parsed from YAML/JSON)."""
    unknown = sorted(set(raw) - set(TOP_LEVEL_KEYS) - set(SECRET_KEYS))
    if unknown:
        raise ConfigError(
            f"{NAMESPACE}:{unknown[0]} is not a known key (known: {', '.join(TOP_LEVEL_KEYS)}). "
            f"Fix: pulumi config rm '{NAMESPACE}:{unknown[0]}' or correct its spelling."
        )
    top = _Section(raw, "")
    kubernetes_version = top.string("kubernetesVersion", '"1.33"', _K8S_VERSION)
    high_availability = top.boolean("highAvailability")
    images = top.section("images")

    net = top.section("network")
    network = NetworkConfig(
        api_server_cidrs=net.cidrs("apiServerCidrs", "10.0.0.1/32"),
        node_cidrs=net.cidrs("nodeCidrs", "10.0.0.0/24"),
        allow_public_load_balancer=net.boolean("allowPublicLoadBalancer"),
        tableau_egress_cidrs=net.cidrs("tableauEgressCidrs", "203.0.113.10/32"),
        ingress_namespace=net.string("ingressNamespace", "ingress-nginx"),
        prometheus_namespace=net.string("prometheusNamespace", "monitoring"),
    )

    sto = top.section("storage")
    storage = StorageConfig(
        mon_count=_odd(sto, "monCount", sto.integer("monCount", 3)),
        use_all_nodes=sto.boolean("useAllNodes", True),
        device_filter=sto.string("deviceFilter", "'^sd[b-z]'"),
        data_replicas=sto.integer("dataReplicas", 3),
        object_gateway_instances=sto.integer("objectGatewayInstances", 2),
        encrypt_devices=sto.boolean("encryptDevices", True),
        size=sto.size("osd", "1", "4Gi"),
    )

    st = top.section("streaming")
    topics_raw = st.section("topics")
    topics: dict[str, TopicConfig] = {}
    for name in REQUIRED_TOPICS:
        t = topics_raw.section(name)
        topics[name] = TopicConfig(
            partitions=t.integer("partitions", 12),
            retention_hours=t.integer("retentionHours", 168),
        )
    extra_topics = sorted(set(topics_raw.raw) - set(REQUIRED_TOPICS))
    if extra_topics:
        raise ConfigError(
            f"{NAMESPACE}:streaming.topics.{extra_topics[0]} is not a topic fraudwatch uses "
            f"(expected {', '.join(REQUIRED_TOPICS)}, each created as {TOPIC_PREFIX}<name>). "
            f"Fix: pulumi config rm --path '{NAMESPACE}:streaming.topics.{extra_topics[0]}'"
        )
    brokers = st.integer("brokers", 3)
    replication = st.integer("replicationFactor", 3)
    min_isr = st.integer("minInsyncReplicas", 2)
    if replication > brokers:
        raise ConfigError(
            f"{NAMESPACE}:streaming.replicationFactor ({replication}) exceeds streaming.brokers "
            f"({brokers}). {_fix('streaming.replicationFactor', str(brokers))}"
        )
    if min_isr > replication:
        raise ConfigError(
            f"{NAMESPACE}:streaming.minInsyncReplicas ({min_isr}) exceeds "
            f"streaming.replicationFactor ({replication}): every write would fail. "
            f"{_fix('streaming.minInsyncReplicas', str(max(1, replication - 1)))}"
        )
    streaming = StreamingConfig(
        controllers=_odd(st, "controllers", st.integer("controllers", 3)),
        brokers=brokers,
        broker_storage=st.quantity("brokerStorage", "100Gi"),
        replication_factor=replication,
        min_insync_replicas=min_isr,
        topics=topics,
        broker_size=st.size("broker", "2", "8Gi"),
        controller_size=st.size("controller", "500m", "2Gi"),
    )

    doc = top.section("documents")
    documents = DocumentsConfig(
        replicas=_odd(doc, "replicas", doc.integer("replicas", 3)),
        storage=doc.quantity("storage", "50Gi"),
        size=doc.size("mongod", "1", "4Gi"),
    )

    se = top.section("search")
    search = SearchConfig(
        master_nodes=_odd(se, "masterNodes", se.integer("masterNodes", 3)),
        data_nodes=se.integer("dataNodes", 0, minimum=0),
        data_storage=se.quantity("dataStorage", "200Gi"),
        master_size=se.size("master", "1", "4Gi"),
        data_size=se.size("data", "2", "8Gi"),
    )

    co = top.section("compute")
    compute = ComputeConfig(
        schedule=co.string("schedule", "'17 2 * * *'"),
        executors=co.integer("executors", 4),
        executor_cores=co.integer("executorCores", 2),
        executor_memory=co.string("executorMemory", "4g", _SPARK_MEMORY),
        driver_memory=co.string("driverMemory", "2g", _SPARK_MEMORY),
        main_application_file=co.string(
            "mainApplicationFile", "local:///opt/fraudwatch/jobs/score.py"
        ),
    )

    orc = top.section("orchestration")
    orchestration = OrchestrationConfig(
        dags_git_repo=orc.optional_string("dagsGitRepo"),
        dags_git_branch=orc.string("dagsGitBranch", "main"),
        dags_git_sub_path=orc.string("dagsGitSubPath", "workloads/fraudwatch/pipelines"),
        scheduler_replicas=orc.integer("schedulerReplicas", 2),
    )

    vis = top.section("visualisation")
    visualisation = VisualisationConfig(
        prometheus_url=vis.string("prometheusUrl", "http://prometheus.monitoring.svc:9090"),
    )

    b = top.section("bi")
    bi_enabled = b.boolean("enabled", True)
    bi = BiConfig(
        enabled=bi_enabled,
        tableau_server_url=b.string("tableauServerUrl", "https://tableau.example.com")
        if bi_enabled
        else "",
        tableau_site=b.string("tableauSite", "fraud") if bi_enabled else "",
        tableau_pat_name=b.string("tableauPatName", "fraudwatch-publisher") if bi_enabled else "",
        schedule=b.string("schedule", "'0 4 * * *'") if bi_enabled else "",
    )
    if bi_enabled and not bi.tableau_server_url.startswith("https://"):
        raise ConfigError(
            f"{NAMESPACE}:bi.tableauServerUrl must be an https:// URL (the PAT is sent to it), "
            f"got {bi.tableau_server_url!r}. {_fix('bi.tableauServerUrl', 'https://tableau.example.com')}"
        )

    wl = top.section("workloads")
    service_type = wl.string("serviceType", "ClusterIP")
    if service_type not in ("ClusterIP", "NodePort", "LoadBalancer"):
        raise ConfigError(
            f"{NAMESPACE}:workloads.serviceType must be ClusterIP, NodePort or LoadBalancer, "
            f"got {service_type!r}. {_fix('workloads.serviceType', 'ClusterIP')}"
        )
    if service_type == "LoadBalancer" and not network.allow_public_load_balancer:
        raise ConfigError(
            f"{NAMESPACE}:workloads.serviceType is LoadBalancer but "
            f"network.allowPublicLoadBalancer is false: exposing the intervention service "
            f"publicly needs the explicit flag. {_fix('network.allowPublicLoadBalancer', 'true')}"
        )
    decision_replicas = (
        wl.integer("decisionReplicas", 2)
        if "decisionReplicas" in wl.raw
        else (2 if high_availability else 1)
    )
    if high_availability and decision_replicas < 2:
        raise ConfigError(
            f"{NAMESPACE}:workloads.decisionReplicas is {decision_replicas} with "
            f"highAvailability: the decision pods' PodDisruptionBudget keeps 1 running, so one "
            f"replica could never be drained. {_fix('workloads.decisionReplicas', '2')}"
        )
    decision_max_replicas = (
        wl.integer("decisionMaxReplicas", decision_replicas * 3, minimum=decision_replicas)
        if "decisionMaxReplicas" in wl.raw
        else decision_replicas * 3
    )
    clients = wl.raw.get("decisionClientNamespaces", [])
    if not isinstance(clients, list) or not all(
        isinstance(c, str) and _DNS_LABEL.match(c) for c in clients
    ):
        raise ConfigError(
            f"{NAMESPACE}:workloads.decisionClientNamespaces must be a list of namespace "
            f"names, got {clients!r}. {_fix('workloads.decisionClientNamespaces', '[payments]')}"
        )
    workloads = WorkloadsConfig(
        decision_replicas=decision_replicas,
        decision_max_replicas=decision_max_replicas,
        decision_client_namespaces=tuple(clients),
        intervention_replicas=wl.integer("interventionReplicas", 2),
        service_type=service_type,
        intervention_token_secret=wl.optional_string("interventionTokenSecret"),
        model_registry_claim=wl.optional_string("modelRegistryClaim"),
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


def _chart_source(top: _Section) -> ChartSource:
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
