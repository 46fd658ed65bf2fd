"""Platform policies, checked on every resource the program declares.

They run in the unit tests against the mocked program (CrossGuard's runner needs the Pulumi
CLI); each takes a resource as a plain manifest (`kind`, `metadata`, ...) or, for a Helm
release, its `values`, and returns the violations as sentences naming the resource.

They live with the tests because only the tests run them: the program itself never did. What
the API server must refuse at run time is enforced by infra/fraudwatch_infra/admission.py
(ValidatingAdmissionPolicies: non-root, limits, no plaintext secret, default-deny) in the
namespaces of fraudwatch's own pods. These checks look at what this repository declares before
anything is applied, and at more than the server can see: every namespace, custom resources,
Helm values and chart versions (pinned images and charts, no hostPath, no public LoadBalancer
without its flag).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

PUBLIC_LOAD_BALANCER_FLAG = "fraudwatch.io/allow-public-load-balancer"
_EXACT_CHART_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+$")
_POD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")


def _label(manifest: dict[str, Any]) -> str:
    meta = manifest.get("metadata", {})
    return f"{manifest.get('kind', 'Release')} {meta.get('namespace', '-')}/{meta.get('name', '?')}"


def pod_specs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod specs of a core workload manifest."""
    kind = manifest.get("kind")
    spec = manifest.get("spec", {})
    if kind == "Pod":
        return [spec]
    if kind == "CronJob":
        return [spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})]
    if kind in _POD_KINDS:
        return [spec.get("template", {}).get("spec", {})]
    return []


def image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    return ":" in name and not name.endswith(":latest")


def pinned_images(manifest: dict[str, Any]) -> list[str]:
    """Every `image` anywhere in the object has an explicit, non-latest tag or a digest."""
    return [
        f"{_label(manifest)}: {path} = {value!r} is not pinned to a tag or digest"
        for path, value in _walk(manifest)
        if path.endswith("image") and isinstance(value, str) and not image_is_pinned(value)
    ]


def resource_limits(manifest: dict[str, Any]) -> list[str]:
    """Every container of a workload sets CPU and memory requests and limits."""
    problems = []
    for spec in pod_specs(manifest):
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            res = container.get("resources", {})
            for part in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(res.get(part, {}))
                if missing:
                    problems.append(
                        f"{_label(manifest)}: container {container.get('name')} has no "
                        f"{part} for {', '.join(sorted(missing))}"
                    )
    return problems


def non_root(manifest: dict[str, Any]) -> list[str]:
    """Every container runs as non-root without privilege escalation."""
    problems = []
    for spec in pod_specs(manifest):
        pod_non_root = spec.get("securityContext", {}).get("runAsNonRoot") is True
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            ctx = container.get("securityContext", {})
            if ctx.get("runAsNonRoot", pod_non_root) is not True:
                problems.append(
                    f"{_label(manifest)}: container {container.get('name')} may run as root"
                )
            if ctx.get("runAsUser") == 0 or spec.get("securityContext", {}).get("runAsUser") == 0:
                problems.append(
                    f"{_label(manifest)}: container {container.get('name')} runs as UID 0"
                )
            if ctx.get("privileged") or ctx.get("allowPrivilegeEscalation", True) is not False:
                problems.append(
                    f"{_label(manifest)}: container {container.get('name')} may escalate privileges"
                )
    return problems


def no_host_path(manifest: dict[str, Any]) -> list[str]:
    """No volume mounts a path of the node."""
    return [
        f"{_label(manifest)}: {path} mounts a node path"
        for path, value in _walk(manifest)
        if path.endswith("hostPath") and value
    ]


def no_public_load_balancer(manifest: dict[str, Any]) -> list[str]:
    """A LoadBalancer Service (or a CR/values asking for one) needs the explicit flag."""
    annotations = manifest.get("metadata", {}).get("annotations", {}) or {}
    if annotations.get(PUBLIC_LOAD_BALANCER_FLAG) == "true":
        return []
    return [
        f"{_label(manifest)}: {path} asks for a LoadBalancer without "
        f"the {PUBLIC_LOAD_BALANCER_FLAG} annotation"
        for path, value in _walk(manifest)
        if path.endswith("type") and value == "LoadBalancer"
    ]


def release_is_pinned(release: dict[str, Any]) -> list[str]:
    """A Helm release names an exact chart version (or a chart inside this repository)."""
    chart = str(release.get("chart", ""))
    if chart.startswith(("../", "./")):
        return []
    version = str(release.get("version", ""))
    if not _EXACT_CHART_VERSION.match(version):
        return [f"Release {release.get('name')}: chart {chart} version {version!r} is not exact"]
    return []


def release_values_limits(release: dict[str, Any]) -> list[str]:
    """Every `resources` block in a release's values has requests and limits."""
    problems = []
    blocks = [
        (path, value)
        for path, value in _walk(release.get("values", {}))
        if path.split(".")[-1] == "resources" and isinstance(value, dict)
    ]
    if not blocks:
        problems.append(f"Release {release.get('name')}: values set no resources at all")
    for path, value in blocks:
        for part in ("requests", "limits"):
            if {"cpu", "memory"} - set(value.get(part, {})):
                problems.append(f"Release {release.get('name')}: {path}.{part} lacks cpu or memory")
    return problems


def release_values_non_root(release: dict[str, Any]) -> list[str]:
    """Security contexts in a release's values never allow root, and at least one is set."""
    contexts = [
        (path, value)
        for path, value in _walk(release.get("values", {}))
        if isinstance(value, dict) and "runAsNonRoot" in value
    ]
    if not contexts:
        return [f"Release {release.get('name')}: values set no runAsNonRoot security context"]
    return [
        f"Release {release.get('name')}: {path}.runAsNonRoot is not true"
        for path, value in contexts
        if value["runAsNonRoot"] is not True
    ]


MANIFEST_POLICIES = (
    pinned_images,
    resource_limits,
    non_root,
    no_host_path,
    no_public_load_balancer,
)
RELEASE_POLICIES = (
    release_is_pinned,
    release_values_limits,
    release_values_non_root,
    pinned_images,
    no_host_path,
    no_public_load_balancer,
)


def violations(manifests: list[dict[str, Any]], releases: list[dict[str, Any]]) -> list[str]:
    """All violations over core/custom manifests and Helm releases."""
    found = [v for m in manifests for policy in MANIFEST_POLICIES for v in policy(m)]
    found += [v for r in releases for policy in RELEASE_POLICIES for v in policy(r)]
    return found
