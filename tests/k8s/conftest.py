"""The k8s tier: one real control plane (etcd + kube-apiserver, tests/servers/kubernetes.py) per
session on 127.0.0.1, with the operators' CRDs at the pinned versions from the shared
Kubernetes kit installed and Established before any test runs. A missing kit, binary or etcd
fails the session with a message saying what to install; nothing is skipped."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
for path in (REPO_ROOT, REPO_ROOT / "tests" / "infra", REPO_ROOT / "tests" / "k8s"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from k8s_kit import crd_documents, crd_folders  # noqa: E402
from kube_api import KubeApi  # noqa: E402

from tests.servers import kubernetes  # noqa: E402

_TEMPLATE = re.compile(r"\{\{")


def plain_crd(crd: dict[str, Any]) -> dict[str, Any]:
    """A CRD as an API server accepts it: cert-manager's files carry Helm template text in
    their labels (dropped); everything else, annotations included, is kept."""
    metadata = dict(crd["metadata"])
    labels = {
        k: v
        for k, v in (metadata.get("labels") or {}).items()
        if isinstance(v, str) and not _TEMPLATE.search(v)
    }
    metadata["labels"] = labels
    if not labels:
        metadata.pop("labels")
    metadata.pop("creationTimestamp", None)
    out = {k: v for k, v in crd.items() if k != "status"}
    out["metadata"] = metadata
    return out


def crd_release_folders(*, newest: bool) -> list[Path]:
    """Pinned release folders, or (newest=True) the `-latest` ones."""
    return [f for f in crd_folders() if f.name.endswith("-latest") == newest]


def install_crds(api: KubeApi, folders: list[Path]) -> list[str]:
    """Apply every CRD of `folders` for real and wait until all are Established."""
    names = []
    for folder in folders:
        for crd in crd_documents(folder):
            api.apply(plain_crd(crd))
            names.append(crd["metadata"]["name"])

    def established() -> bool:
        for name in names:
            crd = api.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
            conditions = {
                c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])
            }
            if conditions.get("Established") != "True":
                return False
        return True

    api.wait_for(established, what=f"{len(names)} CRDs Established", timeout=240)
    api.forget_discovery()
    return names


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubernetes.ControlPlane]:
    state_dir = tmp_path_factory.mktemp("k8s-control-plane")
    plane = kubernetes.start(state_dir)
    try:
        yield plane
    finally:
        kubernetes.stop(state_dir)


@pytest.fixture(scope="session")
def api(control_plane: kubernetes.ControlPlane) -> KubeApi:
    client = KubeApi(control_plane.url, control_plane.token, control_plane.ssl_context())
    install_crds(client, crd_release_folders(newest=False))
    return client
