"""Stack configuration is validated before any resource exists: a missing or wrong key
stops the program with one line naming the key and the command that fixes it."""

from __future__ import annotations

import copy
import runpy
from typing import Any

import pulumi
import pytest
from fraudwatch_infra.config import ConfigError, parse_config
from platform_render import (
    CREDENTIALS_SEED,
    INFRA,
    RecordingMocks,
    config_as_pulumi_strings,
    stack_config,
)


def _broken(change: Any) -> dict[str, Any]:
    raw = copy.deepcopy(stack_config("prod"))
    change(raw)
    return raw


def test_both_stack_files_are_valid() -> None:
    assert parse_config(stack_config("dev")).high_availability is False
    assert parse_config(stack_config("prod")).streaming.min_insync_replicas == 2


def test_decision_route_defaults_follow_high_availability() -> None:
    dev = parse_config(stack_config("dev")).workloads
    prod = parse_config(stack_config("prod")).workloads
    assert (dev.decision_replicas, dev.decision_max_replicas) == (1, 3)
    assert (prod.decision_replicas, prod.decision_max_replicas) == (2, 6)
    assert prod.decision_client_namespaces == ()
    raw = copy.deepcopy(stack_config("prod"))
    raw["workloads"].update(
        decisionReplicas=3, decisionMaxReplicas=9, decisionClientNamespaces=["payments"]
    )
    given = parse_config(raw).workloads
    assert (given.decision_replicas, given.decision_max_replicas) == (3, 9)
    assert given.decision_client_namespaces == ("payments",)


@pytest.mark.parametrize(
    ("change", "key", "fix"),
    [
        (
            lambda c: c["streaming"].pop("brokers"),
            "fraudwatch:streaming.brokers is not set",
            "pulumi config set --path 'fraudwatch:streaming.brokers'",
        ),
        (
            lambda c: c["storage"].pop("encryptDevices"),
            "fraudwatch:storage.encryptDevices is not set",
            "pulumi config set --path 'fraudwatch:storage.encryptDevices' true",
        ),
        (
            lambda c: c["streaming"].update(minInsyncReplicas=4),
            "streaming.minInsyncReplicas (4)",
            "pulumi config set --path 'fraudwatch:streaming.minInsyncReplicas' 2",
        ),
        (
            lambda c: c["search"].update(masterNodes=2),
            "fraudwatch:search.masterNodes must be odd",
            "'fraudwatch:search.masterNodes' 3",
        ),
        (
            lambda c: c["images"]["workloads"].update(tag="latest"),
            "fraudwatch:images.workloads.tag must pin a release",
            "set --path",
        ),
        (
            lambda c: c["network"].update(apiServerCidrs=["10.0.0.300/32"]),
            "fraudwatch:network.apiServerCidrs holds '10.0.0.300/32'",
            "set --path",
        ),
        (
            lambda c: c["workloads"].update(serviceType="LoadBalancer"),
            "network.allowPublicLoadBalancer is false",
            "'fraudwatch:network.allowPublicLoadBalancer' true",
        ),
        (
            lambda c: c["bi"].update(tableauServerUrl="http://tableau"),
            "must be an https:// URL",
            "bi.tableauServerUrl",
        ),
        (
            lambda c: c.update(streaming="three brokers"),
            "fraudwatch:streaming must be an object",
            "Pulumi.dev.yaml",
        ),
        (
            lambda c: c.update(replicaz=3),
            "fraudwatch:replicaz is not a known key",
            "pulumi config rm",
        ),
        (
            lambda c: c["streaming"]["topics"].pop("logins"),
            "fraudwatch:streaming.topics.logins",
            "Copy the `logins` block",
        ),
        (
            lambda c: c["documents"].update(replicas="three"),
            "fraudwatch:documents.replicas must be an integer",
            "pulumi config set",
        ),
        (
            lambda c: c["workloads"].update(decisionReplicas=1),
            "fraudwatch:workloads.decisionReplicas is 1 with highAvailability",
            "pulumi config set --path 'fraudwatch:workloads.decisionReplicas' 2",
        ),
        (
            lambda c: c["workloads"].update(decisionReplicas=4, decisionMaxReplicas=3),
            "fraudwatch:workloads.decisionMaxReplicas must be an integer >= 4",
            "'fraudwatch:workloads.decisionMaxReplicas'",
        ),
        (
            lambda c: c["workloads"].update(decisionClientNamespaces="payments"),
            "fraudwatch:workloads.decisionClientNamespaces must be a list of namespace names",
            "'fraudwatch:workloads.decisionClientNamespaces'",
        ),
    ],
)
def test_a_wrong_key_is_named_with_its_fix(change: Any, key: str, fix: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_broken(change))
    message = str(err.value)
    assert key in message
    assert fix in message
    assert "\n" not in message


def test_program_stops_before_registering_anything_without_the_tableau_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run infra/__main__.py itself, as `pulumi up --stack prod` would, without the PAT."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="fraudwatch", stack="prod", preview=False)
    pulumi.runtime.set_all_config(config_as_pulumi_strings(stack_config("prod")), [])
    errors: list[str] = []
    monkeypatch.setattr(pulumi.log, "error", lambda msg, *a, **k: errors.append(msg))
    monkeypatch.chdir(INFRA)
    try:
        with pytest.raises(SystemExit):
            runpy.run_path(str(INFRA / "__main__.py"), run_name="__main__")
    finally:
        pulumi.runtime.set_all_config({}, [])
    assert errors and "fraudwatch:tableauPatSecret is not set" in errors[0]
    assert "pulumi config set --secret fraudwatch:tableauPatSecret" in errors[0]
    assert mocks.resources == []


def test_program_stops_before_registering_anything_without_the_credentials_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dev needs no Tableau PAT, but every stack needs the seed of its credentials."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="fraudwatch", stack="dev", preview=False)
    pulumi.runtime.set_all_config(config_as_pulumi_strings(stack_config("dev")), [])
    errors: list[str] = []
    monkeypatch.setattr(pulumi.log, "error", lambda msg, *a, **k: errors.append(msg))
    monkeypatch.chdir(INFRA)
    try:
        with pytest.raises(SystemExit):
            runpy.run_path(str(INFRA / "__main__.py"), run_name="__main__")
    finally:
        pulumi.runtime.set_all_config({}, [])
    assert errors and "fraudwatch:credentialsSeed is not set" in errors[0]
    assert "pulumi config set --secret fraudwatch:credentialsSeed" in errors[0]
    assert "\n" not in errors[0]
    assert mocks.resources == []


def test_program_entry_point_registers_the_platform_from_stack_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="fraudwatch", stack="dev", preview=False)
    config = config_as_pulumi_strings(stack_config("dev"))
    config["fraudwatch:credentialsSeed"] = CREDENTIALS_SEED
    pulumi.runtime.set_all_config(config, ["fraudwatch:credentialsSeed"])
    monkeypatch.chdir(INFRA)

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(INFRA / "__main__.py"), run_name="__main__")

    try:
        program()
    finally:
        pulumi.runtime.set_all_config({}, [])
    kinds = {r.type.rsplit(":", 1)[-1] for r in mocks.resources}
    assert {"Kafka", "Elasticsearch", "PerconaServerMongoDB", "CephCluster", "Release"} <= kinds
