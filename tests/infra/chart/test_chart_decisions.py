"""The inline decision route (POST /v1/decisions, issue 19 item 5): with the mongodb backend a
Deployment of its own (same image, command, settings, security context and egress as the
intervention service) with a Service, HPA, PodDisruptionBudget (minAvailable 1), resources,
/health probes, NetworkPolicy and the Ingress path /v1/decisions; with sqlite none, and asking
for one is refused."""

from __future__ import annotations

import helm_python as helm
import pytest
from chart_render import find, pod_spec, render_chart


def _one(objects, kind, component="decisions"):
    (obj,) = find(objects, kind, component)
    return obj


def _selector(obj):
    return obj["spec"]["selector"].get("matchLabels", obj["spec"]["selector"])


def test_default_install_runs_the_decision_route_on_its_own_pods(rendered) -> None:
    objects = rendered["default"]
    decisions = _one(objects, "Deployment")
    service = _one(objects, "Deployment", "intervention")
    assert decisions["metadata"]["name"] == "fw-fraudwatch-decisions"
    # Same image, command and settings file as the service.
    (container,) = pod_spec(decisions)["containers"]
    (service_container,) = pod_spec(service)["containers"]
    assert container["image"] == service_container["image"]
    assert container["args"] == service_container["args"]
    assert container["args"][0] == "serve"
    assert container["env"] == service_container["env"]
    assert container["securityContext"] == service_container["securityContext"]
    assert pod_spec(decisions)["securityContext"] == pod_spec(service)["securityContext"]
    assert pod_spec(decisions)["serviceAccountName"] == pod_spec(service)["serviceAccountName"]
    assert pod_spec(decisions)["automountServiceAccountToken"] is False
    # Its own pods: neither selector picks the other's pods.
    labels = decisions["spec"]["template"]["metadata"]["labels"]
    service_labels = service["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "decisions"
    assert not set(_selector(service).items()) <= set(labels.items())
    assert not set(_selector(decisions).items()) <= set(service_labels.items())


def test_resources_and_health_probes(rendered) -> None:
    (container,) = pod_spec(_one(rendered["default"], "Deployment"))["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}


def test_hpa_on_cpu_and_pdb_keep_one_pod(rendered) -> None:
    objects = rendered["default"]
    deployment = _one(objects, "Deployment")
    hpa = _one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    pdb = _one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert _selector(pdb) == _selector(deployment)
    # The service's own HPA and PDB still select only the service's pods.
    assert (
        _one(objects, "HorizontalPodAutoscaler", "intervention")["spec"]["scaleTargetRef"]["name"]
        == _one(objects, "Deployment", "intervention")["metadata"]["name"]
    )


def test_replicas_and_hpa_bounds_are_configurable() -> None:
    objects = render_chart(
        {
            "intervention": {
                "decisions": {
                    "autoscaling": {"enabled": False},
                    "replicas": 3,
                    "resources": {
                        "requests": {"cpu": "1", "memory": "1Gi"},
                        "limits": {"cpu": "2", "memory": "2Gi"},
                    },
                }
            }
        }
    )
    deployment = _one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert not find(objects, "HorizontalPodAutoscaler", "decisions")
    assert pod_spec(deployment)["containers"][0]["resources"]["limits"]["cpu"] == "2"
    scaled = render_chart(
        {"intervention": {"decisions": {"autoscaling": {"minReplicas": 3, "maxReplicas": 10}}}}
    )
    hpa = _one(scaled, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)


def test_service_and_ingress_route_the_decision_path_to_the_decision_pods(rendered) -> None:
    objects = rendered["production"]
    service = _one(objects, "Service")
    deployment = _one(objects, "Deployment")
    assert service["metadata"]["name"] == "fw-fraudwatch-decisions"
    assert service["spec"]["selector"] == _selector(deployment)
    (ingress,) = find(objects, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    paths = {p["path"]: p for p in rule["http"]["paths"]}
    assert paths["/v1/decisions"]["pathType"] == "Exact"
    assert paths["/v1/decisions"]["backend"]["service"]["name"] == "fw-fraudwatch-decisions"
    assert paths["/"]["backend"]["service"]["name"] == "fw-fraudwatch-intervention"


def test_network_policy_admits_the_service_clients_and_the_payment_systems() -> None:
    payment = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "payments"}}}
    objects = render_chart({"intervention": {"decisions": {"allowedClients": [payment]}}})
    policy = _one(objects, "NetworkPolicy")
    service_policy = _one(objects, "NetworkPolicy", "intervention")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "decisions"
    )
    (rule,) = policy["spec"]["ingress"]
    assert payment in rule["from"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert policy["spec"]["egress"] == service_policy["spec"]["egress"]
    closed = render_chart(
        {"intervention": {"allowedClients": [], "decisions": {"allowedClients": []}}}
    )
    assert _one(closed, "NetworkPolicy")["spec"]["ingress"] == []


def test_model_registry_claim_is_mounted_read_only_where_decisions_are_answered() -> None:
    objects = render_chart({"intervention": {"decisions": {"models": {"existingClaim": "models"}}}})
    spec = pod_spec(_one(objects, "Deployment"))
    assert {
        "name": "models",
        "persistentVolumeClaim": {"claimName": "models", "readOnly": True},
    } in spec["volumes"]
    assert {
        "name": "models",
        "mountPath": "/var/lib/fraudwatch/models",
        "readOnly": True,
    } in spec["containers"][0]["volumeMounts"]


def test_sqlite_has_no_decision_deployment_the_one_pod_answers(rendered) -> None:
    objects = rendered["minimal"]
    assert not find(objects, "Deployment", "decisions")
    assert not find(objects, "Service", "decisions")
    assert not find(objects, "PodDisruptionBudget", "decisions")
    assert _one(objects, "StatefulSet", "intervention")["spec"]["replicas"] == 1


def test_decisions_can_be_switched_off() -> None:
    objects = render_chart({"intervention": {"decisions": {"enabled": False}}})
    assert not [o for o in objects if "decisions" in o["metadata"]["name"]]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {
                "intervention": {
                    "stateBackend": "sqlite",
                    "replicas": 1,
                    "autoscaling": {"enabled": False},
                    "decisions": {"enabled": True},
                }
            },
            "intervention.decisions.enabled=true needs intervention.stateBackend=mongodb",
        ),
        (
            {"intervention": {"decisions": {"autoscaling": {"minReplicas": 4, "maxReplicas": 2}}}},
            "intervention.decisions.autoscaling.minReplicas (4) must not exceed maxReplicas (2)",
        ),
        (
            {"intervention": {"decisions": {"autoscaling": {"enabled": False}, "replicas": 1}}},
            "podDisruptionBudget.minAvailable (1) must be below the decision replicas (1",
        ),
    ],
)
def test_impossible_decision_settings_fail_with_a_clear_message(values, message) -> None:
    with pytest.raises(helm.HelmRenderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render_chart(values)


def test_one_replica_without_a_budget_renders() -> None:
    objects = render_chart(
        {
            "intervention": {
                "decisions": {
                    "autoscaling": {"enabled": False},
                    "replicas": 1,
                    "podDisruptionBudget": {"enabled": False},
                }
            }
        }
    )
    assert _one(objects, "Deployment")["spec"]["replicas"] == 1
    assert not find(objects, "PodDisruptionBudget", "decisions")
