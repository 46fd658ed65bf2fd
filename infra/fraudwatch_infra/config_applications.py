"""Settings of what runs on the data services, read from the stack configuration: the Spark
scoring job (`compute`), Airflow (`orchestration`), Grafana (`visualisation`), Tableau
publishing (`bi`) and the intervention service with its inline decision pods (`workloads`)."""

from __future__ import annotations

from dataclasses import dataclass

from .config_values import DNS_LABEL, NAMESPACE, SPARK_MEMORY, ConfigError, ConfigSection, fix


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


def parse_compute(co: ConfigSection) -> ComputeConfig:
    return ComputeConfig(
        schedule=co.string("schedule", "'17 2 * * *'"),
        executors=co.integer("executors", 4),
        executor_cores=co.integer("executorCores", 2),
        executor_memory=co.string("executorMemory", "4g", SPARK_MEMORY),
        driver_memory=co.string("driverMemory", "2g", SPARK_MEMORY),
        main_application_file=co.string(
            "mainApplicationFile", "local:///opt/fraudwatch/jobs/score.py"
        ),
    )


def parse_orchestration(orc: ConfigSection) -> OrchestrationConfig:
    return OrchestrationConfig(
        dags_git_repo=orc.optional_string("dagsGitRepo"),
        dags_git_branch=orc.string("dagsGitBranch", "main"),
        dags_git_sub_path=orc.string("dagsGitSubPath", "workloads/fraudwatch/pipelines"),
        scheduler_replicas=orc.integer("schedulerReplicas", 2),
    )


def parse_visualisation(vis: ConfigSection) -> VisualisationConfig:
    return VisualisationConfig(
        prometheus_url=vis.string("prometheusUrl", "http://prometheus.monitoring.svc:9090"),
    )


def parse_bi(b: ConfigSection) -> BiConfig:
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
            f"got {bi.tableau_server_url!r}. {fix('bi.tableauServerUrl', 'https://tableau.example.com')}"
        )
    return bi


def parse_workloads(
    wl: ConfigSection, *, high_availability: bool, allow_public_load_balancer: bool
) -> WorkloadsConfig:
    service_type = wl.string("serviceType", "ClusterIP")
    if service_type not in ("ClusterIP", "NodePort", "LoadBalancer"):
        raise ConfigError(
            f"{NAMESPACE}:workloads.serviceType must be ClusterIP, NodePort or LoadBalancer, "
            f"got {service_type!r}. {fix('workloads.serviceType', 'ClusterIP')}"
        )
    if service_type == "LoadBalancer" and not allow_public_load_balancer:
        raise ConfigError(
            f"{NAMESPACE}:workloads.serviceType is LoadBalancer but "
            f"network.allowPublicLoadBalancer is false: exposing the intervention service "
            f"publicly needs the explicit flag. {fix('network.allowPublicLoadBalancer', 'true')}"
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
            f"replica could never be drained. {fix('workloads.decisionReplicas', '2')}"
        )
    decision_max_replicas = (
        wl.integer("decisionMaxReplicas", decision_replicas * 3, minimum=decision_replicas)
        if "decisionMaxReplicas" in wl.raw
        else decision_replicas * 3
    )
    clients = wl.raw.get("decisionClientNamespaces", [])
    if not isinstance(clients, list) or not all(
        isinstance(c, str) and DNS_LABEL.match(c) for c in clients
    ):
        raise ConfigError(
            f"{NAMESPACE}:workloads.decisionClientNamespaces must be a list of namespace "
            f"names, got {clients!r}. {fix('workloads.decisionClientNamespaces', '[payments]')}"
        )
    return WorkloadsConfig(
        decision_replicas=decision_replicas,
        decision_max_replicas=decision_max_replicas,
        decision_client_namespaces=tuple(clients),
        intervention_replicas=wl.integer("interventionReplicas", 2),
        service_type=service_type,
        intervention_token_secret=wl.optional_string("interventionTokenSecret"),
        model_registry_claim=wl.optional_string("modelRegistryClaim"),
    )
