"""The streaming scorer: one driver whose Spark parallelism and CPU follow the Kafka partitions."""

from __future__ import annotations

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


def test_runs_stream_on_the_three_topics_and_forwards_to_the_intervention_service(rendered):
    objects = rendered["default"]
    _, container, env = _scorer(objects)
    assert container["args"] == ["stream"]
    assert env["FRAUDWATCH_KAFKA_TOPICS"] == "transactions,logins,api-calls"
    (service,) = find(objects, "Service", "intervention")
    assert env["FRAUDWATCH_INTERVENTION_URL"] == f"http://{service['metadata']['name']}:8000"
    assert env["FRAUDWATCH_CHECKPOINT_LOCATION"].startswith("s3://")


def test_production_mounts_the_streaming_secret_and_s3_credentials(rendered) -> None:
    deployment, _, env = _scorer(rendered["production"])
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "fraudwatch-streaming"
    assert volumes["s3-credentials"]["secret"]["secretName"] == "fraudwatch-s3"
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/var/run/secrets/s3/credentials"
    assert env["AWS_ENDPOINT_URL"] == "https://rgw.storage.svc:443"


def test_scorer_accepts_no_inbound_traffic(rendered) -> None:
    (policy,) = find(rendered["default"], "NetworkPolicy", "streaming")
    assert "Ingress" in policy["spec"]["policyTypes"]
    assert not policy["spec"].get("ingress")
