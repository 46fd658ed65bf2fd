"""The intervention service: Deployment + HPA on MongoDB, one-replica StatefulSet on SQLite,
Service, Ingress, PodDisruptionBudget and ServiceMonitor wired to the same pods."""

from __future__ import annotations

import helm_python as helm
import pytest
from chart_render import REPO_ROOT, find, pod_spec, render_chart


def _intervention(objects, kind):
    (obj,) = find(objects, kind, "intervention")
    return obj


def test_serve_command_port_probes_and_credentials_from_the_secret(rendered) -> None:
    deployment = _intervention(rendered["default"], "Deployment")
    (container,) = pod_spec(deployment)["containers"]
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert container["ports"][0]["containerPort"] == 8000
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    env = {e["name"]: e for e in container["env"]}
    assert env["FRAUDWATCH_CONFIG"]["value"] == "/etc/fraudwatch/intervention.toml"
    # The variables fraudwatch/intervention/config.py reads its credentials from.
    for name, key in (
        ("FRAUDWATCH_STATE_URL", "state-url"),
        ("FRAUDWATCH_HOOK_SECRET", "hook-hmac-secret"),
    ):
        assert env[name]["valueFrom"]["secretKeyRef"] == {
            "name": "fraudwatch-intervention",
            "key": key,
        }


def test_sqlite_backend_keeps_state_on_the_volume_not_in_a_secret(rendered) -> None:
    statefulset = _intervention(rendered["minimal"], "StatefulSet")
    (container,) = pod_spec(statefulset)["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert "FRAUDWATCH_STATE_URL" not in env  # defaults to $FRAUDWATCH_HOME/intervention.sqlite3
    assert env["FRAUDWATCH_HOME"]["value"] == "/var/lib/fraudwatch"


def test_rendered_settings_file_is_accepted_by_the_service(rendered, tmp_path, monkeypatch) -> None:
    # The real loader of `fraudwatch serve` reads the TOML the chart renders.
    monkeypatch.syspath_prepend(str(REPO_ROOT / "workloads"))
    from fraudwatch.intervention.config import load_settings

    (configmap,) = find(rendered["production"], "ConfigMap", "intervention")
    settings_file = tmp_path / "intervention.toml"
    settings_file.write_text(configmap["data"]["intervention.toml"])
    settings = load_settings(settings_file, environ={})
    assert settings.oidc.audience == "fraudwatch"
    assert settings.policy.step_up_at == 0.995
    (default_configmap,) = find(rendered["default"], "ConfigMap", "intervention")
    settings_file.write_text(default_configmap["data"]["intervention.toml"])
    from fraudwatch.scoring.thresholds import THRESHOLDS

    assert load_settings(settings_file, environ={}).policy.lock_at == THRESHOLDS.lock_at


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"state": {"url": "mongodb://u:p@db/fw"}}, "url"),
        ({"hooks": {"hmac_secret": "x"}}, "hmac_secret"),
    ],
)
def test_credentials_in_the_settings_file_are_refused(config, named) -> None:
    with pytest.raises(helm.HelmValuesError, match="/intervention/config"):
        render_chart({"intervention": {"config": config}})


def test_hpa_scales_the_deployment_and_replicas_are_left_to_it(rendered) -> None:
    deployment = _intervention(rendered["production"], "Deployment")
    hpa = _intervention(rendered["production"], "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    # A fixed replica count would fight the HPA on every sync.
    assert "replicas" not in deployment["spec"]


def test_service_pdb_and_servicemonitor_select_the_service_pods(rendered) -> None:
    objects = rendered["production"]
    pod_labels = _intervention(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = _intervention(objects, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    pdb = _intervention(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    monitor = _intervention(objects, "ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0] == {
        "port": "http",
        "path": "/metrics",
        "interval": "30s",
    }
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_ingress_serves_the_host_over_tls(rendered) -> None:
    ingress = _intervention(rendered["production"], "Ingress")
    service = _intervention(rendered["production"], "Service")
    assert ingress["spec"]["tls"] == [
        {"hosts": ["fraudwatch.prod.example.internal"], "secretName": "fraudwatch-tls"}
    ]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert not find(rendered["default"], "Ingress")


def test_network_policy_admits_streaming_scorer_and_listed_clients_only(rendered) -> None:
    policy = _intervention(rendered["default"], "NetworkPolicy")
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    sources = rule["from"]
    streaming_pods = _streaming_labels(rendered["default"])
    assert sources[0]["podSelector"]["matchLabels"].items() <= streaming_pods.items()
    assert len(sources) == 3  # streaming scorer + ingress controller + monitoring


def _streaming_labels(objects):
    (deployment,) = find(objects, "Deployment", "streaming")
    return deployment["spec"]["template"]["metadata"]["labels"]


def test_sqlite_backend_is_a_single_statefulset_with_a_state_volume(rendered) -> None:
    objects = rendered["minimal"]
    statefulset = _intervention(objects, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 1
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    (container,) = pod_spec(statefulset)["containers"]
    assert {"name": "state", "mountPath": "/var/lib/fraudwatch"} in container["volumeMounts"]
    assert not find(objects, "HorizontalPodAutoscaler")
    assert not find(objects, "Deployment", "intervention")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {
                "intervention": {
                    "stateBackend": "sqlite",
                    "replicas": 2,
                    "autoscaling": {"enabled": False},
                }
            },
            "intervention.replicas must be 1 with intervention.stateBackend=sqlite",
        ),
        (
            {"intervention": {"stateBackend": "sqlite", "replicas": 1}},
            "intervention.autoscaling.enabled must be false",
        ),
        (
            {"intervention": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}},
            "minReplicas (5) must not exceed maxReplicas (2)",
        ),
    ],
)
def test_impossible_settings_fail_with_an_actionable_message(values, message) -> None:
    with pytest.raises(helm.HelmRenderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render_chart(values)


def test_service_can_be_switched_off() -> None:
    objects = render_chart({"intervention": {"enabled": False}})
    assert not find(objects, "Deployment", "intervention")
    assert not find(objects, "Service")
    env = find(objects, "Deployment", "streaming")[0]["spec"]["template"]["spec"]["containers"][0]
    assert "FRAUDWATCH_INTERVENTION_URL" not in {e["name"] for e in env["env"]}
