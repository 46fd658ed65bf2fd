"""Every object under infra/gitops uses an API version that the operators' real CRDs serve,
undeprecated, at the pinned release and at the newest release in the Kubernetes test kit (Flux
2.9 no longer serves source.toolkit.fluxcd.io/v1beta2, so a v1beta2 source breaks the
environment on a current Flux)."""

from __future__ import annotations

import sys

import pytest
from gitops_render import GITOPS_DIR, REPO_ROOT, kustomize_build, kustomize_dirs

sys.path.insert(0, str(REPO_ROOT / "tests" / "infra"))

from k8s_kit import api_version_problems, load_yaml_documents, served_versions

FILES = sorted(p for p in GITOPS_DIR.rglob("*.y*ml"))


def test_the_kit_has_the_pinned_and_the_newest_flux_and_argo_cd() -> None:
    releases = {r.release for rs in served_versions().values() for r in rs}
    assert any(r.startswith("flux-") and r.endswith("-latest") for r in releases)
    assert any(r.startswith("flux-") and not r.endswith("-latest") for r in releases)
    assert any(r.startswith("argo-cd-") and r.endswith("-latest") for r in releases)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(GITOPS_DIR)))
def test_every_file_uses_served_api_versions(path) -> None:
    problems = [
        problem
        for doc in load_yaml_documents(path)
        if "apiVersion" in doc
        for problem in api_version_problems(doc, str(path.relative_to(REPO_ROOT)))
    ]
    assert problems == []


@pytest.mark.parametrize(
    "directory", kustomize_dirs(), ids=lambda p: str(p.relative_to(GITOPS_DIR))
)
def test_every_rendered_object_uses_served_api_versions(directory) -> None:
    where = str(directory.relative_to(REPO_ROOT))
    problems = [p for obj in kustomize_build(directory) for p in api_version_problems(obj, where)]
    assert problems == []


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [
        ("source.toolkit.fluxcd.io/v1beta2", "OCIRepository", "not served by flux-v2.9.4"),
        ("kustomize.toolkit.fluxcd.io/v1beta2", "Kustomization", "deprecated in flux-v2.6.4"),
        ("helm.toolkit.fluxcd.io/v2beta2", "HelmRelease", "not served by flux-v2.9.4"),
        ("argoproj.io/v1beta1", "Application", "not served by argo-cd-v3.1.0"),
        ("example.com/v1", "Widget", "no CRD in the kit defines Widget.example.com"),
    ],
)
def test_the_check_refuses_unserved_deprecated_and_unknown_versions(
    api_version, kind, expected
) -> None:
    problems = api_version_problems({"apiVersion": api_version, "kind": kind}, "sample")
    assert any(expected in p for p in problems), problems


def test_the_check_accepts_served_versions() -> None:
    for api_version, kind in [
        ("source.toolkit.fluxcd.io/v1", "OCIRepository"),
        ("argoproj.io/v1alpha1", "Application"),
        ("apps/v1", "Deployment"),
    ]:
        assert api_version_problems({"apiVersion": api_version, "kind": kind}, "sample") == []
