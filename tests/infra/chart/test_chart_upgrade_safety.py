"""Upgrading from the previous release must not change immutable fields: Kubernetes rejects a
new Deployment/StatefulSet selector or StatefulSet volumeClaimTemplates, and the upgrade fails
half-way. ci/previous-release.yaml records the previous version and its users' values."""

from __future__ import annotations

import copy
from typing import Any

import helm_python as helm
import pytest
import yaml
from chart_render import CHART_DIR, CI_VALUES_DIR, render_chart, values_file

IMMUTABLE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "PersistentVolumeClaim")


def immutable_fields(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (kind, name): the fields an API server refuses to change in place."""
    fields: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in objects:
        if obj["kind"] not in IMMUTABLE_KINDS:
            continue
        if obj["kind"] == "PersistentVolumeClaim":
            # A bound claim's class and access modes never change (its size may only grow).
            fields[(obj["kind"], obj["metadata"]["name"])] = {
                "accessModes": obj["spec"].get("accessModes"),
                "storageClassName": obj["spec"].get("storageClassName"),
            }
            continue
        entry: dict[str, Any] = {"selector": obj["spec"].get("selector")}
        if obj["kind"] == "StatefulSet":
            entry["volumeClaimTemplates"] = [
                {"name": claim["metadata"]["name"], "spec": claim["spec"]}
                for claim in obj["spec"].get("volumeClaimTemplates", [])
            ]
            entry["serviceName"] = obj["spec"].get("serviceName")
        fields[(obj["kind"], obj["metadata"]["name"])] = entry
    return fields


def immutable_changes(old: list[dict], new: list[dict]) -> list[str]:
    """Human-readable list of immutable fields that differ between two renders."""
    before, after = immutable_fields(old), immutable_fields(new)
    changes = []
    for key in sorted(before.keys() & after.keys()):
        for field, value in before[key].items():
            if after[key].get(field) != value:
                changes.append(f"{key[0]}/{key[1]}: {field} {value!r} -> {after[key].get(field)!r}")
    return changes


@pytest.fixture(scope="module")
def previous_release() -> dict[str, Any]:
    loaded = yaml.safe_load((CI_VALUES_DIR / "previous-release.yaml").read_text())
    assert set(loaded) == {"version", "values"}
    return loaded


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("-")[0].split("."))


def test_chart_version_moved_past_the_previous_release(previous_release) -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        current = chart.version
    assert _version(current) > _version(str(previous_release["version"]))
    assert f"## {current}" in (CHART_DIR / "CHANGELOG.md").read_text()


def test_previous_release_values_still_install(previous_release) -> None:
    # A user upgrading with the values file they used for the previous release.
    assert render_chart(previous_release["values"])


@pytest.mark.parametrize("current_values", ["previous", "default", "minimal", "production"])
def test_upgrade_keeps_selectors_and_volume_claims(previous_release, current_values) -> None:
    old = render_chart(previous_release["values"])
    new = render_chart(
        previous_release["values"] if current_values == "previous" else values_file(current_values)
    )
    paired = immutable_fields(old).keys() & immutable_fields(new).keys()
    assert paired, "no workload in common: the comparison would check nothing"
    assert not immutable_changes(old, new)


def test_previous_release_has_a_statefulset_whose_claims_are_guarded(previous_release) -> None:
    old = render_chart(previous_release["values"])
    (statefulset,) = [o for o in old if o["kind"] == "StatefulSet"]
    assert immutable_fields(old)[("StatefulSet", statefulset["metadata"]["name"])][
        "volumeClaimTemplates"
    ]


def test_a_resized_volume_claim_is_caught(previous_release) -> None:
    resized = copy.deepcopy(previous_release["values"])
    resized["intervention"]["persistence"]["size"] = "5Gi"
    changes = immutable_changes(render_chart(previous_release["values"]), render_chart(resized))
    assert len(changes) == 1 and "volumeClaimTemplates" in changes[0] and "5Gi" in changes[0]


def test_a_renamed_chart_label_is_caught(previous_release) -> None:
    # nameOverride with fullnameOverride keeps object names but changes app.kubernetes.io/name
    # in the selector: exactly the mistake that breaks `helm upgrade`.
    renamed = copy.deepcopy(previous_release["values"])
    renamed |= {"nameOverride": "fw2", "fullnameOverride": "fw-fraudwatch"}
    changes = immutable_changes(render_chart(previous_release["values"]), render_chart(renamed))
    assert changes and all("selector" in change for change in changes)


def test_a_changed_storage_class_of_the_streaming_claim_is_caught(previous_release) -> None:
    moved = copy.deepcopy(previous_release["values"])
    moved["streaming"]["persistence"] = {"storageClassName": "other"}
    changes = immutable_changes(render_chart(previous_release["values"]), render_chart(moved))
    assert len(changes) == 1
    assert "PersistentVolumeClaim" in changes[0] and "storageClassName" in changes[0]
