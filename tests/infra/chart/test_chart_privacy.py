"""The retention job (`fraudwatch privacy retain`, docs/privacy.md) as a CronJob: daily after
the batch scorer, never two at once, the policy from values passed as the pipeline config,
Elasticsearch, S3 and MongoDB reached with the chart's existing settings and Secrets, Kafka
not at all. Its defaults, and the Ansible role's, are the product's (one home:
RetentionPolicy)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import yaml
from chart_render import CHART_DIR, find, pod_spec, render_chart

REPO_ROOT = Path(__file__).resolve().parents[3]
RETENTION_POLICY = REPO_ROOT / "workloads" / "fraudwatch" / "privacy" / "retention_policy.py"


def product_retention_defaults() -> dict[str, int]:
    """RetentionPolicy's field defaults, read from its source (the infra tier does not import
    the product)."""
    tree = ast.parse(RETENTION_POLICY.read_text())
    (policy,) = [
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RetentionPolicy"
    ]
    return {
        node.target.id: ast.literal_eval(node.value)
        for node in policy.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.value is not None
    }


def test_ansible_role_retention_defaults_are_the_products() -> None:
    """The third deployment mode's copy (ansible/roles/fraudwatch, the systemd timer)."""
    defaults = yaml.safe_load(
        (REPO_ROOT / "ansible" / "roles" / "fraudwatch" / "defaults" / "main.yml").read_text()
    )
    role = {
        data_class: defaults[f"fraudwatch_retention_{data_class}_days"]
        for data_class in product_retention_defaults()
    }
    assert role == product_retention_defaults()


def _retain(objects: list[dict]) -> tuple[dict, dict, dict]:
    (cronjob,) = find(objects, "CronJob", "retain")
    (container,) = pod_spec(cronjob)["containers"]
    env = {e["name"]: e for e in container["env"]}
    return cronjob, container, env


def test_chart_retention_defaults_are_the_products() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    product = product_retention_defaults()
    assert set(product) == {"raw_events", "scored_results", "alerts_and_interventions", "audit"}
    assert values["privacy"]["retention"] == product


def test_retain_runs_daily_after_the_batch_scorer_without_overlap(rendered) -> None:
    cronjob, container, env = _retain(rendered["default"])
    (batch,) = find(rendered["default"], "CronJob", "batch")
    assert cronjob["spec"]["schedule"] == "47 3 * * *"
    assert batch["spec"]["schedule"] == "17 2 * * *"
    assert cronjob["spec"]["timeZone"] == batch["spec"]["timeZone"] == "Etc/UTC"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert container["args"] == ["privacy", "retain", "--raw", "s3://fraudwatch/raw"]
    config = json.loads(env["FRAUDWATCH_PIPELINE_CONFIG_JSON"]["value"])
    assert config == {"privacy": {"retention": product_retention_defaults()}}


def test_retain_follows_the_values() -> None:
    objects = render_chart(
        {
            "batch": {"input": "s3://lake/landed"},
            "privacy": {"retention": {"raw_events": 30, "audit": 3650}},
        }
    )
    _, container, env = _retain(objects)
    assert container["args"] == ["privacy", "retain", "--raw", "s3://lake/landed"]
    retention = json.loads(env["FRAUDWATCH_PIPELINE_CONFIG_JSON"]["value"])["privacy"]["retention"]
    assert retention == {**product_retention_defaults(), "raw_events": 30, "audit": 3650}


def test_retain_reaches_elasticsearch_s3_and_mongodb_with_the_existing_secrets(rendered):
    _, _, env = _retain(rendered["production"])
    assert (
        env["FRAUDWATCH_ELASTICSEARCH_URL"]["value"]
        == "https://fraudwatch-es-http.elastic.svc:9200"
    )
    assert env["FRAUDWATCH_ES_USERNAME"]["value"] == "fraudwatch-writer"
    assert env["FRAUDWATCH_ES_CA_FILE"]["value"] == "/var/run/fraudwatch-tls/ca.crt"
    assert env["FRAUDWATCH_SECRETS_DIR"]["value"] == "/var/run/secrets/fraudwatch"
    assert env["FRAUDWATCH_STATE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "fraudwatch-intervention",
        "key": "state-url",
    }
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"]["name"] == "fraudwatch-s3"
    assert env["AWS_ENDPOINT_URL"]["value"] == "https://rgw.storage.svc:443"
    # Kafka is not the job's: Strimzi's KafkaTopic resources own retention.ms.
    assert not any("KAFKA" in name for name in env)
    # Of the streaming Secret only Elasticsearch's password is mounted (not Kafka's).
    (cronjob,) = find(rendered["production"], "CronJob", "retain")
    volumes = {v["name"]: v for v in pod_spec(cronjob)["volumes"]}
    assert volumes["secrets"]["secret"]["items"] == [{"key": "es-password", "path": "es-password"}]


def test_without_mongodb_or_streaming_the_job_keeps_to_s3(rendered) -> None:
    # minimal: sqlite backend (its file is on the service's own volume), no streaming scorer.
    _, _, env = _retain(rendered["minimal"])
    assert "FRAUDWATCH_STATE_URL" not in env
    assert "FRAUDWATCH_ELASTICSEARCH_URL" not in env


def test_retain_pod_is_locked_down_like_the_batch_cronjob(rendered) -> None:
    (batch,) = find(rendered["default"], "CronJob", "batch")
    cronjob, container, _ = _retain(rendered["default"])
    (batch_container,) = pod_spec(batch)["containers"]
    assert pod_spec(cronjob)["securityContext"] == pod_spec(batch)["securityContext"]
    assert container["securityContext"] == batch_container["securityContext"]
    assert pod_spec(cronjob)["automountServiceAccountToken"] is False
    (account,) = find(rendered["default"], "ServiceAccount", "retain")
    assert pod_spec(cronjob)["serviceAccountName"] == account["metadata"]["name"]


def test_network_policy_lets_the_job_reach_s3_elasticsearch_and_mongodb_only(rendered) -> None:
    (policy,) = find(rendered["default"], "NetworkPolicy", "retain")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in policy["spec"]  # nothing calls the job
    ports = {
        p["port"]
        for rule in policy["spec"]["egress"]
        for p in rule.get("ports", [])
        if p["protocol"] == "TCP"
    }
    assert ports == {53, 443, 7480, 9200, 27017}


def test_retain_can_be_switched_off() -> None:
    objects = render_chart({"privacy": {"retain": {"enabled": False}}})
    assert not find(objects, "CronJob", "retain")
    assert not find(objects, "ServiceAccount", "retain")
    assert not find(objects, "NetworkPolicy", "retain")
