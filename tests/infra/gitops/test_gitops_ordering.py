"""Operators first, then the platform custom resources, then the fraudwatch chart: sync waves
in Argo CD, dependsOn in Flux, and every path they point at exists in this repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from gitops_render import ENVIRONMENTS, GITOPS_DIR, REPO_ROOT, kustomize_build, validate_object

# prod follows the release tag of the chart version in the repository (bumped together).
RELEASE_TAG = (
    "v" + yaml.safe_load((REPO_ROOT / "charts/fraudwatch/Chart.yaml").read_text())["version"]
)

REPO_URL = "https://github.com/fraudwatch/fraudwatch.git"
OPERATORS = {
    "strimzi",
    "eck",
    "rook-ceph",
    "psmdb-operator",
    "spark-operator",
    "kube-prometheus-stack",
}


def _wave(obj) -> int:
    return int(obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


def _argo(env):
    objects = kustomize_build(GITOPS_DIR / "argocd" / "overlays" / env)
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "Application"}, objects


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_argocd_waves_put_operators_before_platform_before_fraudwatch(env) -> None:
    apps, objects = _argo(env)
    assert set(apps) == OPERATORS | {"fraudwatch-platform", "fraudwatch"}
    (project,) = [o for o in objects if o["kind"] == "AppProject"]
    operator_waves = {_wave(apps[name]) for name in OPERATORS}
    assert _wave(project) < min(operator_waves)
    assert max(operator_waves) < _wave(apps["fraudwatch-platform"]) < _wave(apps["fraudwatch"])
    assert all(app["spec"]["project"] == "fraudwatch" for app in apps.values())
    assert all(app["metadata"]["namespace"] == "argocd" for app in apps.values())


def _git_sources(app):
    sources = app["spec"].get("sources") or [app["spec"]["source"]]
    return [s for s in sources if s["repoURL"] == REPO_URL]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_argocd_git_paths_exist_and_point_at_the_environment(env) -> None:
    apps, _ = _argo(env)
    assert apps["fraudwatch-platform"]["spec"]["source"]["path"] == (
        f"infra/gitops/platform/overlays/{env}"
    )
    for app in apps.values():
        for source in _git_sources(app):
            if "path" in source:
                assert (REPO_ROOT / source["path"]).is_dir(), source["path"]
            for values_file in source.get("helm", {}).get("valueFiles", []):
                resolved = (REPO_ROOT / source["path"] / values_file).resolve()
                assert resolved == (GITOPS_DIR / "values" / env / "values.yaml").resolve()


def test_prod_pins_exact_versions_and_dev_follows_main() -> None:
    semver = re.compile(r"^v?\d+\.\d+\.\d+$")
    prod, _ = _argo("prod")
    for app in prod.values():
        for source in app["spec"].get("sources") or [app["spec"]["source"]]:
            assert semver.match(str(source["targetRevision"])), (app["metadata"]["name"], source)
    # The packaged chart (dashboards inside) comes from the registry, values from the tag.
    chart_source, values_source = prod["fraudwatch"]["spec"]["sources"]
    assert chart_source["chart"] == "fraudwatch"
    assert chart_source["helm"]["valueFiles"] == ["$values/infra/gitops/values/prod/values.yaml"]
    assert values_source["ref"] == "values"
    # Nobody's merge lands in production unreviewed: the workloads need a manual sync.
    assert "automated" not in prod["fraudwatch"]["spec"]["syncPolicy"]
    dev, _ = _argo("dev")
    assert dev["fraudwatch"]["spec"]["source"]["targetRevision"] == "main"
    assert dev["fraudwatch"]["spec"]["syncPolicy"]["automated"]["selfHeal"] is True


def test_data_stores_are_never_pruned_automatically() -> None:
    for env in ENVIRONMENTS:
        apps, _ = _argo(env)
        assert apps["fraudwatch-platform"]["spec"]["syncPolicy"]["automated"]["prune"] is False
        flux = _flux(env)
        assert flux["fraudwatch-platform"]["spec"]["prune"] is False


def _flux(env):
    objects = kustomize_build(GITOPS_DIR / "flux" / "overlays" / env)
    return {
        o["metadata"]["name"]: o for o in objects if o["kind"] in ("Kustomization", "GitRepository")
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_flux_depends_on_chain_and_paths(env) -> None:
    flux = _flux(env)
    depends = {
        name: [d["name"] for d in obj["spec"].get("dependsOn", [])]
        for name, obj in flux.items()
        if obj["kind"] == "Kustomization"
    }
    assert depends == {
        "fraudwatch-operators": [],
        "fraudwatch-platform": ["fraudwatch-operators"],
        "fraudwatch-apps": ["fraudwatch-platform"],
    }
    assert all(flux[name]["spec"]["wait"] is True for name in depends)
    assert flux["fraudwatch-platform"]["spec"]["path"] == f"./infra/gitops/platform/overlays/{env}"
    assert flux["fraudwatch-apps"]["spec"]["path"] == f"./infra/gitops/flux/apps/{env}"
    for name in depends:
        assert (REPO_ROOT / flux[name]["spec"]["path"]).is_dir()
    ref = flux["fraudwatch"]["spec"]["ref"]
    assert ref == ({"branch": "main"} if env == "dev" else {"tag": RELEASE_TAG})


def test_argocd_and_flux_install_the_same_operator_versions() -> None:
    apps, _ = _argo("dev")
    argo = {name: apps[name]["spec"]["source"]["targetRevision"] for name in OPERATORS}
    releases = kustomize_build(GITOPS_DIR / "flux" / "operators")
    flux = {
        o["metadata"]["name"]: o["spec"]["chart"]["spec"]["version"]
        for o in releases
        if o["kind"] == "HelmRelease"
    }
    assert argo == flux


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_bootstrap_application_syncs_the_environment_overlay(env) -> None:
    bootstrap = yaml.safe_load((GITOPS_DIR / "argocd" / "bootstrap" / f"{env}.yaml").read_text())
    validate_object(bootstrap)
    source = bootstrap["spec"]["source"]
    assert source["path"] == f"infra/gitops/argocd/overlays/{env}"
    assert Path(REPO_ROOT / source["path"]).is_dir()
    assert source["targetRevision"] == ("main" if env == "dev" else RELEASE_TAG)
