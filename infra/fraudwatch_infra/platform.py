"""The whole platform: every concern's component, wired together in dependency order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi

from . import credentials
from .bi import Bi
from .component import Placement
from .compute import Compute
from .config import PlatformConfig
from .documents import Documents
from .enforcement import AdmissionPolicies
from .namespaces import CONCERNS, ConcernNamespace
from .network_policy import NetworkFlows
from .orchestration import Orchestration
from .search import Search
from .storage import Storage
from .streaming import Streaming
from .tls import Tls, trust_bundle
from .visualisation import Visualisation
from .workloads import Workloads, chart_values, intervention_url

REPO_ROOT = Path(__file__).resolve().parents[2]
# Concerns whose namespaces hold only fraudwatch's own pods: the admission policies bind there
# (third-party operators' servers, e.g. Ceph's OSDs, cannot all meet them).
OWN_PODS_ONLY = ("workloads", "bi")


@dataclass(frozen=True)
class PlatformSecrets:
    """Credentials that cannot be generated: they come from `pulumi config set --secret`."""

    tableau_pat_secret: pulumi.Output[str] | None
    intervention_api_token_hashes: pulumi.Output[str] | None
    # Every generated credential is derived from it (credentials.py).
    credentials_seed: pulumi.Output[str] | None = None


def build_platform(
    config: PlatformConfig, secrets: PlatformSecrets, dashboards_dir: Path | None = None
) -> dict[str, object]:
    """Register every resource; returns the stack outputs."""
    if secrets.credentials_seed is None:
        raise ValueError("no credentials seed was given (fraudwatch:credentialsSeed)")
    credentials.use_seed(secrets.credentials_seed)
    dashboards = dashboards_dir or REPO_ROOT / "dashboards"
    namespaces = {
        concern: ConcernNamespace(spec)
        for concern, spec in CONCERNS.items()
        if concern != "bi" or config.bi.enabled
    }

    def at(concern: str) -> Placement:
        return Placement(config, namespaces[concern])

    NetworkFlows("flows", namespaces, config.network)
    # The server refuses what breaks the project's policies where only fraudwatch's pods run.
    admission = AdmissionPolicies(
        "admission",
        [ns.name for c, ns in namespaces.items() if c in OWN_PODS_ONLY],
        opts=pulumi.ResourceOptions(depends_on=[ns.namespace for ns in namespaces.values()]),
    )
    tls = Tls(at("tls"))
    storage = Storage(at("storage"), tls)
    streaming = Streaming(at("streaming"), tls, storage.block_storage_class)
    documents = Documents(at("documents"), tls, storage)
    search = Search(
        at("search"),
        tls,
        storage.block_storage_class,
        dashboards / "elasticsearch",
    )
    Compute(at("compute"), storage, search.url)
    Orchestration(at("orchestration"), storage)

    workloads_ns = namespaces["workloads"]
    workloads_trust = trust_bundle(workloads_ns.name, workloads_ns, tls)
    s3_secret = storage.grant_s3(workloads_ns)
    workloads = Workloads(
        at("workloads"),
        storage,
        chart_values(
            config,
            storage.s3_endpoint,
            s3_secret,
            streaming.bootstrap_servers,
            search.url,
            namespaces["visualisation"].name,
            trust_secret=workloads_trust,
            storage_class=storage.block_storage_class,
        ),
        mongo_uri=documents.uri,
        es_writer_password=search.passwords["fraudwatch-writer"],
        kafka_scorer_password=streaming.passwords["fraudwatch-scorer"],
        api_token_hashes=secrets.intervention_api_token_hashes,
        depends_on=[streaming.kafka, documents.cluster, search.cluster, *admission.bindings],
    )
    vis_ns = namespaces["visualisation"]
    Visualisation(
        at("visualisation"),
        search.url,
        search.passwords["grafana-reader"],
        trust_bundle(vis_ns.name, vis_ns, tls),
        intervention_url(workloads_ns.name),
        dashboards / "grafana",
    )
    if config.bi.enabled:
        if secrets.tableau_pat_secret is None:
            raise ValueError("bi is enabled but no Tableau PAT secret was given")
        bi_ns = namespaces["bi"]
        Bi(
            at("bi"),
            storage,
            secrets.tableau_pat_secret,
            trust_bundle(bi_ns.name, bi_ns, tls),
        )
    return {
        "namespaces": {c: ns.name for c, ns in namespaces.items()},
        "s3Endpoint": storage.s3_endpoint,
        "kafkaBootstrapServers": streaming.bootstrap_servers,
        "elasticsearchUrl": search.url,
        "interventionUrl": workloads.intervention_url,
    }
