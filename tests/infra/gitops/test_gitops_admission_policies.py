"""The project's policies as ValidatingAdmissionPolicies: shipped by the GitOps path (the
generated infra/gitops/platform/base/admission-policies.yaml, current with admission.py) and by
the Pulumi program, the same objects both ways, bound where fraudwatch's own pods run. That the
API server really refuses a violating object is tested on a real one in tests/k8s."""

from __future__ import annotations

import subprocess
import sys

import pytest
from gitops_render import ENVIRONMENTS, GITOPS_DIR, REPO_ROOT, kustomize_build

sys.path.insert(0, str(REPO_ROOT / "infra"))
sys.path.insert(0, str(REPO_ROOT / "tests" / "infra" / "pulumi"))

from fraudwatch_infra.admission import admission_policies

RENDER = REPO_ROOT / "infra" / "render_gitops_policies.py"
POLICY_NAMES = {p["metadata"]["name"] for p in admission_policies()}


def test_generated_file_is_current() -> None:
    completed = subprocess.run(
        [sys.executable, str(RENDER), "--check"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


def test_the_staleness_check_can_fail(tmp_path, monkeypatch) -> None:
    sys.path.insert(0, str(RENDER.parent))
    import render_gitops_policies as renderer

    stale = tmp_path / "admission-policies.yaml"
    stale.write_text(renderer.render().replace("Deny", "Warn"))
    monkeypatch.setattr(renderer, "TARGET", stale)
    assert renderer.main(["--check"]) == 1
    assert renderer.main([]) == 0 and renderer.main(["--check"]) == 0


def test_every_policy_validates_with_a_message() -> None:
    for policy in admission_policies():
        spec = policy["spec"]
        assert spec["failurePolicy"] == "Fail"
        assert spec["validations"]
        assert all(v["message"] and v["expression"] for v in spec["validations"])


def _chart_namespaces(env: str) -> set[str]:
    argo = kustomize_build(GITOPS_DIR / "argocd" / "overlays" / env)
    (app,) = [
        o for o in argo if o["kind"] == "Application" and o["metadata"]["name"] == "fraudwatch"
    ]
    flux = kustomize_build(GITOPS_DIR / "flux" / "apps" / env)
    (release,) = [o for o in flux if o["kind"] == "HelmRelease"]
    return {app["spec"]["destination"]["namespace"], release["spec"]["targetNamespace"]}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_gitops_platform_binds_every_policy_where_the_chart_is_installed(env) -> None:
    platform = kustomize_build(GITOPS_DIR / "platform" / "overlays" / env)
    policies = {o["metadata"]["name"] for o in platform if o["kind"] == "ValidatingAdmissionPolicy"}
    assert policies == POLICY_NAMES
    bindings = [o for o in platform if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert {b["spec"]["policyName"] for b in bindings} == POLICY_NAMES
    for binding in bindings:
        assert binding["spec"]["validationActions"] == ["Deny"]
        (selector,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
        assert selector["key"] == "kubernetes.io/metadata.name"
        assert set(selector["values"]) == _chart_namespaces(env)
    for namespace in _chart_namespaces(env):
        (ns,) = [
            o for o in platform if o["kind"] == "Namespace" and o["metadata"]["name"] == namespace
        ]
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        (deny,) = [
            o
            for o in platform
            if o["kind"] == "NetworkPolicy" and o["metadata"].get("namespace") == namespace
        ]
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_argocd_project_may_apply_every_cluster_scoped_kind_of_the_platform() -> None:
    (project,) = [
        o
        for o in kustomize_build(GITOPS_DIR / "argocd" / "overlays" / "dev")
        if o["kind"] == "AppProject"
    ]
    allowed = {(w["group"], w["kind"]) for w in project["spec"]["clusterResourceWhitelist"]}
    platform = kustomize_build(GITOPS_DIR / "platform" / "overlays" / "dev")
    cluster_scoped = {
        (o["apiVersion"].rpartition("/")[0], o["kind"])
        for o in platform
        if "namespace" not in o["metadata"]
    }
    assert cluster_scoped - allowed == set()


def test_pulumi_program_ships_the_same_policies_bound_to_its_own_namespaces() -> None:
    from platform_render import render

    for stack in ENVIRONMENTS:
        rendering = render(stack, dashboards_dir=REPO_ROOT / "tests/infra/pulumi/sample_dashboards")
        registered = {
            r.inputs["metadata"]["name"]: r.inputs["spec"]
            for r in rendering.of_kind("ValidatingAdmissionPolicy")
        }
        assert registered == {p["metadata"]["name"]: p["spec"] for p in admission_policies()}
        bindings = rendering.of_kind("ValidatingAdmissionPolicyBinding")
        assert {b.inputs["spec"]["policyName"] for b in bindings} == POLICY_NAMES
        bound = {
            value
            for b in bindings
            for e in b.inputs["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
            for value in e["values"]
        }
        namespaces = rendering.outputs["namespaces"]
        expected = {namespaces["workloads"]} | ({namespaces["bi"]} if "bi" in namespaces else set())
        assert bound == expected
