"""The platform policies (platform_policies.py, beside these tests) hold for every resource the
program declares, and each one catches the violation it exists for."""

from __future__ import annotations

import copy
from typing import Any

import platform_policies as policies
import pytest
from platform_render import Rendering


def _manifests(r: Rendering) -> list[dict[str, Any]]:
    return [x.manifest() for x in [*r.core, *r.custom]]


def _releases(r: Rendering) -> list[dict[str, Any]]:
    return [x.manifest() for x in r.releases]


def test_platform_passes_every_policy(each_stack: Rendering) -> None:
    assert policies.violations(_manifests(each_stack), _releases(each_stack)) == []


def _job(prod: Rendering) -> dict[str, Any]:
    return copy.deepcopy(prod.one("CronJob", "tableau-publish").manifest())


def _container(job: dict[str, Any]) -> dict[str, Any]:
    return policies.pod_specs(job)[0]["containers"][0]


@pytest.mark.parametrize(
    ("break_it", "policy", "says"),
    [
        (
            lambda j: _container(j).update(image="ghcr.io/fraudwatch/fraudwatch:latest"),
            policies.pinned_images,
            "is not pinned",
        ),
        (
            lambda j: _container(j).update(image="ghcr.io/fraudwatch/fraudwatch"),
            policies.pinned_images,
            "is not pinned",
        ),
        (
            lambda j: _container(j)["resources"].pop("limits"),
            policies.resource_limits,
            "has no limits",
        ),
        (
            lambda j: _container(j)["securityContext"].update(runAsNonRoot=False),
            policies.non_root,
            "may run as root",
        ),
        (
            lambda j: _container(j)["securityContext"].update(allowPrivilegeEscalation=True),
            policies.non_root,
            "may escalate",
        ),
        (
            lambda j: policies.pod_specs(j)[0]["volumes"].append(
                {"name": "host", "hostPath": {"path": "/var/run"}}
            ),
            policies.no_host_path,
            "mounts a node path",
        ),
    ],
)
def test_each_policy_catches_its_violation(
    prod: Rendering, break_it: Any, policy: Any, says: str
) -> None:
    job = _job(prod)
    assert policy(job) == []
    break_it(job)
    found = policy(job)
    assert found and says in found[0] and "tableau-publish" in found[0]


def test_a_load_balancer_needs_the_explicit_flag() -> None:
    service = {
        "kind": "Service",
        "metadata": {"name": "api", "namespace": "x"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]},
    }
    assert "LoadBalancer without" in policies.no_public_load_balancer(service)[0]
    service["metadata"]["annotations"] = {policies.PUBLIC_LOAD_BALANCER_FLAG: "true"}
    assert policies.no_public_load_balancer(service) == []


def test_releases_must_pin_chart_versions_and_set_limits(prod: Rendering) -> None:
    release = copy.deepcopy(prod.one("Release", "strimzi").manifest())
    assert policies.release_is_pinned(release) == []
    release["version"] = "~0.47"
    assert "is not exact" in policies.release_is_pinned(release)[0]
    release["values"]["resources"].pop("limits")
    assert "lacks cpu or memory" in policies.release_values_limits(release)[0]
    release["values"].pop("resources")
    assert "no resources at all" in policies.release_values_limits(release)[0]
