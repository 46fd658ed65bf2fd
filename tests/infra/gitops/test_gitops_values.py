"""Each environment's chart values are accepted by the chart's schema, render objects that
validate, agree with the platform they run on, and reach Argo CD and Flux unchanged."""

from __future__ import annotations

import sys

import pytest
import yaml
from gitops_render import ENVIRONMENTS, GITOPS_DIR, REPO_ROOT, find, kustomize_build, render_chart

sys.path.insert(0, str(REPO_ROOT / "tests" / "infra"))

from product_contract import product_topics, unread_fraudwatch_variables

CHART_VERSION = yaml.safe_load((REPO_ROOT / "charts/fraudwatch/Chart.yaml").read_text())["version"]


def _values(env):
    return yaml.safe_load((GITOPS_DIR / "values" / env / "values.yaml").read_text())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_values_pass_the_chart_schema_and_render(env) -> None:
    objects = render_chart(_values(env))  # schema-checked and every object validated
    assert find(objects, "Service", "intervention")
    assert unread_fraudwatch_variables(objects) == set()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_streaming_parallelism_matches_the_kafka_topics(env) -> None:
    values = _values(env)
    platform = kustomize_build(GITOPS_DIR / "platform" / "overlays" / env)
    topics = {o["metadata"]["name"]: o for o in platform if o["kind"] == "KafkaTopic"}
    wanted = product_topics()
    assert set(topics) == wanted.all
    assert values["streaming"]["kafka"].get("topicPrefix", wanted.prefix) == wanted.prefix
    partitions = {topics[name]["spec"]["partitions"] for name in wanted.event_topics}
    assert partitions == {values["streaming"]["kafka"]["partitions"]}
    (kafka,) = [o for o in platform if o["kind"] == "Kafka"]
    bootstrap = values["streaming"]["kafka"]["bootstrapServers"]
    host, port = bootstrap.split(":")
    assert (
        host == f"{kafka['metadata']['name']}-kafka-bootstrap.{kafka['metadata']['namespace']}.svc"
    )
    (listener,) = [x for x in kafka["spec"]["kafka"]["listeners"] if x["port"] == int(port)]
    # The scorer speaks what the listener expects (no SASL: these listeners authenticate nobody).
    protocol = values["streaming"]["kafka"].get("securityProtocol", "PLAINTEXT")
    assert protocol == ("SSL" if listener["tls"] else "PLAINTEXT")
    if listener["tls"]:
        assert values["streaming"]["tls"]["caSecret"]


def test_prod_scales_out_and_dev_stays_small() -> None:
    prod = render_chart(_values("prod"))
    (hpa,) = find(prod, "HorizontalPodAutoscaler", "intervention")
    assert hpa["spec"]["minReplicas"] >= 3
    assert find(prod, "ScheduledSparkApplication") and not find(prod, "Job")
    dev = render_chart(_values("dev"))
    assert find(dev, "StatefulSet", "intervention") and find(dev, "Job", "generator")
    platform = kustomize_build(GITOPS_DIR / "platform" / "overlays" / "prod")
    (mongo,) = [o for o in platform if o["kind"] == "PerconaServerMongoDB"]
    assert mongo["spec"]["replsets"][0]["size"] == 3


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_flux_reads_the_same_values_file(env) -> None:
    objects = kustomize_build(GITOPS_DIR / "flux" / "apps" / env)
    (release,) = [o for o in objects if o["kind"] == "HelmRelease"]
    (configmap,) = [o for o in objects if o["kind"] == "ConfigMap"]
    (source,) = release["spec"]["valuesFrom"]
    assert (source["kind"], source["name"]) == ("ConfigMap", configmap["metadata"]["name"])
    assert yaml.safe_load(configmap["data"][source["valuesKey"]]) == _values(env)
    assert configmap["metadata"]["namespace"] == release["metadata"]["namespace"]
    if env == "prod":
        (oci,) = [o for o in objects if o["kind"] == "OCIRepository"]
        assert release["spec"]["chartRef"] == {
            "kind": "OCIRepository",
            "name": oci["metadata"]["name"],
        }
        assert oci["spec"]["ref"] == {"tag": CHART_VERSION}
    else:
        assert release["spec"]["chart"]["spec"]["chart"] == "./charts/fraudwatch"
