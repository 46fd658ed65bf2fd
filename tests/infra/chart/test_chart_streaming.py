"""The streaming scorer: one driver whose Spark parallelism and CPU follow the Kafka partitions."""

from __future__ import annotations

import helm_python as helm
import pytest
from chart_render import find, pod_spec, render_chart


def _scorer(objects):
    (deployment,) = find(objects, "Deployment", "streaming")
    (container,) = pod_spec(deployment)["containers"]
    return deployment, container, {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize(("partitions", "cpu_request"), [(1, "500m"), (3, "1500m"), (12, "6000m")])
def test_parallelism_and_cpu_follow_kafka_partitions(partitions: int, cpu_request: str) -> None:
    objects = render_chart({"streaming": {"kafka": {"partitions": partitions}}})
    deployment, container, env = _scorer(objects)
    assert env["FRAUDWATCH_SPARK_MASTER"] == f"local[{partitions}]"
    assert container["resources"]["requests"]["cpu"] == cpu_request
    # One driver owns the query and its checkpoint: more replicas would score events twice.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def _env_entries(container):
    return {e["name"]: e for e in container["env"]}


def test_runs_stream_with_the_products_variables(rendered) -> None:
    objects = rendered["default"]
    _, container, env = _scorer(objects)
    assert container["args"] == ["stream"]
    assert env["FRAUDWATCH_KAFKA_BOOTSTRAP"] == "fraudwatch-kafka-bootstrap:9092"
    assert env["FRAUDWATCH_TOPIC_PREFIX"] == "fraudwatch."
    assert env["FRAUDWATCH_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert "FRAUDWATCH_KAFKA_USERNAME" not in env
    assert env["FRAUDWATCH_STREAM_CHECKPOINT"].startswith("s3://")
    assert env["FRAUDWATCH_STREAM_STATE_DIR"] == "/var/lib/fraudwatch/stream-state"
    assert env["FRAUDWATCH_MODEL_REGISTRY"] == "/var/lib/fraudwatch/models"
    assert "FRAUDWATCH_STREAM_MODELS_DIR" not in env  # exactly one of the two
    # Without a token Secret the scorer would stop at start, so it does not forward.
    assert "FRAUDWATCH_INTERVENTION_URL" not in env


def test_probes_watch_the_spark_ui_which_is_switched_on(rendered) -> None:
    _, container, env = _scorer(rendered["default"])
    assert env["FRAUDWATCH_SPARK_UI"] == "true"
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("spark-ui", 4040)
    assert container["livenessProbe"]["tcpSocket"]["port"] == "spark-ui"
    assert container["readinessProbe"]["tcpSocket"]["port"] == "spark-ui"


def test_forwards_to_the_intervention_service_with_a_token_from_a_secret(rendered) -> None:
    objects = rendered["production"]
    _, container, env = _scorer(objects)
    (service,) = find(objects, "Service", "intervention")
    assert env["FRAUDWATCH_INTERVENTION_URL"] == f"http://{service['metadata']['name']}:8000"
    token = _env_entries(container)["FRAUDWATCH_INTERVENTION_TOKEN"]
    assert "value" not in token
    assert token["valueFrom"]["secretKeyRef"] == {
        "name": "fraudwatch-streaming",
        "key": "intervention-token",
    }


def test_production_mounts_the_streaming_secret_and_s3_credentials(rendered) -> None:
    deployment, container, env = _scorer(rendered["production"])
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert volumes["secrets"]["secret"]["secretName"] == "fraudwatch-streaming"
    # The product reads kafka-password and es-password from $FRAUDWATCH_SECRETS_DIR.
    assert env["FRAUDWATCH_SECRETS_DIR"] == mounts["secrets"]["mountPath"]
    assert volumes["s3-credentials"]["secret"]["secretName"] == "fraudwatch-s3"
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/var/run/secrets/s3/credentials"
    assert env["AWS_ENDPOINT_URL"] == "https://rgw.storage.svc:443"
    keys = _env_entries(container)
    assert keys["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "fraudwatch-s3"
    assert keys["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "fraudwatch-s3"


def test_production_authenticates_to_kafka_and_elasticsearch_with_the_platform_ca(
    rendered,
) -> None:
    deployment, container, env = _scorer(rendered["production"])
    assert env["FRAUDWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["FRAUDWATCH_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["FRAUDWATCH_KAFKA_USERNAME"] == "fraudwatch-scorer"
    assert env["FRAUDWATCH_ES_USERNAME"] == "fraudwatch-writer"
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert volumes["tls"]["secret"]["secretName"] == "fraudwatch-client-tls"
    assert volumes["tls"]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    ca_file = f"{mounts['tls']['mountPath']}/ca.crt"
    assert env["FRAUDWATCH_KAFKA_CA_FILE"] == env["FRAUDWATCH_ES_CA_FILE"] == ca_file


def test_user_history_is_on_a_kept_persistent_volume(rendered) -> None:
    objects = rendered["production"]
    deployment, container, env = _scorer(objects)
    (claim,) = find(objects, "PersistentVolumeClaim", "streaming")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert (
        volumes["stream-state"]["persistentVolumeClaim"]["claimName"] == (claim["metadata"]["name"])
    )
    assert mounts["stream-state"]["mountPath"] == env["FRAUDWATCH_STREAM_STATE_DIR"]
    assert volumes["models"]["persistentVolumeClaim"] == {
        "claimName": "fraudwatch-models",
        "readOnly": True,
    }
    assert mounts["models"]["mountPath"] == env["FRAUDWATCH_MODEL_REGISTRY"]


def test_a_fixed_model_version_replaces_the_registry() -> None:
    objects = render_chart(
        {"streaming": {"models": {"fixedVersionDir": "/var/lib/fraudwatch/models/versions/v1"}}}
    )
    _, _, env = _scorer(objects)
    assert env["FRAUDWATCH_STREAM_MODELS_DIR"] == "/var/lib/fraudwatch/models/versions/v1"
    assert "FRAUDWATCH_MODEL_REGISTRY" not in env


@pytest.mark.parametrize(
    ("kafka", "secret", "message"),
    [
        ({"securityProtocol": "SASL_SSL"}, "fraudwatch-streaming", "streaming.kafka.username"),
        ({"securityProtocol": "SASL_SSL", "username": "u"}, "", "kafka-password"),
    ],
)
def test_sasl_without_a_user_or_password_fails_at_render(kafka, secret, message) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render_chart({"streaming": {"kafka": kafka, "existingSecret": secret}})


def test_scorer_accepts_no_inbound_traffic(rendered) -> None:
    (policy,) = find(rendered["default"], "NetworkPolicy", "streaming")
    assert "Ingress" in policy["spec"]["policyTypes"]
    assert not policy["spec"].get("ingress")
