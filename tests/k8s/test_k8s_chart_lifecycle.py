"""Chart lifecycle (issue 17, item 3): charts/fraudwatch installed at its previous release,
upgraded to this checkout's chart, rolled back, with the Helm v4 SDK (helm-python: Config.install
/ upgrade / rollback / history against the control plane's kubeconfig; no helm binary) on a
real API server with simulated nodes (kwok), so the Deployments and the StatefulSet roll out and
turn Ready at each step (Helm's own wait, then checked here).

The previous release is the chart version ci/previous-release.yaml names (the one the chart's
render-level upgrade-safety test compares with), taken with `git archive` from the newest commit
whose Chart.yaml carries that version; both releases get that file's values, as a user upgrades
with the values file of the release before. A clone without that commit fails with a message
saying to clone with history.

The namespace enforces Pod Security `restricted`, as the program's workloads namespace does.
Nothing provisions volumes here: the intervention StatefulSet's claim is bound to a volume made
beforehand (static provisioning), so the claim and its pod are real.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from conftest import plain_crd
from k8s_kit import BUILT_IN_GROUPS, crd_documents
from kube_api import KubeApi
from previous_release import MissingHistory, materialise

from tests.servers import kubernetes

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "fraudwatch"
PREVIOUS_RELEASE_FILE = CHART / "ci" / "previous-release.yaml"
RELEASE = "fw"
NAMESPACE = "fraudwatch-workloads"
SIMULATED_NODES = 2
HELM_TIMEOUT_S = 300
# Objects whose identity must survive upgrade and rollback (replaced = data or state lost).
STATEFUL_KINDS = (("apps/v1", "StatefulSet"), ("v1", "PersistentVolumeClaim"))
WORKLOAD_KINDS = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"))


def previous_chart_commit(version: str) -> str:
    """The newest commit whose charts/fraudwatch/Chart.yaml has `version`."""
    commits = subprocess.run(
        ["git", "log", "--format=%H", "--", "charts/fraudwatch/Chart.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for commit in commits:
        shown = subprocess.run(
            ["git", "show", f"{commit}:charts/fraudwatch/Chart.yaml"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        if shown.returncode == 0 and str(yaml.safe_load(shown.stdout)["version"]) == version:
            return commit
    raise MissingHistory(
        f"no commit of this clone has charts/fraudwatch at version {version} (the previous "
        f"release, {PREVIOUS_RELEASE_FILE.relative_to(REPO_ROOT)}). Clone with history (git "
        "clone without --depth, or `git fetch --unshallow`) to run the chart lifecycle test."
    )


def field(release: dict[str, Any], key: str) -> Any:
    """A field of the SDK's release summary (a flat dict: revision, status, chart_version,
    description, manifest, ...); a missing key fails naming the keys there are."""
    if key not in release:
        raise AssertionError(f"release summary has no {key!r}: {sorted(release)}")
    return release[key]


def _objects(manifest: str) -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all(manifest) if o]


def _install_needed_crds(api: KubeApi, objects: list[dict[str, Any]]) -> list[str]:
    """The pinned CRDs of the kit for every custom-resource group the chart renders."""
    groups = {o["apiVersion"].rpartition("/")[0] for o in objects} - BUILT_IN_GROUPS
    names = []
    for folder in (kubernetes.kit_dir() / "crds").iterdir():
        if not folder.is_dir() or folder.name.endswith("-latest"):
            continue
        for crd in crd_documents(folder):
            if crd["spec"]["group"] in groups:
                api.apply(plain_crd(crd))
                names.append(crd["metadata"]["name"])

    def established() -> bool:
        for name in names:
            crd = api.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
            status = {c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])}
            if status.get("Established") != "True":
                return False
        return True

    api.wait_for(established, what=f"{len(names)} CRDs Established", timeout=240)
    api.forget_discovery()
    return names


def _claims(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Claim name -> spec of every PersistentVolumeClaim the objects make: their own and
    those of the StatefulSets' volumeClaimTemplates (<template>-<statefulset>-<ordinal>)."""
    claims = {}
    for obj in objects:
        if obj["kind"] == "PersistentVolumeClaim":
            claims[obj["metadata"]["name"]] = obj["spec"]
        elif obj["kind"] == "StatefulSet":
            for template in obj["spec"].get("volumeClaimTemplates", []):
                for ordinal in range(obj["spec"].get("replicas", 1)):
                    name = f"{template['metadata']['name']}-{obj['metadata']['name']}-{ordinal}"
                    claims[name] = template["spec"]
    return claims


@dataclass
class Step:
    """What the cluster held after one lifecycle step."""

    chart_version: str
    manifest: str
    manifest_kinds: set[tuple[str, str]]
    uids: dict[tuple[str, str], str]
    workloads: set[tuple[str, str]]


@dataclass
class Lifecycle:
    previous_version: str
    current_version: str
    steps: dict[str, Step]
    history: list[dict[str, Any]]


def _ready(api: KubeApi, api_version: str, kind: str, name: str) -> bool:
    obj = api.get(api_version, kind, name, NAMESPACE)
    status, wanted = obj.get("status", {}), obj["spec"].get("replicas", 1)
    if status.get("observedGeneration", 0) < obj["metadata"]["generation"]:
        return False
    ready = status.get("availableReplicas" if kind == "Deployment" else "readyReplicas", 0)
    return ready == wanted and status.get("updatedReplicas", 0) == wanted


def _observe(api: KubeApi, release: dict[str, Any]) -> Step:
    objects = _objects(field(release, "manifest"))
    workloads = {
        (o["kind"], o["metadata"]["name"])
        for o in objects
        if (o["apiVersion"], o["kind"]) in WORKLOAD_KINDS
    }
    for kind, name in workloads:
        api.wait_for(
            lambda kind=kind, name=name: _ready(api, "apps/v1", kind, name),
            what=f"{kind} {NAMESPACE}/{name} Ready (release revision {field(release, 'revision')})",
            timeout=180,
        )
    uids = {}
    for api_version, kind in STATEFUL_KINDS:
        for obj in api.list(api_version, kind, NAMESPACE):
            uids[(kind, obj["metadata"]["name"])] = obj["metadata"]["uid"]
    return Step(
        chart_version=field(release, "chart_version"),
        manifest=field(release, "manifest"),
        manifest_kinds={(o["kind"], o["metadata"]["name"]) for o in objects},
        uids=uids,
        workloads=workloads,
    )


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lifecycle]:
    previous_release = yaml.safe_load(PREVIOUS_RELEASE_FILE.read_text())
    previous_version, values = str(previous_release["version"]), previous_release["values"]
    root = tmp_path_factory.mktemp("chart-lifecycle")
    commit = previous_chart_commit(previous_version)
    previous_chart = materialise(root / "previous", ("charts/fraudwatch",), commit)
    previous_chart = previous_chart / "charts" / "fraudwatch"
    state_dir = tmp_path_factory.mktemp("k8s-chart-lifecycle")
    cluster = kubernetes.start(state_dir, simulated_nodes=SIMULATED_NODES)
    try:
        api = KubeApi(cluster.url, cluster.token, cluster.ssl_context())
        rendered = []
        for chart_dir in (previous_chart, CHART):
            with helm.Chart.load(chart_dir) as chart:
                texts = chart.render(values, name=RELEASE, namespace=NAMESPACE)
            rendered += [o for text in texts.values() for o in _objects(text)]
        _install_needed_crds(api, rendered)
        api.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": NAMESPACE,
                    "labels": {
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "latest",
                    },
                },
            }
        )
        # A volume for every claim of either release (no provisioner runs here).
        for claim, spec in _claims(rendered).items():
            api.apply(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"stand-in-{claim}"},
                    "spec": {
                        "storageClassName": spec.get("storageClassName", ""),
                        "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                        "accessModes": spec["accessModes"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "claimRef": {"namespace": NAMESPACE, "name": claim},
                        "hostPath": {"path": f"/stand-in/{claim}"},
                    },
                }
            )
        steps: dict[str, Step] = {}
        with helm.Config(kubeconfig_path=cluster.kubeconfig, namespace=NAMESPACE) as config:
            config.install(
                previous_chart,
                RELEASE,
                values,
                namespace=NAMESPACE,
                wait="watcher",
                timeout=HELM_TIMEOUT_S,
            )
            steps["install"] = _observe(api, config.status(RELEASE))
            config.upgrade(
                CHART, RELEASE, values, namespace=NAMESPACE, wait="watcher", timeout=HELM_TIMEOUT_S
            )
            steps["upgrade"] = _observe(api, config.status(RELEASE))
            config.rollback(RELEASE, version=1, wait="watcher", timeout=HELM_TIMEOUT_S)
            steps["rollback"] = _observe(api, config.status(RELEASE))
            history = config.history(RELEASE)
            with helm.Chart.load(CHART) as chart:
                current_version = chart.version
            yield Lifecycle(previous_version, current_version, steps, history)
            config.uninstall(RELEASE, wait="watcher", timeout=HELM_TIMEOUT_S)
    finally:
        kubernetes.stop(state_dir)


def test_install_upgrade_rollback_run_the_expected_chart_versions(lifecycle: Lifecycle) -> None:
    steps = lifecycle.steps
    assert steps["install"].chart_version == lifecycle.previous_version
    assert steps["upgrade"].chart_version == lifecycle.current_version
    assert steps["rollback"].chart_version == lifecycle.previous_version
    # The rollback brought back exactly the previous release's objects, as revision 1 had them.
    assert steps["rollback"].manifest == steps["install"].manifest
    assert steps["upgrade"].manifest != steps["install"].manifest


def test_revision_history_is_install_upgrade_rollback(lifecycle: Lifecycle) -> None:
    history = sorted(lifecycle.history, key=lambda r: field(r, "revision"))
    assert [field(r, "revision") for r in history] == [1, 2, 3]
    assert [field(r, "status") for r in history] == ["superseded", "superseded", "deployed"]
    assert [field(r, "chart_version") for r in history] == [
        lifecycle.previous_version,
        lifecycle.current_version,
        lifecycle.previous_version,
    ]


def test_workloads_ready_at_every_step(lifecycle: Lifecycle) -> None:
    # _observe waited for each Deployment and StatefulSet of the step's manifest to be Ready.
    for name, step in lifecycle.steps.items():
        kinds = {kind for kind, _ in step.workloads}
        assert {"Deployment", "StatefulSet"} <= kinds, (name, step.workloads)


def test_upgrade_and_rollback_keep_the_stateful_objects(lifecycle: Lifecycle) -> None:
    install = lifecycle.steps["install"].uids
    assert ("StatefulSet", f"{RELEASE}-fraudwatch-intervention") in install
    assert any(kind == "PersistentVolumeClaim" for kind, _ in install)
    for name in ("upgrade", "rollback"):
        after = lifecycle.steps[name].uids
        changed = sorted(f"{k[0]}/{k[1]}" for k, uid in install.items() if after.get(k) != uid)
        assert changed == [], name
