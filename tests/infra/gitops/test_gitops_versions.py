"""One home for versions: infra/fraudwatch_infra/versions.py. Every chart version and chart
repository, every image and every server version written under infra/gitops must equal the
value versions.py pins (the Pulumi program imports the same module), so Argo CD, Flux and
`pulumi up` deploy the same platform."""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest
from gitops_render import ENVIRONMENTS, GITOPS_DIR, REPO_ROOT, kustomize_build

sys.path.insert(0, str(REPO_ROOT / "infra"))
sys.path.insert(0, str(REPO_ROOT / "tests" / "infra"))

from fraudwatch_infra import versions
from k8s_kit import kit_dir

# The product's own image: versioned with the chart (charts/fraudwatch), not a third party.
OWN_IMAGE_PREFIX = "ghcr.io/fraudwatch/"
GIT_REPO_URL = "https://github.com/fraudwatch/fraudwatch.git"


def _charts() -> dict[str, versions.HelmChart]:
    charts = [v for v in vars(versions).values() if isinstance(v, versions.HelmChart)]
    return {chart.chart.rsplit("/", 1)[-1]: chart for chart in charts}


def _images() -> set[str]:
    images = {
        value
        for name, value in vars(versions).items()
        if name.endswith("_IMAGE") and isinstance(value, str)
    }
    repository, tag = versions.AIRFLOW_IMAGE
    return images | {f"{repository}:{tag}"}


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    found = [(path, value)]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _walk(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _walk(child, f"{path}[{index}]")
    return found


def _objects() -> list[tuple[str, dict[str, Any]]]:
    """Every object the environments apply, with where it came from (deep copies: the
    drift tests edit them)."""
    found = []
    for env in ENVIRONMENTS:
        for tool in ("argocd", "flux", "platform"):
            directory = GITOPS_DIR / tool / "overlays" / env
            found += [(f"{tool}/overlays/{env}", o) for o in kustomize_build(directory)]
        found += [(f"flux/apps/{env}", o) for o in kustomize_build(GITOPS_DIR / "flux/apps" / env)]
    found += [("flux/operators", o) for o in kustomize_build(GITOPS_DIR / "flux" / "operators")]
    return copy.deepcopy(found)


def _name(where: str, obj: dict[str, Any]) -> str:
    return f"{where}: {obj['kind']}/{obj['metadata']['name']}"


def chart_pins(objects: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, str, str]]:
    """(object, chart, version, repository URL) of every third-party chart the GitOps path
    installs: Argo CD Application sources and Flux HelmReleases (through their HelmRepository)."""
    repositories = {
        o["metadata"]["name"]: o["spec"]["url"] for _, o in objects if o["kind"] == "HelmRepository"
    }
    pins = []
    for where, obj in objects:
        if obj["kind"] == "Application":
            sources = obj["spec"].get("sources") or [obj["spec"]["source"]]
            for source in sources:
                if "chart" in source and source["repoURL"] != GIT_REPO_URL:
                    if source["chart"] == "fraudwatch":
                        continue  # the product's own chart, released from charts/fraudwatch
                    pins.append(
                        (
                            _name(where, obj),
                            source["chart"],
                            str(source["targetRevision"]),
                            source["repoURL"],
                        )
                    )
        elif obj["kind"] == "HelmRelease" and "chart" in obj["spec"]:
            spec = obj["spec"]["chart"]["spec"]
            if spec["sourceRef"]["kind"] != "HelmRepository":
                continue  # charts/fraudwatch from this repository's git source
            pins.append(
                (
                    _name(where, obj),
                    spec["chart"],
                    str(spec["version"]),
                    repositories[spec["sourceRef"]["name"]],
                )
            )
    return pins


def drift(objects: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Every place under infra/gitops whose version differs from versions.py."""
    charts, images = _charts(), _images()
    problems = []
    for name, chart, version, repo in chart_pins(objects):
        pinned = charts.get(chart)
        if pinned is None:
            problems.append(f"{name}: chart {chart} is not pinned in versions.py")
            continue
        if version != pinned.version:
            problems.append(f"{name}: chart {chart} {version} != versions.py {pinned.version}")
        if pinned.repo is not None and repo.rstrip("/") != pinned.repo.rstrip("/"):
            problems.append(f"{name}: chart {chart} from {repo} != versions.py {pinned.repo}")
    for where, obj in objects:
        name = _name(where, obj)
        for path, value in _walk(obj.get("spec", {})):
            if (
                path.split(".")[-1] == "image"
                and isinstance(value, str)
                and not value.startswith(OWN_IMAGE_PREFIX)
                and value not in images
            ):
                problems.append(f"{name}: {path} = {value} is not an image of versions.py")
        spec = obj.get("spec", {})
        expected: dict[str, tuple[Any, str]] = {}
        if obj["kind"] == "Kafka":
            expected = {
                "version": (spec["kafka"].get("version"), versions.KAFKA_VERSION),
                "metadataVersion": (
                    spec["kafka"].get("metadataVersion"),
                    versions.KAFKA_METADATA_VERSION,
                ),
            }
        elif obj["kind"] == "Elasticsearch":
            expected = {"version": (spec.get("version"), versions.ELASTICSEARCH_VERSION)}
        elif obj["kind"] == "PerconaServerMongoDB":
            expected = {
                "crVersion": (spec.get("crVersion"), versions.PERCONA_MONGODB_CR_VERSION),
                "image": (spec.get("image"), versions.MONGODB_IMAGE),
            }
        elif obj["kind"] == "CephCluster":
            expected = {
                "cephVersion.image": (spec["cephVersion"].get("image"), versions.CEPH_IMAGE)
            }
        for field, (actual, pinned_value) in expected.items():
            if str(actual) != pinned_value:
                problems.append(f"{name}: spec {field} = {actual} != versions.py {pinned_value}")
    return problems


def test_gitops_versions_are_the_versions_of_versions_py() -> None:
    assert drift(_objects()) == []


def test_every_operator_the_gitops_path_installs_is_checked() -> None:
    objects = _objects()
    pinned = {chart for _, chart, _, _ in chart_pins(objects)}
    assert {
        "strimzi-kafka-operator",
        "eck-operator",
        "rook-ceph",
        "psmdb-operator",
        "spark-operator",
        "kube-prometheus-stack",
    } <= pinned
    kinds = {o["kind"] for _, o in objects}
    assert {"Kafka", "Elasticsearch", "PerconaServerMongoDB", "CephCluster"} <= kinds


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda o: (
                o["kind"] == "HelmRelease"
                and o["metadata"]["name"] == "rook-ceph"
                and o["spec"]["chart"]["spec"].update(version="v1.17.0")
            ),
            "chart rook-ceph v1.17.0 != versions.py v1.17.7",
        ),
        (
            lambda o: (
                o["kind"] == "Application"
                and o["metadata"]["name"] == "spark-operator"
                and o["spec"]["source"].update(targetRevision="2.1.0")
            ),
            "chart spark-operator 2.1.0 != versions.py 2.2.1",
        ),
        (
            lambda o: (
                o["kind"] == "CephCluster"
                and o["spec"]["cephVersion"].update(image="quay.io/ceph/ceph:v19.2.2")
            ),
            "quay.io/ceph/ceph:v19.2.2 is not an image of versions.py",
        ),
        (
            lambda o: o["kind"] == "PerconaServerMongoDB" and o["spec"].update(crVersion="1.20.0"),
            "spec crVersion = 1.20.0 != versions.py 1.20.1",
        ),
        (
            lambda o: (
                o["kind"] == "HelmRepository"
                and o["metadata"]["name"] == "eck"
                and o["spec"].update(url="https://charts.example.com")
            ),
            "from https://charts.example.com != versions.py",
        ),
    ],
)
def test_the_check_finds_drift(edit, expected) -> None:
    objects = _objects()
    for _, obj in objects:
        edit(obj)
    assert any(expected in problem for problem in drift(objects)), drift(objects)


def test_versions_py_charts_are_in_the_kits_air_gapped_chart_folder() -> None:
    """The air-gapped chart mirror (the shared kit's charts/) holds every operator chart at
    the pinned version; the two it lacks are named here so the gap is visible."""
    not_in_kit = {"airflow", "kube-prometheus-stack"}
    present = {p.name for p in (kit_dir() / "charts").glob("*.tgz")}
    missing = [
        f"{name}-{chart.version}.tgz"
        for name, chart in _charts().items()
        if name not in not_in_kit and f"{name}-{chart.version}.tgz" not in present
    ]
    assert missing == []
