"""Everything Argo CD and Flux would apply, applied server-side (dry run, strict field
validation) to a real kube-apiserver holding the operators' real CRDs: first at the pinned
releases, then with the newest Flux and Argo CD CRDs of the kit (forward compatibility: Flux
2.9 serves no v1beta2 source)."""

from __future__ import annotations

import copy
import sys

import pytest
import yaml
from conftest import REPO_ROOT, crd_release_folders, install_crds
from kube_api import ApiError, KubeApi

sys.path.insert(0, str(REPO_ROOT / "tests" / "infra" / "gitops"))

from gitops_render import ENVIRONMENTS, GITOPS_DIR, kustomize_build

# What the two tools apply, per environment: Argo CD's bootstrap Application syncs
# argocd/overlays/<env> (operators, platform, chart); Flux's overlay applies the operators,
# platform/overlays/<env> and flux/apps/<env>.
ENTRY_POINTS = [
    *(f"{tool}/overlays/{env}" for tool in ("argocd", "flux", "platform") for env in ENVIRONMENTS),
    *(f"flux/apps/{env}" for env in ENVIRONMENTS),
    "flux/operators",
]


def gitops_objects() -> list[tuple[str, dict]]:
    found = [(entry, obj) for entry in ENTRY_POINTS for obj in kustomize_build(GITOPS_DIR / entry)]
    for env in ENVIRONMENTS:
        path = GITOPS_DIR / "argocd" / "bootstrap" / f"{env}.yaml"
        found += [(f"argocd/bootstrap/{env}.yaml", o) for o in yaml.safe_load_all(path.read_text())]
    return copy.deepcopy(found)  # the renderer caches its objects: tests edit copies


def _label(where: str, obj: dict) -> str:
    return (
        f"{where}: {obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
    )


def apply_all_dry_run(api: KubeApi) -> tuple[int, list[str]]:
    """Namespaces for real (the objects live in them), everything else as a server-side dry
    run; returns how many were accepted and the refusals with the server's reasons."""
    objects = gitops_objects()
    for _, obj in objects:
        if obj["kind"] == "Namespace":
            api.apply(obj)
    for namespace in {o["metadata"].get("namespace") for _, o in objects} - {None}:
        api.ensure_namespace(namespace)
    accepted, refused = 0, []
    for where, obj in objects:
        if obj["kind"] == "Namespace":
            continue
        try:
            api.apply(obj, dry_run=True)
            accepted += 1
        except (ApiError, ValueError) as error:
            refused.append(f"{_label(where, obj)}: {error}")
    return accepted, refused


def test_every_gitops_object_is_accepted_against_the_pinned_crds(api: KubeApi) -> None:
    accepted, refused = apply_all_dry_run(api)
    assert refused == []
    kinds = {o["kind"] for _, o in gitops_objects()}
    assert {"Application", "HelmRelease", "OCIRepository", "Kafka", "CephCluster"} <= kinds
    assert accepted > 50


def test_a_custom_resource_with_an_unknown_field_is_refused(api: KubeApi) -> None:
    (kafka,) = [o for w, o in gitops_objects() if o["kind"] == "Kafka" and w.endswith("prod")][:1]
    kafka["spec"]["kafka"]["replicaz"] = 3
    with pytest.raises(ApiError) as refused:
        api.apply(kafka, dry_run=True)
    assert "replicaz" in refused.value.message


def test_every_gitops_object_is_accepted_against_the_newest_flux_and_argo_cd(api: KubeApi) -> None:
    newest = crd_release_folders(newest=True)
    assert {f.name.split("-v")[0] for f in newest} >= {"flux", "argo-cd"}
    install_crds(api, newest)
    accepted, refused = apply_all_dry_run(api)
    assert refused == []
    assert accepted > 50
    # The defect this guards against: the newest Flux no longer serves v1beta2 sources.
    old_source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1beta2",
        "kind": "OCIRepository",
        "metadata": {"name": "old", "namespace": "flux-system"},
        "spec": {"interval": "10m", "url": "oci://example.invalid/chart"},
    }
    with pytest.raises(ApiError) as refused_old:
        api.apply(old_source, dry_run=True)
    assert refused_old.value.status == 404
