"""The one way chart tests render the fraudwatch chart and check what comes out.

`render_chart()` renders with the Helm v4 SDK (helm-python-sdk; no helm binary), which also
validates the values against values.schema.json, parses every manifest and validates each
object: built-in kinds with kubernetes-validate --strict for KUBERNETES_VERSION, custom
resources (no schema ships for them) structurally against their documented required fields.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

# The Kubernetes version every rendered object is validated against.
KUBERNETES_VERSION = "1.33.0"

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART_DIR = REPO_ROOT / "charts" / "fraudwatch"
CI_VALUES_DIR = CHART_DIR / "ci"
RELEASE_NAME = "fw"
NAMESPACE = "fraudwatch"

# Custom resources: kubernetes-validate ships no schema for them, so each is checked for the
# apiVersion/kind its operator serves and the fields its documentation marks required
# (dotted paths; "a|b" means one of them).
CUSTOM_RESOURCE_REQUIRED_FIELDS: dict[tuple[str, str], list[str]] = {
    # Kubeflow Spark Operator
    ("sparkoperator.k8s.io/v1beta2", "SparkApplication"): [
        "spec.type",
        "spec.mode",
        "spec.image",
        "spec.mainApplicationFile",
        "spec.sparkVersion",
        "spec.driver",
        "spec.executor",
    ],
    ("sparkoperator.k8s.io/v1beta2", "ScheduledSparkApplication"): [
        "spec.schedule",
        "spec.template.type",
        "spec.template.mode",
        "spec.template.image",
        "spec.template.mainApplicationFile",
        "spec.template.sparkVersion",
        "spec.template.driver",
        "spec.template.executor",
    ],
    # Prometheus Operator
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["spec.selector", "spec.endpoints"],
    # Argo CD
    ("argoproj.io/v1alpha1", "Application"): [
        "spec.project",
        "spec.destination",
        "spec.source|spec.sources",
    ],
    ("argoproj.io/v1alpha1", "ApplicationSet"): ["spec.generators", "spec.template"],
    ("argoproj.io/v1alpha1", "AppProject"): ["spec.sourceRepos", "spec.destinations"],
    # Flux
    ("source.toolkit.fluxcd.io/v1", "GitRepository"): ["spec.url", "spec.interval"],
    ("source.toolkit.fluxcd.io/v1", "HelmRepository"): ["spec.url", "spec.interval"],
    ("source.toolkit.fluxcd.io/v1", "OCIRepository"): ["spec.url", "spec.interval"],
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"): [
        "spec.interval",
        "spec.chart.spec.chart|spec.chartRef",
    ],
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): [
        "spec.interval",
        "spec.prune",
        "spec.sourceRef.kind",
        "spec.sourceRef.name",
    ],
    # Platform operators' custom resources (infra/gitops/platform)
    ("kafka.strimzi.io/v1beta2", "Kafka"): ["spec.kafka"],
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): ["spec.replicas", "spec.roles", "spec.storage"],
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): ["metadata.labels.strimzi.io/cluster"],
    ("elasticsearch.k8s.elastic.co/v1", "Elasticsearch"): ["spec.version", "spec.nodeSets"],
    ("ceph.rook.io/v1", "CephCluster"): [
        "spec.cephVersion.image",
        "spec.dataDirHostPath",
        "spec.mon.count",
    ],
    ("ceph.rook.io/v1", "CephObjectStore"): ["spec.metadataPool", "spec.dataPool", "spec.gateway"],
    ("psmdb.percona.com/v1", "PerconaServerMongoDB"): [
        "spec.crVersion",
        "spec.image",
        "spec.replsets",
    ],
}


class ManifestError(AssertionError):
    """A rendered object that a Kubernetes API server (or its operator) would reject."""


def _field(obj: dict[str, Any], dotted: str) -> Any:
    # Label keys contain dots and slashes: match the longest key at each level first.
    node: Any = obj
    rest = dotted
    while rest:
        if not isinstance(node, dict):
            return None
        key = next(
            (
                k
                for k in sorted(node, key=len, reverse=True)
                if rest == k or rest.startswith(k + ".")
            ),
            None,
        )
        if key is None:
            return None
        node = node[key]
        rest = rest[len(key) + 1 :]
    return node


def object_id(obj: dict[str, Any]) -> str:
    """`Kind/name` of an object, for messages."""
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def validate_object(obj: dict[str, Any]) -> None:
    """Raise ManifestError when `obj` would be rejected by the API server or its operator."""
    for key in ("apiVersion", "kind", "metadata"):
        if key not in obj:
            raise ManifestError(f"{object_id(obj)}: missing {key}")
    if not obj["metadata"].get("name"):
        raise ManifestError(f"{object_id(obj)}: missing metadata.name")
    required = CUSTOM_RESOURCE_REQUIRED_FIELDS.get((obj["apiVersion"], obj["kind"]))
    if required is not None:
        unknown = set(obj) - {"apiVersion", "kind", "metadata", "spec"}
        if unknown:
            raise ManifestError(f"{object_id(obj)}: unknown top-level fields {sorted(unknown)}")
        for path in required:
            if all(_field(obj, p) in (None, "", [], {}) for p in path.split("|")):
                raise ManifestError(f"{object_id(obj)}: required field {path} is missing")
        return
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise ManifestError(f"{object_id(obj)}: {path}: {exc.message}") from exc
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise ManifestError(
            f"{object_id(obj)}: {exc.message}; add it to CUSTOM_RESOURCE_REQUIRED_FIELDS "
            "if it is a custom resource"
        ) from exc


def parse_manifests(texts: Iterable[str]) -> list[dict[str, Any]]:
    """Every non-empty YAML document in `texts`, in order."""
    objects: list[dict[str, Any]] = []
    for text in texts:
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def render_chart(
    values: dict[str, Any] | None = None,
    *,
    chart: Path | str = CHART_DIR,
    name: str = RELEASE_NAME,
    namespace: str = NAMESPACE,
    validate: bool = True,
) -> list[dict[str, Any]]:
    """Render the chart (a directory or .tgz) with `values`; return the validated objects.

    Raises helm_python.HelmValuesError when the values break values.schema.json and
    helm_python.HelmRenderError when a template fails (e.g. a `fail` guard).
    """
    with helm.Chart.load(chart) as loaded:
        manifests = loaded.render(values or {}, name=name, namespace=namespace)
    objects = parse_manifests(
        text for path, text in sorted(manifests.items()) if not path.endswith("NOTES.txt")
    )
    if validate:
        for obj in objects:
            validate_object(obj)
    return objects


def values_file(name: str) -> dict[str, Any]:
    """A values file from the chart's ci/ folder, e.g. values_file("production")."""
    loaded = yaml.safe_load((CI_VALUES_DIR / f"{name}-values.yaml").read_text()) or {}
    assert isinstance(loaded, dict)
    return loaded


def find(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> list[dict]:
    """Objects of `kind`, optionally only those labelled with app.kubernetes.io/component."""
    return [
        o
        for o in objects
        if o["kind"] == kind
        and (
            component is None
            or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        )
    ]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod spec inside a Deployment, StatefulSet, Job or CronJob."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "CronJob")


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every object that runs pods directly."""
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


def write_manifests(objects: list[dict[str, Any]], directory: Path, stem: str) -> Path:
    """Write `objects` as one multi-document YAML file; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{stem}.yaml"
    target.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return target


def checkov_executable() -> str:
    """$FRAUDWATCH_CHECKOV, else checkov from this interpreter's environment, else PATH.

    checkov pins many dependencies; the variable lets CI keep it in a virtualenv of its own.
    """
    configured = os.environ.get("FRAUDWATCH_CHECKOV")
    if configured:
        return configured
    beside = Path(sys.executable).with_name("checkov")
    if beside.exists():
        return str(beside)
    found = shutil.which("checkov")
    if not found:
        raise RuntimeError("checkov is not installed: pip install checkov")
    return found


@dataclass(frozen=True)
class CheckovScan:
    """What one checkov run reported: the failed checks, and how many checks passed on how
    many resources (both 0 when checkov found nothing to scan)."""

    failed: list[dict[str, Any]]
    passed: int
    resources: int


def run_checkov(
    target: Path, framework: str, skip_checks: dict[str, str] | None = None
) -> CheckovScan:
    """Run checkov offline on `target` (a directory or file).

    `skip_checks` maps a check id to the reason it does not apply; the reason is required so
    every skip is justified where it is declared.
    """
    command = [
        checkov_executable(),
        "--skip-download",
        "--quiet",
        "--compact",
        "--output",
        "json",
        "--framework",
        framework,
        "--directory" if target.is_dir() else "--file",
        str(target),
    ]
    if skip_checks:
        assert all(reason.strip() for reason in skip_checks.values()), "justify every skip"
        command += ["--skip-check", ",".join(sorted(skip_checks))]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode not in (0, 1) or not completed.stdout.strip():
        raise RuntimeError(f"checkov did not run: {completed.stderr[-2000:]}")
    report = json.loads(completed.stdout)
    reports = report if isinstance(report, list) else [report]
    failed: list[dict[str, Any]] = []
    passed = resources = 0
    for entry in reports:
        failed.extend(entry.get("results", {}).get("failed_checks", []))
        # A run that found nothing to scan prints the bare summary, without "results".
        summary = entry.get("summary", entry)
        passed += summary.get("passed", 0)
        resources += summary.get("resource_count", 0)
    return CheckovScan(failed, passed, resources)
