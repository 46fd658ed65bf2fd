"""Every workload the chart renders runs locked down, with every values set."""

from __future__ import annotations

import pytest
from chart_render import find, pod_spec, render_chart, workloads

VALUES_SETS = ("default", "minimal", "production")
ALL_COMPONENTS_ON = {"generator": {"enabled": True}}


def _pods(objects):
    for workload in workloads(objects):
        yield workload, pod_spec(workload)


@pytest.fixture(scope="module")
def every_render(rendered):
    # The three ci/ values sets plus defaults with the demo generator switched on.
    return {**rendered, "generator": render_chart(ALL_COMPONENTS_ON)}


def test_every_pod_runs_non_root_with_runtime_default_seccomp(every_render) -> None:
    for name, objects in every_render.items():
        for workload, pod in _pods(objects):
            ctx = pod["securityContext"]
            where = f"{name}: {workload['kind']}/{workload['metadata']['name']}"
            assert ctx["runAsNonRoot"] is True, where
            assert ctx["runAsUser"] >= 10000, where
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault", where


def test_every_container_is_read_only_unprivileged_and_drops_all_capabilities(every_render):
    for name, objects in every_render.items():
        for workload, pod in _pods(objects):
            for container in pod["containers"]:
                sc = container["securityContext"]
                where = f"{name}: {workload['metadata']['name']}/{container['name']}"
                assert sc["readOnlyRootFilesystem"] is True, where
                assert sc["allowPrivilegeEscalation"] is False, where
                assert sc["privileged"] is False, where
                assert sc["capabilities"]["drop"] == ["ALL"], where
                assert "add" not in sc["capabilities"], where


def test_every_container_has_cpu_and_memory_requests_and_limits(every_render) -> None:
    for name, objects in every_render.items():
        for workload, pod in _pods(objects):
            for container in pod["containers"]:
                resources = container["resources"]
                for bound in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(resources[bound]), (
                        f"{name}: {workload['metadata']['name']} lacks {bound}"
                    )


def test_no_pod_mounts_a_service_account_token(every_render) -> None:
    for name, objects in every_render.items():
        for workload, pod in _pods(objects):
            assert pod["automountServiceAccountToken"] is False, (name, workload["metadata"])
        for account in find(objects, "ServiceAccount"):
            assert account["automountServiceAccountToken"] is False, account["metadata"]["name"]


def test_every_pod_is_selected_by_a_network_policy(every_render) -> None:
    for name, objects in every_render.items():
        policies = find(objects, "NetworkPolicy")
        for workload in workloads(objects):
            template_labels = (
                workload["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
                if workload["kind"] == "CronJob"
                else workload["spec"]["template"]["metadata"]["labels"]
            )
            selected = [
                p
                for p in policies
                if p["spec"]["podSelector"]["matchLabels"].items() <= template_labels.items()
            ]
            assert selected, f"{name}: no NetworkPolicy selects {workload['metadata']['name']}"
            assert all({"Ingress", "Egress"} <= set(p["spec"]["policyTypes"]) for p in selected)


def test_credentials_come_only_from_existing_secret_references(rendered) -> None:
    production = rendered["production"]
    referenced = {
        volume["secret"]["secretName"]
        for _, pod in _pods(production)
        for volume in pod.get("volumes", [])
        if "secret" in volume
    } | {
        env["valueFrom"]["secretKeyRef"]["name"]
        for _, pod in _pods(production)
        for container in pod["containers"]
        for env in container.get("env", [])
        if "valueFrom" in env
    }
    assert referenced == {
        "fraudwatch-intervention",
        "fraudwatch-streaming",
        "fraudwatch-s3",
        "fraudwatch-client-tls",  # the CA bundle (public, but only ever from a Secret)
    }
    for _, pod in _pods(production):
        for container in pod["containers"]:
            for env in container.get("env", []):
                # No credential is ever a literal value in a manifest (a *_DIR or *_FILE
                # variable names where mounted secret files are, not a secret).
                value = str(env.get("value", ""))
                is_path = env["name"].endswith(("_DIR", "_FILE"))
                assert (
                    is_path
                    or not any(
                        w in env["name"] for w in ("SECRET", "PASSWORD", "TOKEN", "STATE_URL")
                    )
                    or ("valueFrom" in env)
                ), env
                assert "@" not in value, env


def test_spark_driver_and_executors_are_locked_down_too(rendered) -> None:
    (app,) = find(rendered["production"], "ScheduledSparkApplication")
    for role in ("driver", "executor"):
        spec = app["spec"]["template"][role]
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert spec["podSecurityContext"]["runAsNonRoot"] is True
        assert spec["labels"]["app.kubernetes.io/component"] == "batch"
