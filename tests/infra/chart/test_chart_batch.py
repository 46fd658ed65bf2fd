"""The batch scorer: a CronJob with local Spark, or a ScheduledSparkApplication for the
Kubeflow Spark Operator."""

from __future__ import annotations

from chart_render import find, pod_spec, render_chart

SCORE_ARGS = [
    "score",
    "--input",
    "s3://fraudwatch/raw",
    "--out",
    "s3://fraudwatch/scored",
    "--engine",
    "spark",
]


def test_cronjob_runs_score_on_spark_nightly_without_overlap(rendered) -> None:
    (cronjob,) = find(rendered["default"], "CronJob", "batch")
    assert cronjob["spec"]["schedule"] == "17 2 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = pod_spec(cronjob)["containers"]
    assert container["args"] == SCORE_ARGS
    assert not find(rendered["default"], "ScheduledSparkApplication")
    assert not find(rendered["default"], "Role")


def test_spark_operator_mode_renders_the_app_and_only_the_rbac_its_driver_needs(rendered):
    objects = rendered["production"]
    assert not find(objects, "CronJob", "batch")
    (app,) = find(objects, "ScheduledSparkApplication", "batch")
    template = app["spec"]["template"]
    assert template["arguments"] == SCORE_ARGS
    assert template["mainApplicationFile"] == "local:///opt/fraudwatch/spark_entrypoint.py"
    assert template["image"].endswith("@sha256:" + "0" * 64)
    assert template["executor"]["instances"] == 8
    (role,) = find(objects, "Role", "batch")
    (binding,) = find(objects, "RoleBinding", "batch")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == template["driver"]["serviceAccount"]
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert "*" not in verbs and "escalate" not in verbs and "bind" not in verbs
    assert {r for rule in role["rules"] for r in rule["resources"]} <= {
        "pods",
        "services",
        "configmaps",
        "persistentvolumeclaims",
    }


def test_spark_driver_may_reach_the_api_server_only_in_operator_mode(rendered) -> None:
    def egress_ports(objects):
        (policy,) = find(objects, "NetworkPolicy", "batch")
        return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}

    assert 6443 in egress_ports(rendered["production"])
    assert 6443 not in egress_ports(rendered["default"])


def test_batch_can_be_switched_off() -> None:
    objects = render_chart({"batch": {"enabled": False}})
    assert not find(objects, "CronJob", "batch") and not find(objects, "ServiceAccount", "batch")
