"""The platform creates the topics the product uses, grants each workload what it does with
them, and hands the chart values that set only variables the product reads. The product's
names come from its source (tests/infra/product_contract.py), never from an import."""

from __future__ import annotations

import sys
from pathlib import Path

from platform_render import Rendering

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chart"))

from chart_render import find, pod_spec, render_chart
from product_contract import product_topics, unread_fraudwatch_variables


def _acl_topics(r: Rendering, user: str, operation: str) -> set[str]:
    acls = r.one("KafkaUser", user).inputs["spec"]["authorization"]["acls"]
    return {
        a["resource"]["name"]
        for a in acls
        if a["resource"]["type"] == "topic" and operation in a["operations"]
    }


def test_kafka_topics_are_the_products(each_stack: Rendering) -> None:
    topics = {t.inputs["metadata"]["name"] for t in each_stack.of_kind("KafkaTopic")}
    assert topics == product_topics().all


def test_acls_follow_what_each_workload_does(each_stack: Rendering) -> None:
    wanted = product_topics()
    assert _acl_topics(each_stack, "fraudwatch-scorer", "Read") == wanted.event_topics
    assert _acl_topics(each_stack, "fraudwatch-scorer", "Write") == {wanted.dead_letter_topic}
    assert _acl_topics(each_stack, "fraudwatch-generator", "Write") == wanted.event_topics
    assert _acl_topics(each_stack, "fraudwatch-generator", "Read") == set()
    # Every topic an ACL names exists.
    created = {t.inputs["metadata"]["name"] for t in each_stack.of_kind("KafkaTopic")}
    for user in ("fraudwatch-scorer", "fraudwatch-generator"):
        for operation in ("Read", "Write", "Describe"):
            assert _acl_topics(each_stack, user, operation) <= created


def test_chart_values_render_and_set_only_what_the_product_reads(each_stack: Rendering) -> None:
    values = each_stack.one("Release", "fraudwatch").inputs["values"]
    assert values["streaming"]["kafka"]["topicPrefix"] == product_topics().prefix
    objects = render_chart(values)  # the chart's schema accepts them; every object validates
    assert unread_fraudwatch_variables(objects) == set()
    (deployment,) = find(objects, "Deployment", "streaming")
    (container,) = pod_spec(deployment)["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FRAUDWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["FRAUDWATCH_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["FRAUDWATCH_KAFKA_CA_FILE"] == env["FRAUDWATCH_ES_CA_FILE"]
    assert env["FRAUDWATCH_SECRETS_DIR"] == "/var/run/secrets/fraudwatch"


def test_decision_route_runs_on_its_own_scaled_pods(dev: Rendering, prod: Rendering) -> None:
    """The chart's decisions Deployment from the stack config: prod 2-6 pods behind an HPA and
    a PodDisruptionBudget keeping one; dev one pod, neither (highAvailability false)."""
    prod_objects = render_chart(prod.one("Release", "fraudwatch").inputs["values"])
    (deployment,) = find(prod_objects, "Deployment", "decisions")
    (container,) = pod_spec(deployment)["containers"]
    assert container["args"][0] == "serve"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    (hpa,) = find(prod_objects, "HorizontalPodAutoscaler", "decisions")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    (pdb,) = find(prod_objects, "PodDisruptionBudget", "decisions")
    assert pdb["spec"]["minAvailable"] == 1
    assert find(prod_objects, "Service", "decisions")
    assert find(prod_objects, "NetworkPolicy", "decisions")
    dev_objects = render_chart(dev.one("Release", "fraudwatch").inputs["values"])
    (dev_deployment,) = find(dev_objects, "Deployment", "decisions")
    assert dev_deployment["spec"]["replicas"] == 1
    assert not find(dev_objects, "HorizontalPodAutoscaler", "decisions")
    assert not find(dev_objects, "PodDisruptionBudget", "decisions")
