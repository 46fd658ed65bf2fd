"""The chart renders with default, minimal and production values, and every object validates
(kubernetes-validate --strict for built-in kinds, documented required fields for custom ones).
"""

from __future__ import annotations

from collections import Counter

import pytest
from chart_render import KUBERNETES_VERSION, render_chart, validate_object, values_file

EXPECTED_KINDS = {
    "default": {
        "Deployment": 3,  # intervention + decisions + streaming
        "HorizontalPodAutoscaler": 2,  # intervention + decisions
        "PodDisruptionBudget": 2,  # intervention + decisions
        "Service": 2,  # intervention + decisions
        "CronJob": 2,  # batch scorer + retention
        "NetworkPolicy": 5,
        "ConfigMap": 1,
    },
    "minimal": {"StatefulSet": 1, "Service": 1, "CronJob": 2, "NetworkPolicy": 3},
    "production": {
        "Deployment": 3,
        "HorizontalPodAutoscaler": 2,
        "Ingress": 1,
        "ServiceMonitor": 2,  # intervention + decisions
        "ScheduledSparkApplication": 1,
        "Role": 1,
        "RoleBinding": 1,
        "CronJob": 1,  # retention (the batch scorer is a ScheduledSparkApplication)
        "NetworkPolicy": 5,
    },
}


@pytest.mark.parametrize("values_set", sorted(EXPECTED_KINDS))
def test_values_set_renders_the_expected_objects(rendered, values_set: str) -> None:
    kinds = Counter(o["kind"] for o in rendered[values_set])
    for kind, count in EXPECTED_KINDS[values_set].items():
        assert kinds[kind] == count, f"{values_set}: expected {count} {kind}, got {kinds[kind]}"


@pytest.mark.parametrize("values_set", sorted(EXPECTED_KINDS))
def test_every_object_validates_for_the_target_kubernetes_version(rendered, values_set) -> None:
    # render_chart already validated; re-check explicitly so this test states the property.
    assert rendered[values_set]
    for obj in rendered[values_set]:
        validate_object(obj)
        assert obj["metadata"]["namespace"] == "fraudwatch", obj["metadata"]["name"]


def test_validation_catches_an_invalid_object() -> None:
    # The validator is real: a Deployment with a misspelled field is rejected in strict mode.
    deployment = next(o for o in render_chart(values_file("default")) if o["kind"] == "Deployment")
    deployment["spec"]["replica"] = 2
    with pytest.raises(AssertionError, match="replica"):
        validate_object(deployment)
    assert KUBERNETES_VERSION.startswith("1.")


def test_chart_never_renders_a_secret(rendered) -> None:
    # Credentials always come from existingSecret references the operator creates.
    for values_set, objects in rendered.items():
        assert not [o for o in objects if o["kind"] == "Secret"], values_set
