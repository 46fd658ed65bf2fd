"""The Kubernetes test kit beside the repository: the operators' real CRDs (pinned and newest
releases), their Helm charts and the control-plane binaries.

Found at $FRAUDWATCH_K8S_KIT, else at ../shared/k8s from the repository root (the way the
other tiers find ../shared/data). A missing kit is an error that says where it was looked for,
never a silent skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KIT_VARIABLE = "FRAUDWATCH_K8S_KIT"

# API groups the Kubernetes API server serves itself (no CRD defines them).
BUILT_IN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "node.k8s.io",
        "discovery.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "certificates.k8s.io",
    }
)
# Files that tools read and no API server ever sees.
CLIENT_SIDE_GROUPS = frozenset({"kustomize.config.k8s.io"})


class KitMissingError(RuntimeError):
    """The test kit is not where it was looked for."""


def kit_dir() -> Path:
    """The kit's root folder (crds/, charts/, bin/)."""
    configured = os.environ.get(KIT_VARIABLE)
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "k8s"
    if not (path / "crds").is_dir():
        raise KitMissingError(
            f"the Kubernetes test kit is not at {path} (no crds/ folder): set {KIT_VARIABLE} "
            "to the folder holding crds/, charts/ and bin/ (the shared k8s kit)"
        )
    return path


class _CrdLoader(yaml.SafeLoader):
    """Some CRDs (prometheus-operator's) carry the YAML `=` value tag in their enums."""


_CrdLoader.add_constructor(
    "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
)


def load_yaml_documents(path: Path) -> Iterator[dict[str, Any]]:
    for doc in yaml.load_all(path.read_text(), Loader=_CrdLoader):
        if isinstance(doc, dict):
            yield doc


@dataclass(frozen=True)
class CrdVersions:
    """What one release's CRD serves for one group and kind."""

    release: str  # the kit's folder, e.g. flux-v2.9.4-latest
    served: frozenset[str]
    deprecated: frozenset[str]


def crd_folders() -> list[Path]:
    return sorted(p for p in (kit_dir() / "crds").iterdir() if p.is_dir())


def crd_documents(folder: Path) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in one release's folder."""
    return [
        doc
        for path in sorted(folder.glob("*.y*ml"))
        for doc in load_yaml_documents(path)
        if doc.get("kind") == "CustomResourceDefinition"
    ]


@cache
def served_versions() -> dict[tuple[str, str], tuple[CrdVersions, ...]]:
    """(group, kind) -> what each release in the kit that defines it serves."""
    table: dict[tuple[str, str], list[CrdVersions]] = {}
    for folder in crd_folders():
        for crd in crd_documents(folder):
            spec = crd["spec"]
            versions = spec["versions"]
            table.setdefault((spec["group"], spec["names"]["kind"]), []).append(
                CrdVersions(
                    release=folder.name,
                    served=frozenset(v["name"] for v in versions if v.get("served")),
                    deprecated=frozenset(v["name"] for v in versions if v.get("deprecated")),
                )
            )
    return {key: tuple(value) for key, value in table.items()}


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def api_version_problems(obj: dict[str, Any], where: str) -> list[str]:
    """Why the API server of a cluster running the kit's pinned or newest operators would not
    serve `obj`'s apiVersion (empty when every release serves it, undeprecated)."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    group, version = split_api_version(api_version)
    if group in BUILT_IN_GROUPS or group in CLIENT_SIDE_GROUPS:
        return []
    releases = served_versions().get((group, kind))
    if not releases:
        return [f"{where}: {kind} {api_version}: no CRD in the kit defines {kind}.{group}"]
    problems = []
    for release in releases:
        if version not in release.served:
            problems.append(
                f"{where}: {kind} {api_version} is not served by {release.release} "
                f"(served: {', '.join(sorted(release.served))})"
            )
        elif version in release.deprecated:
            problems.append(f"{where}: {kind} {api_version} is deprecated in {release.release}")
    return problems
