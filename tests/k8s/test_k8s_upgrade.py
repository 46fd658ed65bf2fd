"""Upgrade of the platform (issue 17, item 2): `pulumi up` of the previous release's program
(tests/k8s/previous_release.py names the commit; its infra/ and charts/ unpacked with `git
archive`), then `pulumi up` of this checkout's program on the same stack (dev config, same
state, same secrets), on a control plane of its own with simulated nodes, as in
test_k8s_pulumi.

The upgrade must succeed without an immutable-field error anywhere in the engine's events and
output, must not replace or delete a stateful resource (per-URN operations of the upgrade's
event stream: PersistentVolumeClaims, StatefulSets, the operators' custom resources that hold
data, the namespaces and the Helm releases that hold them), and the stateful objects on the
API server must be the same objects afterwards (same UIDs). A second `up` then changes nothing.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import helm_python as helm
import pytest
import yaml
from kube_api import KubeApi
from previous_release import PREVIOUS_RELEASE, materialise
from pulumi import automation as auto
from test_k8s_pulumi import (
    CHANGE_OPS,
    INFRA,
    SIMULATED_NODES,
    STAND_IN_VOLUMES,
    TEST_CHART_VALUES,
    EventLog,
    _chart_directory,
    pulumi_cli,
    urn_name,
    urn_type,
)

from tests.servers import kubernetes

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK = "dev"

from fraudwatch_infra.namespaces import CONCERNS  # noqa: E402
from fraudwatch_infra.program import main as program_main  # noqa: E402 (INFRA on sys.path)
from fraudwatch_infra.storage import BLOCK_STORAGE_CLASS  # noqa: E402
from fraudwatch_infra.workloads import RELEASE as WORKLOADS_RELEASE  # noqa: E402

# Resource types (URN type tokens) whose replacement or deletion loses data or everything in
# them. A Helm release replaced is uninstalled and installed again (its StatefulSets and
# claims with it); a namespace replaced takes every object in it.
STATEFUL_TYPES = {
    "kubernetes:core/v1:Namespace",
    "kubernetes:core/v1:PersistentVolumeClaim",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:helm.sh/v3:Release",
    "kubernetes:kafka.strimzi.io/v1beta2:Kafka",
    "kubernetes:kafka.strimzi.io/v1beta2:KafkaNodePool",
    "kubernetes:kafka.strimzi.io/v1beta2:KafkaTopic",
    "kubernetes:psmdb.percona.com/v1:PerconaServerMongoDB",
    "kubernetes:ceph.rook.io/v1:CephCluster",
    "kubernetes:ceph.rook.io/v1:CephBlockPool",
    "kubernetes:ceph.rook.io/v1:CephObjectStore",
    "kubernetes:ceph.rook.io/v1:CephObjectStoreUser",
    "kubernetes:objectbucket.io/v1alpha1:ObjectBucketClaim",
    "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch",
}
# The same objects as the API server holds them (apiVersion, kind), compared by UID.
STATEFUL_OBJECTS = (
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "StatefulSet"),
    ("kafka.strimzi.io/v1beta2", "Kafka"),
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
    ("psmdb.percona.com/v1", "PerconaServerMongoDB"),
    ("ceph.rook.io/v1", "CephCluster"),
    ("ceph.rook.io/v1", "CephBlockPool"),
    ("ceph.rook.io/v1", "CephObjectStore"),
    ("ceph.rook.io/v1", "CephObjectStoreUser"),
    ("objectbucket.io/v1alpha1", "ObjectBucketClaim"),
    ("elasticsearch.k8s.elastic.co/v1", "Elasticsearch"),
)
LOSING_OPS = {"delete", "replace", "create-replacement", "delete-replaced", "discard"}
IMMUTABLE = re.compile(r"immutable", re.IGNORECASE)


class TextLog(EventLog):
    """EventLog plus every diagnostic message of the engine."""

    def __init__(self) -> None:
        super().__init__()
        self.diagnostics: list[str] = []

    def __call__(self, event: auto.EngineEvent) -> None:
        super().__call__(event)
        if event.diagnostic_event is not None:
            self.diagnostics.append(event.diagnostic_event.message)


@dataclass
class Upgrade:
    api: KubeApi
    previous: dict
    before: dict[tuple[str, str, str, str], str]
    upgrade: auto.UpResult
    events: TextLog
    output: str
    stack: auto.Stack
    kubeconfig: Path


def stateful_uids(api: KubeApi) -> dict[tuple[str, str, str, str], str]:
    """(kind, apiVersion, namespace, name) -> UID of every stateful object, and namespaces."""
    api.forget_discovery()
    uids = {}
    namespaces = [n["metadata"]["name"] for n in api.list("v1", "Namespace")]
    for namespace in namespaces:
        uid = api.get("v1", "Namespace", namespace)["metadata"]["uid"]
        uids[("Namespace", "v1", "", namespace)] = uid
        for api_version, kind in STATEFUL_OBJECTS:
            for obj in api.list(api_version, kind, namespace):
                meta = obj["metadata"]
                uids[(kind, api_version, namespace, meta["name"])] = meta["uid"]
    return uids


def _previous_up(request: dict, root: Path) -> dict:
    """The previous release's `up`, in a process importing that release's fraudwatch_infra."""
    request_file, outcome_file = root / "previous-up.json", root / "previous-outcome.json"
    request_file.write_text(json.dumps(request))
    env = {**kubernetes.local_env(), **request["env"], "PYTHONPATH": request["infra"]}
    completed = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("previous_release.py")),
            str(request_file),
            str(outcome_file),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert completed.returncode == 0, (
        f"pulumi up of the previous release {PREVIOUS_RELEASE[:12]} failed:\n"
        f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
    )
    return {**json.loads(outcome_file.read_text()), "output": completed.stdout}


def _stack_file(source: Path, charts: Path, secure_from: Path | None = None) -> str:
    """A stack file from `source` with the local chart directory; the encryption salt and
    the encrypted secrets of the stack file already in use (`secure_from`) are kept."""
    stack_file = yaml.safe_load(source.read_text())
    stack_file["config"]["fraudwatch:charts"] = {
        "directory": str(charts),
        "values": TEST_CHART_VALUES,
    }
    if secure_from is not None:
        current = yaml.safe_load(secure_from.read_text())
        for key, value in current["config"].items():
            if isinstance(value, dict) and "secure" in value:
                stack_file["config"][key] = value
        stack_file = {"encryptionsalt": current["encryptionsalt"], **stack_file}
    return yaml.safe_dump(stack_file, sort_keys=False)


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgrade]:
    state_dir = tmp_path_factory.mktemp("k8s-upgrade")
    root = tmp_path_factory.mktemp("pulumi-upgrade")
    # The previous release's program and chart, from git (never the working tree).
    previous = materialise(root / "previous", ("infra", "charts"))
    cluster = kubernetes.start(state_dir, simulated_nodes=SIMULATED_NODES, admission_webhooks=False)
    stack = None
    try:
        # One work directory for both programs: ../charts from it is the previous release's
        # chart for the first up and this checkout's for the upgrade.
        work = root / "infra"
        work.mkdir()
        charts_link = root / "charts"
        charts_link.symlink_to(previous / "charts")
        chart_dir = _chart_directory(root / "helm-charts")
        (work / "Pulumi.yaml").write_text((previous / "infra" / "Pulumi.yaml").read_text())
        stack_path = work / f"Pulumi.{STACK}.yaml"
        stack_path.write_text(_stack_file(previous / "infra" / f"Pulumi.{STACK}.yaml", chart_dir))
        cli_root, env = pulumi_cli(root, cluster)
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
        config_secrets = {"fraudwatch:credentialsSeed": secrets.token_urlsafe(48)}
        previous_outcome = _previous_up(
            {
                "stack": STACK,
                "infra": str(previous / "infra"),
                "work_dir": str(work),
                "cli_root": str(cli_root),
                "env": env,
                "secrets": config_secrets,
            },
            root,
        )
        before = stateful_uids(api)

        # The upgrade: this checkout's program, chart and stack configuration on the same
        # stack and state (the secrets stay as the first up encrypted them).
        charts_link.unlink()
        charts_link.symlink_to(REPO_ROOT / "charts")
        (work / "Pulumi.yaml").write_text((INFRA / "Pulumi.yaml").read_text())
        stack_path.write_text(
            _stack_file(INFRA / f"Pulumi.{STACK}.yaml", chart_dir, secure_from=stack_path)
        )
        stack = auto.select_stack(
            STACK,
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
        events = TextLog()
        output: list[str] = []
        try:
            result = stack.up(on_event=events, color="never", on_output=output.append)
        except auto.CommandError as error:
            pytest.fail(
                f"the upgrade from {PREVIOUS_RELEASE[:12]} failed: {error}\n"
                + "\n".join(events.diagnostics)[-6000:]
            )
        yield Upgrade(
            api,
            previous_outcome,
            before,
            result,
            events,
            "".join(output),
            stack,
            cluster.kubeconfig,
        )
    finally:
        if stack is not None:
            try:
                stack.destroy(color="never")
            except auto.CommandError as error:
                print(f"destroy after the upgrade test failed: {error}")
        kubernetes.stop(state_dir)


def test_previous_release_came_up(upgrade: Upgrade) -> None:
    assert upgrade.previous["result"] == "succeeded"
    assert upgrade.previous["resource_changes"].get("create", 0) > 100
    kinds = {key[0] for key in upgrade.before}
    assert {"Namespace", "Kafka", "PerconaServerMongoDB", "Elasticsearch", "CephCluster"} <= (
        kinds
    ), kinds


def test_upgrade_succeeds_without_immutable_field_errors(upgrade: Upgrade) -> None:
    assert upgrade.upgrade.summary.result == "succeeded"
    immutable = [m for m in upgrade.events.diagnostics if IMMUTABLE.search(m)]
    assert immutable == []
    assert not IMMUTABLE.search(upgrade.output), upgrade.output[-4000:]


def test_upgrade_replaces_and_deletes_no_stateful_resource(upgrade: Upgrade) -> None:
    ops = upgrade.events.ops
    stateful = {urn: op for urn, op in ops.items() if urn_type(urn) in STATEFUL_TYPES}
    # Every stateful resource the program declares went through the engine.
    assert sum(urn_type(u) == "kubernetes:helm.sh/v3:Release" for u in stateful) >= 8
    lost = sorted(
        f"{urn_name(urn)} ({urn_type(urn)}): {op}"
        for urn, op in stateful.items()
        if op in LOSING_OPS
    )
    assert lost == []
    # What the upgrade changed, for the log (test_upgrade_deploys_this_checkouts_chart checks
    # that the chart was rolled out).
    changed = {
        op: n
        for op, n in (upgrade.upgrade.summary.resource_changes or {}).items()
        if op in CHANGE_OPS and n
    }
    print(f"upgrade from {PREVIOUS_RELEASE[:12]}: {changed}")


def test_upgrade_deploys_this_checkouts_chart(upgrade: Upgrade) -> None:
    """The fraudwatch release on the cluster after the upgrade is this checkout's chart: its
    deployed manifest holds the objects charts/fraudwatch renders with the deployed values."""
    name, namespace = WORKLOADS_RELEASE, CONCERNS["workloads"].namespace
    with helm.Config(kubeconfig_path=upgrade.kubeconfig, namespace=namespace) as config:
        deployed = config.status(name)
        values = config.get_values(name)
    with helm.Chart.load(REPO_ROOT / "charts" / "fraudwatch") as chart:
        rendered = chart.render(values, name=name, namespace=namespace)
    wanted = {
        (o["kind"], o["metadata"]["name"])
        for text in rendered.values()
        for o in yaml.safe_load_all(text)
        # Hooks (the generator Job) are not part of a release's manifest.
        if o and "helm.sh/hook" not in (o["metadata"].get("annotations") or {})
    }
    have = {
        (o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(deployed["manifest"]) if o
    }
    assert sorted(wanted - have) == [], (
        f"revision {deployed['revision']} of {name} lacks objects of this checkout's "
        "chart: pulumi up did not upgrade the release (the provider rolls a local chart out "
        "when its Chart.yaml version or its values change: a template change needs a version "
        "bump, docs/operations/kubernetes.md)"
    )
    assert sorted(have - wanted) == []


def test_stateful_objects_are_the_same_objects_after_the_upgrade(upgrade: Upgrade) -> None:
    after = stateful_uids(upgrade.api)
    assert len(upgrade.before) > 15
    gone_or_new = sorted(
        f"{kind} {namespace}/{name}"
        for (kind, version, namespace, name), uid in upgrade.before.items()
        if after.get((kind, version, namespace, name)) != uid
    )
    assert gone_or_new == []


def test_second_up_after_the_upgrade_changes_nothing(upgrade: Upgrade) -> None:
    again = upgrade.stack.up(color="never")
    assert again.summary.result == "succeeded"
    changes = {
        op: n for op, n in (again.summary.resource_changes or {}).items() if op in CHANGE_OPS and n
    }
    assert changes == {}
