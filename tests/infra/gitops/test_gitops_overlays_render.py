"""Every Kustomize directory under infra/gitops renders, and every object in it validates
(kubernetes-validate --strict for built-in kinds; Argo CD, Flux and operator custom resources
against their documented required fields)."""

from __future__ import annotations

from collections import Counter

import pytest
from gitops_render import ENVIRONMENTS, GITOPS_DIR, kustomize_build, kustomize_dirs, validate_object


@pytest.mark.parametrize(
    "directory", kustomize_dirs(), ids=lambda p: str(p.relative_to(GITOPS_DIR))
)
def test_directory_renders_and_every_object_validates(directory) -> None:
    objects = kustomize_build(directory)
    assert objects, f"{directory} renders nothing"
    for obj in objects:
        validate_object(obj)
    names = Counter(
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects
    )
    assert not [key for key, count in names.items() if count > 1], "duplicate objects"


@pytest.mark.parametrize("tool", ["argocd", "flux", "platform"])
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_has_an_overlay_labelled_with_its_name(tool, env) -> None:
    objects = kustomize_build(GITOPS_DIR / tool / "overlays" / env)
    assert all(o["metadata"]["labels"]["fraudwatch.io/environment"] == env for o in objects)
