"""`pulumi up` of the real program (infra/, dev and prod stack configs) against a real control
plane.

For each stack its own control plane (tests/servers/kubernetes.py with simulated nodes:
controllers, scheduler and kwok), so every CRD comes from the operators' charts as in
production, and Deployments, StatefulSets and Jobs really roll out (kwok marks their pods Ready,
Job pods Succeeded). The Automation API runs an inline program that calls the program's own
entry point (fraudwatch_infra.program.main) with the pulumi CLI and the
pulumi-resource-kubernetes plugin of the shared Kubernetes kit (the plugin installed into a
temporary PULUMI_HOME), a local file backend, secrets encrypted with a passphrase made up here,
and the charts from a local chart directory (fraudwatch:charts.directory, the air-gapped mode)
with test values that leave the operators' admission webhooks out where a chart allows it (ECK,
Spark); cert-manager's cannot be left out, so this control plane does not call admission
webhooks at all: no operator process runs to answer them.

The Apache Airflow chart is not in the kit: its release is installed from a stand-in chart of
the same name and version made here (one ConfigMap), so the Airflow chart's own objects are not
covered. The Elasticsearch bootstrap Job and every pod "run" only as kwok simulates them.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import secrets
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_api import KubeApi
from pulumi import automation as auto

from tests.servers import kubernetes

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"
if str(INFRA) not in sys.path:
    sys.path.insert(0, str(INFRA))

from fraudwatch_infra import versions  # noqa: E402
from fraudwatch_infra.namespaces import CONCERNS  # noqa: E402
from fraudwatch_infra.program import main as program_main  # noqa: E402
from fraudwatch_infra.storage import BLOCK_STORAGE_CLASS  # noqa: E402

PROVIDER_VERSION = "4.25.0"
SIMULATED_NODES = 3
# No operator process runs, so nothing would answer their admission webhooks: the charts that
# can leave them out do (values below); cert-manager's chart always installs its webhook, so
# the test control plane runs without the webhook admission plugins (configurations stored,
# never called; the ValidatingAdmissionPolicies of the program still apply).
TEST_CHART_VALUES = {
    "eck-operator": {"webhook": {"enabled": False}},
    "spark-operator": {"webhook": {"enable": False}},
}
# API group of each custom resource the program creates -> the release whose chart brings
# its CRD. A new group fails the ordering test until it is named here.
CRD_RELEASE = {
    "cert-manager.io": "cert-manager",
    "ceph.rook.io": "rook-ceph",
    "objectbucket.io": "rook-ceph",
    "kafka.strimzi.io": "strimzi",
    "elasticsearch.k8s.elastic.co": "eck-operator",
    "psmdb.percona.com": "psmdb-operator",
    "sparkoperator.k8s.io": "spark-operator",
    "grafana.integreatly.org": "grafana-operator",
}
# Groups of the Kubernetes API itself (and helm.sh, the provider's Release) in resource types.
BUILT_IN_GROUPS = {
    "core",
    "apps",
    "batch",
    "policy",
    "helm.sh",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
}
# Ceph CSI does not run here, so nothing provisions the program's PersistentVolumeClaims: the
# test pre-creates a PersistentVolume for each (storage class, size and claim as the program
# and its chart ask), as an administrator would for static provisioning. Retain: destroy must
# leave it (data volumes outlive the stack).
STAND_IN_VOLUMES = (("fraudwatch-workloads", "fraudwatch-streaming", "10Gi"),)
# API groups (suffixes) of the operators whose CRDs a destroy leaves in place.
OPERATOR_GROUPS = (
    "cert-manager.io",
    "rook.io",
    "objectbucket.io",
    "strimzi.io",
    "k8s.elastic.co",
    "percona.com",
    "sparkoperator.k8s.io",
    "integreatly.org",
)
BUILT_IN_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
CHANGE_OPS = ("create", "update", "delete", "replace", "create-replacement", "delete-replaced")


def _stand_in_airflow_chart(path: Path) -> None:
    """A chart named and versioned like the Airflow chart the program pins (not in the kit)."""
    files = {
        "airflow/Chart.yaml": (
            f"apiVersion: v2\nname: airflow\nversion: {versions.AIRFLOW.version}\n"
            "description: test stand-in for the Apache Airflow chart (not in the test kit)\n"
        ),
        "airflow/templates/stand-in.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: airflow-stand-in\n"
            "  labels: {app.kubernetes.io/part-of: fraudwatch}\n"
            "data:\n  executor: {{ .Values.executor | quote }}\n"
        ),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _chart_directory(target: Path) -> Path:
    """The kit's packaged charts plus the Airflow stand-in, named <chart>-<version>.tgz."""
    target.mkdir()
    for chart in (kubernetes.kit_dir() / "charts").glob("*.tgz"):
        (target / chart.name).symlink_to(chart)
    _stand_in_airflow_chart(target / f"airflow-{versions.AIRFLOW.version}.tgz")
    return target


@dataclass
class EventLog:
    """The engine's step events in order: when each resource's step began and finished."""

    started: dict[str, int] = field(default_factory=dict)
    finished: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    ops: dict[str, str] = field(default_factory=dict)
    count: int = 0

    def __call__(self, event: auto.EngineEvent) -> None:
        self.count += 1
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            self.started[meta.urn] = self.count
            self.ops[meta.urn] = str(meta.op.value if hasattr(meta.op, "value") else meta.op)
            if meta.new is not None:
                self.inputs[meta.urn] = meta.new.inputs or {}
        elif event.res_outputs_event is not None:
            self.finished[event.res_outputs_event.metadata.urn] = self.count


def urn_type(urn: str) -> str:
    return urn.split("::")[2].rsplit("$", 1)[-1]


def api_group(urn: str) -> str:
    """`kafka.strimzi.io` of kubernetes:kafka.strimzi.io/v1beta2:Kafka."""
    return urn_type(urn).split(":")[1].split("/")[0]


def urn_name(urn: str) -> str:
    return urn.split("::")[3]


@dataclass
class Deployment:
    stack_name: str
    stack: auto.Stack
    api: KubeApi
    first_up: auto.UpResult
    first_events: EventLog
    # Where the state and the stack file live, and the secrets the test gave the stack.
    state_files: list[Path]
    config_secrets: list[str]


@pytest.fixture(scope="module", params=["dev", "prod"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The stack's first `up` on a fresh control plane; destroyed and stopped afterwards."""
    stack_name = request.param
    state_dir = tmp_path_factory.mktemp(f"k8s-pulumi-{stack_name}")
    cluster = kubernetes.start(state_dir, simulated_nodes=SIMULATED_NODES, admission_webhooks=False)
    try:
        yield from _deployment(stack_name, cluster, tmp_path_factory)
    finally:
        kubernetes.stop(state_dir)


def pulumi_cli(root: Path, cluster: kubernetes.ControlPlane) -> tuple[Path, dict[str, str]]:
    """The kit's Pulumi CLI under root/pulumi-cli, a local file backend under root/state, the
    environment that keeps Pulumi offline and on this cluster, and the kit's Kubernetes provider
    installed as a plugin: (CLI root, environment)."""
    cli_root = root / "pulumi-cli"
    (cli_root / "bin").mkdir(parents=True)
    (cli_root / "bin" / "pulumi").symlink_to(kubernetes.binary("pulumi"))
    backend = root / "state"
    backend.mkdir()
    env = {
        "PULUMI_HOME": str(root / "pulumi-home"),
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(24),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
        "KUBECONFIG": str(cluster.kubeconfig),
    }
    subprocess.run(
        [
            str(cli_root / "bin" / "pulumi"),
            "plugin",
            "install",
            "resource",
            "kubernetes",
            f"v{PROVIDER_VERSION}",
            "--file",
            str(kubernetes.binary("pulumi-resource-kubernetes")),
        ],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=120,
    )
    return cli_root, env


def _deployment(
    stack_name: str,
    cluster: kubernetes.ControlPlane,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp(f"pulumi-{stack_name}")
    # infra/'s Pulumi.yaml and the stack file in a scratch copy (the workspace writes the
    # stack's encryption salt into it), beside a link to charts/: the program's own chart is
    # at ../charts/fraudwatch, relative to where `pulumi up` runs.
    work = root / "infra"
    work.mkdir()
    (root / "charts").symlink_to(REPO_ROOT / "charts")
    (work / "Pulumi.yaml").write_text((INFRA / "Pulumi.yaml").read_text())
    stack_file = yaml.safe_load((INFRA / f"Pulumi.{stack_name}.yaml").read_text())
    stack_file["config"]["fraudwatch:charts"] = {
        "directory": str(_chart_directory(root / "helm-charts")),
        "values": TEST_CHART_VALUES,
    }
    (work / f"Pulumi.{stack_name}.yaml").write_text(yaml.safe_dump(stack_file, sort_keys=False))

    cli_root, env = pulumi_cli(root, cluster)
    stack = auto.create_stack(
        stack_name,
        project_name="fraudwatch",
        program=program_main,
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(work),
            pulumi_home=env["PULUMI_HOME"],
            env_vars=env,
            secrets_provider="passphrase",
            pulumi_command=auto.PulumiCommand(root=str(cli_root), skip_version_check=True),
        ),
    )
    config_secrets = {"fraudwatch:credentialsSeed": secrets.token_urlsafe(48)}
    if stack_file["config"]["fraudwatch:bi"]["enabled"]:
        config_secrets["fraudwatch:tableauPatSecret"] = secrets.token_urlsafe(32)
    for key, value in config_secrets.items():
        stack.set_config(key, auto.ConfigValue(value, secret=True))
    api = KubeApi(cluster.url, cluster.token, cluster.ssl_context())
    for namespace, claim, size in STAND_IN_VOLUMES:
        api.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"stand-in-{namespace}-{claim}"},
                "spec": {
                    "storageClassName": BLOCK_STORAGE_CLASS,
                    "capacity": {"storage": size},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "claimRef": {"namespace": namespace, "name": claim},
                    "hostPath": {"path": f"/stand-in/{namespace}/{claim}"},
                },
            }
        )
    events = EventLog()
    try:
        result = stack.up(on_event=events, color="never", on_output=print)
        yield Deployment(
            stack_name,
            stack,
            api,
            result,
            events,
            state_files=[
                *(p for p in (root / "state").rglob("*") if p.is_file()),
                work / f"Pulumi.{stack_name}.yaml",
            ],
            config_secrets=list(config_secrets.values()),
        )
    finally:
        # Whatever a test left behind: the control plane goes away with its fixture anyway.
        with contextlib.suppress(auto.CommandError):
            stack.destroy(color="never", on_output=print)


def expected_namespaces(stack_name: str) -> set[str]:
    """Every concern's namespace; bi only where the stack enables it (prod, not dev)."""
    config = yaml.safe_load((INFRA / f"Pulumi.{stack_name}.yaml").read_text())["config"]
    bi = config["fraudwatch:bi"]["enabled"]
    return {c.namespace for name, c in CONCERNS.items() if name != "bi" or bi}


def _changes(summary: dict[str, int] | None) -> dict[str, int]:
    return {op: n for op, n in (summary or {}).items() if op in CHANGE_OPS and n}


def test_first_up_creates_the_platform_in_dependency_order(deployment: Deployment) -> None:
    events = deployment.first_events
    assert deployment.first_up.summary.result == "succeeded"
    created = {urn for urn, op in events.ops.items() if op == "create"}
    assert len(created) > 100
    # Namespaces before their objects.
    namespace_done = {
        (events.inputs[urn].get("metadata") or {}).get("name"): events.finished[urn]
        for urn in created
        if urn_type(urn) == "kubernetes:core/v1:Namespace"
    }
    assert set(namespace_done) == expected_namespaces(deployment.stack_name)
    in_namespace = []
    for urn in created:
        inputs = events.inputs[urn]
        namespace = inputs.get("namespace") or (inputs.get("metadata") or {}).get("namespace")
        if namespace in namespace_done:
            in_namespace.append((urn, namespace))
    assert len(in_namespace) > 50
    early = [
        f"{urn_name(urn)} ({urn_type(urn)}) before namespace {namespace}"
        for urn, namespace in in_namespace
        if events.started[urn] < namespace_done[namespace]
    ]
    assert early == []
    # CRDs (brought by the operators' releases) before the custom resources.
    releases = {
        urn_name(urn): events.finished[urn]
        for urn in created
        if urn_type(urn) == "kubernetes:helm.sh/v3:Release"
    }
    custom = [
        urn
        for urn in created
        if urn_type(urn).startswith("kubernetes:") and api_group(urn) not in BUILT_IN_GROUPS
    ]
    assert len(custom) > 20
    unknown = sorted({api_group(urn) for urn in custom} - set(CRD_RELEASE))
    assert unknown == [], "which release brings the CRDs of these groups?"
    early = [
        f"{urn_name(urn)} ({api_group(urn)}) before release {CRD_RELEASE[api_group(urn)]}"
        for urn in custom
        if events.started[urn] < releases[CRD_RELEASE[api_group(urn)]]
    ]
    assert early == []


def test_first_up_leaves_the_objects_and_rolled_out_workloads(deployment: Deployment) -> None:
    api = deployment.api
    for spec in CONCERNS.values():
        if spec.namespace not in expected_namespaces(deployment.stack_name):
            assert not api.exists("v1", "Namespace", spec.namespace)
            continue
        ns = api.get("v1", "Namespace", spec.namespace)
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (spec.pod_security)
    crd = api.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "kafkas.kafka.strimzi.io")
    assert crd["metadata"]["name"] == "kafkas.kafka.strimzi.io"
    api.forget_discovery()
    assert api.get("kafka.strimzi.io/v1beta2", "Kafka", "fraudwatch", "fraudwatch-streaming")
    assert api.get(
        "elasticsearch.k8s.elastic.co/v1", "Elasticsearch", "fraudwatch", "fraudwatch-search"
    )
    assert api.get("cert-manager.io/v1", "ClusterIssuer", "fraudwatch-ca")
    policies = api.list("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy")
    assert any(p["metadata"]["name"].startswith("fraudwatch") for p in policies)
    # Every Deployment of the platform rolled out on the simulated nodes (Helm waited for it).
    deployments = [
        d
        for spec in CONCERNS.values()
        if api.exists("v1", "Namespace", spec.namespace)
        for d in api.list("apps/v1", "Deployment", spec.namespace)
    ]
    names = {d["metadata"]["name"] for d in deployments}
    assert {"cert-manager", "strimzi-cluster-operator"} <= names, names
    assert any(n.startswith("fraudwatch") for n in names), names
    # Helm waited for each; a HorizontalPodAutoscaler (prod) may scale one up afterwards to its
    # minimum, whose new pods the simulated nodes then make Ready too.
    for d in deployments:
        name, namespace = d["metadata"]["name"], d["metadata"]["namespace"]

        def available(name: str = name, namespace: str = namespace) -> bool:
            current = api.get("apps/v1", "Deployment", name, namespace)
            wanted = current["spec"].get("replicas", 1)
            return current.get("status", {}).get("availableReplicas", 0) == wanted

        api.wait_for(available, what=f"Deployment {namespace}/{name} Available", timeout=180)
    # Generated credentials reach their Secrets (base64 in the API), never the stack file.
    secret = api.get("v1", "Secret", "fraudwatch-mongo-system-users", "fraudwatch-documents")
    assert secret["data"]


def test_state_and_stack_file_hold_secrets_only_encrypted(deployment: Deployment) -> None:
    """The file backend's state and the stack file: the secrets given as config and the
    credentials derived from the seed appear only as ciphertext."""
    api = deployment.api
    derived = [
        base64.b64decode(value).decode()
        for name, namespace in (
            ("fraudwatch-mongo-system-users", "fraudwatch-documents"),
            ("fraudwatch-s3", "fraudwatch-workloads"),
        )
        for key, value in api.get("v1", "Secret", name, namespace)["data"].items()
        if "PASSWORD" in key.upper() or "SECRET" in key.upper()
    ]
    assert len(derived) >= 3
    texts = [p.read_text(errors="replace") for p in deployment.state_files]
    assert any('"ciphertext"' in t for t in texts), "no encrypted secret in the state"
    assert any("secure:" in t for t in texts), "the stack file holds the config secrets"
    leaked = [
        v[:4] + "…" for v in [*deployment.config_secrets, *derived] if any(v in t for t in texts)
    ]
    assert leaked == []


def test_second_up_changes_nothing(deployment: Deployment) -> None:
    preview = deployment.stack.preview(color="never")
    assert _changes(preview.change_summary) == {}, preview.change_summary
    again = deployment.stack.up(color="never")
    assert again.summary.result == "succeeded"
    assert _changes(again.summary.resource_changes) == {}, again.summary.resource_changes


def test_destroy_leaves_only_the_retained_crds(deployment: Deployment) -> None:
    api = deployment.api
    result = deployment.stack.destroy(color="never")
    assert result.summary.result == "succeeded"
    assert _changes(result.summary.resource_changes).get("delete", 0) > 100
    namespaces = {n["metadata"]["name"] for n in api.list("v1", "Namespace")}
    assert namespaces <= BUILT_IN_NAMESPACES, namespaces - BUILT_IN_NAMESPACES
    assert api.list("storage.k8s.io/v1", "StorageClass") == []
    assert [
        p["metadata"]["name"]
        for p in api.list("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy")
    ] == []
    volumes = {v["metadata"]["name"]: v for v in api.list("v1", "PersistentVolume")}
    assert set(volumes) == {f"stand-in-{ns}-{claim}" for ns, claim, _ in STAND_IN_VOLUMES}
    assert {v["status"]["phase"] for v in volumes.values()} == {"Released"}
    # Helm never deletes the CRDs of a chart's crds/ folder, and cert-manager's, ECK's and Rook's
    # are marked keep (helm.sh/resource-policy): docs/operations/kubernetes.md says so. Only the
    # definitions stay: the custom resources went with their namespaces, the cluster-wide
    # ones with the stack.
    crds = api.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert crds
    assert [
        c["metadata"]["name"] for c in crds if not c["spec"]["group"].endswith(OPERATOR_GROUPS)
    ] == []
    api.forget_discovery()
    assert api.list("cert-manager.io/v1", "ClusterIssuer") == []
    # Nothing cluster-wide of the releases or of the program outlives the stack.
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        leftovers = [
            r["metadata"]["name"]
            for r in api.list("rbac.authorization.k8s.io/v1", kind)
            if "meta.helm.sh/release-name" in (r["metadata"].get("annotations") or {})
            or (r["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of") == "fraudwatch"
        ]
        assert leftovers == [], kind
