"""The API server refuses what breaks the project's policies: the ValidatingAdmissionPolicies the
GitOps path ships (infra/gitops/platform/base/admission-policies.yaml, generated from
infra/fraudwatch_infra/admission.py) applied to a real kube-apiserver, then objects that break
each rule sent to the bound namespace."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from conftest import REPO_ROOT
from kube_api import ApiError, KubeApi

POLICY_FILE = REPO_ROOT / "infra/gitops/platform/base/admission-policies.yaml"
BOUND = "fraudwatch"
UNBOUND = "policy-free"


def _container(**overrides: Any) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "ghcr.io/fraudwatch/fraudwatch:0.1.0",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "100m", "memory": "128Mi"},
        },
        "env": [
            {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": "/var/run/secrets/s3/credentials"},
            {
                "name": "FRAUDWATCH_KAFKA_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "kafka", "key": "password"}},
            },
        ],
    }
    container.update(overrides)
    return container


def deployment(name: str, namespace: str = BOUND) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [_container()]},
            },
        },
    }


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def _first(obj: dict[str, Any]) -> dict[str, Any]:
    return _spec(obj)["containers"][0]


def cronjob(name: str) -> dict[str, Any]:
    template = deployment(name)["spec"]["template"]
    template["spec"]["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": BOUND},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
    }


def network_policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": BOUND},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def policies(api: KubeApi) -> KubeApi:
    """The shipped policies in force (a violating object is refused) in namespace fraudwatch."""
    for obj in yaml.safe_load_all(POLICY_FILE.read_text()):
        api.apply(obj)
    api.ensure_namespace(UNBOUND)
    probe = deployment("probe")
    _first(probe)["securityContext"]["runAsNonRoot"] = False

    def refused() -> bool:
        try:
            api.create(probe, dry_run=True)
        except ApiError as error:
            return error.status == 403 and "fraudwatch-non-root" in error.message
        return False

    api.wait_for(refused, what="the admission policies taking effect", timeout=60)
    return api


def test_a_compliant_deployment_and_cronjob_are_admitted(policies: KubeApi) -> None:
    # Also proves every expression compiles: with failurePolicy Fail, a broken expression
    # would refuse everything.
    created = policies.create(deployment("compliant"))
    assert created["metadata"]["uid"]
    assert policies.create(cronjob("compliant-nightly"))["metadata"]["uid"]


def _no_non_root(d: dict) -> None:
    del _first(d)["securityContext"]["runAsNonRoot"]


def _pod_runs_as_root(d: dict) -> None:
    _spec(d)["securityContext"] = {"runAsUser": 0}


def _escalates(d: dict) -> None:
    _first(d)["securityContext"]["allowPrivilegeEscalation"] = True


def _privileged(d: dict) -> None:
    # The API server itself refuses privileged with allowPrivilegeEscalation false.
    _first(d)["securityContext"].update(privileged=True, allowPrivilegeEscalation=True)


def _no_limits(d: dict) -> None:
    del _first(d)["resources"]["limits"]


def _no_memory_request(d: dict) -> None:
    del _first(d)["resources"]["requests"]["memory"]


def _init_container_without_limits(d: dict) -> None:
    init = _container(name="init")
    del init["resources"]
    _spec(d)["initContainers"] = [init]


def _plaintext_password(d: dict) -> None:
    _first(d)["env"].append({"name": "ES_PASSWORD", "value": "hunter2"})


def _plaintext_token(d: dict) -> None:
    _first(d)["env"].append({"name": "fraudwatch_api_token", "value": "fw_abc"})


VIOLATIONS: dict[str, tuple[Callable[[dict], None], str]] = {
    "no runAsNonRoot": (_no_non_root, "fraudwatch-non-root"),
    "pod runs as UID 0": (_pod_runs_as_root, "fraudwatch-non-root"),
    "privilege escalation": (_escalates, "fraudwatch-non-root"),
    "privileged": (_privileged, "fraudwatch-non-root"),
    "no limits": (_no_limits, "fraudwatch-resource-limits"),
    "no memory request": (_no_memory_request, "fraudwatch-resource-limits"),
    "init container without resources": (
        _init_container_without_limits,
        "fraudwatch-resource-limits",
    ),
    "password in env": (_plaintext_password, "fraudwatch-no-plaintext-secrets"),
    "token in env": (_plaintext_token, "fraudwatch-no-plaintext-secrets"),
}


@pytest.mark.parametrize("violation", VIOLATIONS, ids=list(VIOLATIONS))
def test_the_server_refuses_a_violating_workload(policies: KubeApi, violation: str) -> None:
    break_it, policy = VIOLATIONS[violation]
    for obj, spec_of in [
        (deployment("violating"), lambda o: o),
        (cronjob("violating"), lambda o: o["spec"]["jobTemplate"]),
    ]:
        break_it(spec_of(obj))
        with pytest.raises(ApiError) as refused:
            policies.create(obj)
        # reason Forbidden in the policy: HTTP 403, as RBAC would answer
        assert refused.value.status == 403, refused.value
        assert f"ValidatingAdmissionPolicy '{policy}'" in refused.value.message
        assert not policies.exists(obj["apiVersion"], obj["kind"], "violating", BOUND)


def _pod(name: str, container: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": BOUND},
        "spec": {"containers": [container]},
    }


def test_a_pod_without_limits_is_refused(policies: KubeApi) -> None:
    # Pod Security `restricted` has nothing against it; the admission policy has.
    container = _container()
    del container["resources"]
    with pytest.raises(ApiError) as refused:
        policies.create(_pod("unlimited", container))
    assert "ValidatingAdmissionPolicy 'fraudwatch-resource-limits'" in refused.value.message


def test_pod_security_restricted_is_enforced_in_the_namespace(policies: KubeApi) -> None:
    with pytest.raises(ApiError) as refused:
        policies.create(_pod("root-pod", _container(securityContext={"runAsUser": 0})))
    assert 'violates PodSecurity "restricted' in refused.value.message


def test_the_policies_act_only_where_bound(policies: KubeApi) -> None:
    violating = deployment("violating", namespace=UNBOUND)
    _no_limits(violating)
    assert policies.create(violating)["metadata"]["uid"]


def test_an_update_that_breaks_a_policy_is_refused(policies: KubeApi) -> None:
    good = deployment("updated")
    policies.apply(good)
    bad = copy.deepcopy(good)
    _plaintext_password(bad)
    with pytest.raises(ApiError) as refused:
        policies.apply(bad)
    assert "fraudwatch-no-plaintext-secrets" in refused.value.message


def test_default_deny_is_in_place_and_cannot_be_weakened(policies: KubeApi) -> None:
    deny = policies.get("networking.k8s.io/v1", "NetworkPolicy", "default-deny", BOUND)
    assert deny["spec"]["podSelector"] == {}
    assert sorted(deny["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    weakened = network_policy(
        "default-deny",
        {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}]},
    )
    with pytest.raises(ApiError) as refused:
        policies.apply(weakened)
    assert "fraudwatch-default-deny" in refused.value.message
    narrowed = network_policy(
        "default-deny",
        {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Ingress", "Egress"]},
    )
    with pytest.raises(ApiError):
        policies.apply(narrowed)


@pytest.mark.parametrize(
    "rules",
    [
        {"ingress": [{}]},
        {"ingress": [{"ports": [{"port": 8000}]}]},
        {"egress": [{}]},
    ],
    ids=["ingress-from-anyone", "ingress-port-from-anyone", "egress-anywhere"],
)
def test_a_network_policy_open_to_everyone_is_refused(policies: KubeApi, rules: dict) -> None:
    spec = {"podSelector": {"matchLabels": {"app": "x"}}, **rules}
    with pytest.raises(ApiError) as refused:
        policies.create(network_policy("open", spec))
    assert "fraudwatch-default-deny" in refused.value.message


def test_a_scoped_network_policy_is_admitted(policies: KubeApi) -> None:
    spec = {
        "podSelector": {"matchLabels": {"app": "x"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "y"}}}]}],
        "egress": [{"ports": [{"port": 9092, "protocol": "TCP"}]}],
    }
    assert policies.create(network_policy("scoped", spec))["metadata"]["uid"]
