"""What a platform engineer relies on, per component, for the dev and prod stacks
(the program runs under pulumi.runtime.set_mocks: no Kubernetes API server runs here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from fraudwatch_infra.namespaces import CONCERNS
from fraudwatch_infra.network_policy import FLOWS
from platform_policies import pod_specs
from platform_render import (
    API_TOKEN_HASHES,
    TABLEAU_PAT_SECRET,
    Rendering,
    is_secret,
    plain_strings,
    render,
    stack_config,
)


def spec(r: Any) -> dict[str, Any]:
    return r.inputs["spec"]


# --- streaming -------------------------------------------------------------------------------


def test_prod_kafka_has_three_brokers_and_min_insync_replicas_two(prod: Rendering) -> None:
    brokers = prod.one("KafkaNodePool", "brokers")
    assert spec(brokers)["replicas"] == 3
    assert spec(brokers)["roles"] == ["broker"]
    kafka = spec(prod.one("Kafka", "fraudwatch"))["kafka"]
    assert kafka["config"]["min.insync.replicas"] == 2
    assert kafka["config"]["default.replication.factor"] == 3
    assert spec(prod.one("KafkaNodePool", "controllers"))["replicas"] == 3


def test_kafka_runs_kraft_with_a_tls_scram_listener_only(each_stack: Rendering) -> None:
    kafka = each_stack.one("Kafka", "fraudwatch")
    annotations = kafka.inputs["metadata"]["annotations"]
    assert annotations["strimzi.io/kraft"] == "enabled"
    assert "zookeeper" not in spec(kafka)
    listeners = spec(kafka)["kafka"]["listeners"]
    assert [(x["port"], x["tls"], x["authentication"]["type"]) for x in listeners] == [
        (9093, True, "scram-sha-512")
    ]


def test_topics_take_partitions_and_retention_from_config(each_stack: Rendering) -> None:
    topics = stack_config(each_stack.stack)["streaming"]["topics"]
    for name, wanted in topics.items():
        topic = spec(each_stack.one("KafkaTopic", f"fraudwatch.{name}"))
        assert topic["partitions"] == wanted["partitions"]
        assert topic["config"]["retention.ms"] == wanted["retentionHours"] * 3_600_000


def _operations(r: Rendering, user: str) -> set[tuple[str, str, str]]:
    acls = spec(r.one("KafkaUser", user))["authorization"]["acls"]
    return {
        (a["resource"]["type"], a["resource"]["name"], op) for a in acls for op in a["operations"]
    }


def test_each_kafka_user_may_only_touch_its_topics(prod: Rendering) -> None:
    events = {"fraudwatch.transactions", "fraudwatch.logins", "fraudwatch.api-calls"}
    dead_letter = "fraudwatch.dead-letter"
    assert {u.inputs["metadata"]["name"] for u in prod.of_kind("KafkaUser")} == {
        "fraudwatch-scorer",
        "fraudwatch-generator",
    }
    generator = _operations(prod, "fraudwatch-generator")
    assert {n for kind, n, op in generator if op == "Write"} == events
    assert not any(op == "Read" for _, _, op in generator), "the generator must not read"
    assert ("topic", dead_letter, "Describe") in generator  # it looks all topics up
    scorer = _operations(prod, "fraudwatch-scorer")
    assert {n for kind, n, op in scorer if kind == "topic" and op == "Read"} == events
    assert {n for kind, n, op in scorer if op == "Write"} == {dead_letter}
    # Spark's Kafka source: consumer groups "spark-kafka-source-<uuid>..."
    assert ("group", "spark-kafka-source", "Read") in scorer


def test_workloads_get_the_kafka_password_of_the_scorer_user(prod: Rendering) -> None:
    values = prod.one("Release", "fraudwatch").inputs["values"]["streaming"]
    assert values["kafka"]["username"] == "fraudwatch-scorer"
    secret = prod.one("Secret", values["existingSecret"])
    # The file names the product reads from $FRAUDWATCH_SECRETS_DIR.
    assert set(secret.inputs["stringData"]["value"]) == {"kafka-password", "es-password"}
    intervention = prod.one("Secret", "fraudwatch-intervention")
    assert "state-url" in intervention.inputs["stringData"]["value"]  # FRAUDWATCH_STATE_URL


# --- search ----------------------------------------------------------------------------------


def _master_eligible(r: Rendering) -> int:
    es = spec(r.one("Elasticsearch", "fraudwatch"))
    return sum(ns["count"] for ns in es["nodeSets"] if "master" in ns["config"]["node.roles"])


def test_prod_elasticsearch_has_three_master_eligible_nodes(
    prod: Rendering, dev: Rendering
) -> None:
    assert _master_eligible(prod) == 3
    assert _master_eligible(dev) == 1


def test_elasticsearch_http_uses_the_platform_ca_certificate(each_stack: Rendering) -> None:
    es = spec(each_stack.one("Elasticsearch", "fraudwatch"))
    secret_name = es["http"]["tls"]["certificate"]["secretName"]
    cert = each_stack.one("Certificate", secret_name)
    assert spec(cert)["issuerRef"] == {"name": "fraudwatch-ca", "kind": "ClusterIssuer"}


def test_bootstrap_job_applies_every_definition_after_green(
    prod: Rendering, dashboards_dir: Path
) -> None:
    files = [p for p in (dashboards_dir / "elasticsearch").rglob("*.json")]
    config_maps = [c for c in prod.of_kind("ConfigMap") if c.name == "es-definitions"]
    assert len(config_maps) == 1
    data = config_maps[0].inputs["data"]
    assert "wait_for_status=green" in data["apply.sh"]
    definitions = sorted(k for k in data if k.endswith(".json"))
    assert len(definitions) == len([p for p in files if "watches" not in p.parts])
    # ILM policies first: templates refer to them.
    assert definitions[0].startswith("1-ilm--")
    job = [j for j in prod.of_kind("Job") if j.name == "es-bootstrap"]
    assert len(job) == 1


# --- documents -------------------------------------------------------------------------------


def test_mongodb_replica_set_size_tls_and_backups(prod: Rendering, dev: Rendering) -> None:
    p = spec(prod.one("PerconaServerMongoDB", "fraudwatch-mongo"))
    assert p["replsets"][0]["size"] == 3
    assert p["tls"]["mode"] == "requireTLS"
    assert p["backup"]["storages"]["ceph"]["s3"]["credentialsSecret"] == "fraudwatch-s3"
    assert p["unsafeFlags"]["replsetSize"] is False
    d = spec(dev.one("PerconaServerMongoDB", "fraudwatch-mongo"))
    assert d["replsets"][0]["size"] == 1
    assert d["unsafeFlags"]["replsetSize"] is True


# --- storage ---------------------------------------------------------------------------------


def test_s3_credentials_reach_every_consumer_as_a_secret(prod: Rendering) -> None:
    holders = {
        s.inputs["metadata"]["namespace"]
        for s in prod.of_kind("Secret")
        if s.inputs["metadata"]["name"] == "fraudwatch-s3"
    }
    assert holders == {
        CONCERNS[c].namespace for c in ("workloads", "compute", "orchestration", "bi", "documents")
    }
    store = spec(prod.one("CephObjectStore", "fraudwatch"))
    assert store["gateway"]["securePort"] == 443
    assert store["dataPool"]["replicated"]["size"] == 3
    cluster = spec(prod.one("CephCluster", "fraudwatch"))
    assert cluster["mon"]["count"] == 3
    assert cluster["disruptionManagement"]["managePodBudgets"] is True


def test_prod_encrypts_every_osd_at_rest_and_dev_says_it_does_not(
    prod: Rendering, dev: Rendering
) -> None:
    """Every block volume (Kafka, Elasticsearch, MongoDB) and S3 object lives on an OSD: dm-crypt
    under each OSD is what encrypts them at rest. On the wire Ceph requires msgr2 secure mode."""
    for rendering, encrypted in ((prod, "true"), (dev, "false")):
        cluster = spec(rendering.one("CephCluster", "fraudwatch"))
        assert cluster["storage"]["config"] == {"encryptedDevice": encrypted}
        assert cluster["network"]["connections"] == {
            "encryption": {"enabled": True},
            "requireMsgr2": True,
        }


def test_mongodb_data_files_are_encrypted_at_rest_with_their_own_key(
    each_stack: Rendering,
) -> None:
    mongo = spec(each_stack.one("PerconaServerMongoDB", "fraudwatch-mongo"))
    assert mongo["secrets"]["encryptionKey"] == "fraudwatch-mongo-mongodb-encryption-key"
    for replset in mongo["replsets"]:
        assert "enableEncryption: true" in replset["configuration"]


# --- compute, orchestration, bi, workloads ----------------------------------------------------


def test_batch_scoring_is_scheduled_on_spark_with_configured_executors(prod: Rendering) -> None:
    app = spec(prod.one("ScheduledSparkApplication", "fraudwatch-batch-score"))
    template = app["template"]
    assert app["schedule"] == stack_config("prod")["compute"]["schedule"]
    assert template["executor"]["instances"] == 8
    assert template["arguments"][:3] == ["score", "--engine", "spark"]
    assert template["driver"]["serviceAccount"] == "fraudwatch-spark"


def test_airflow_uses_kubernetes_executor_and_generated_secrets(prod: Rendering) -> None:
    release = prod.one("Release", "airflow").inputs
    values = release["values"]
    assert values["executor"] == "KubernetesExecutor"
    assert values["data"]["metadataSecretName"] == "airflow-metadata"
    assert values["postgresql"]["enabled"] is True
    assert "connection" not in json.dumps(values)  # no inline credentials


def test_tableau_cronjob_publishes_with_pat_from_a_secret(prod: Rendering, dev: Rendering) -> None:
    cron = prod.one("CronJob", "tableau-publish")
    container = pod_specs(cron.inputs)[0]["containers"][0]
    assert container["args"][:3] == ["publish", "--to", "tableau"]
    env = {e["name"]: e for e in container["env"]}
    assert env["TABLEAU_SERVER_URL"]["value"] == "https://tableau.example.com"
    assert env["TABLEAU_SITE"]["value"] == "fraud"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["tableau"] == env["FRAUDWATCH_SECRETS_DIR"]["value"]
    volumes = {v["name"]: v for v in pod_specs(cron.inputs)[0]["volumes"]}
    assert volumes["tableau"]["secret"]["secretName"] == "tableau-pat"
    assert not dev.of_kind("CronJob"), "bi.enabled is false in dev"


def test_workloads_chart_gets_values_from_config(prod: Rendering) -> None:
    release = prod.one("Release", "fraudwatch").inputs
    assert release["chart"] == "../charts/fraudwatch"
    values = release["values"]
    assert values["image"] == {
        "repository": "ghcr.io/fraudwatch/fraudwatch",
        "tag": "0.1.0",
        "pullPolicy": "IfNotPresent",
    }
    kafka = values["streaming"]["kafka"]
    assert kafka["bootstrapServers"].endswith(":9093")
    assert kafka["partitions"] == 12
    assert (kafka["securityProtocol"], kafka["saslMechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert kafka["topicPrefix"] == "fraudwatch."
    assert values["streaming"]["tls"]["caSecret"] == "fraudwatch-client-tls"
    assert values["streaming"]["elasticsearchUsername"] == "fraudwatch-writer"
    assert "config" not in values  # not a chart value (its schema rejects unknown keys)
    assert values["intervention"]["replicas"] == 3
    decisions = values["intervention"]["decisions"]
    assert decisions["enabled"] is True
    assert decisions["autoscaling"] == {"enabled": True, "minReplicas": 2, "maxReplicas": 6}
    assert decisions["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
    # The decisions score with the registry the streaming scorer follows.
    assert decisions["models"] == {"existingClaim": values["streaming"]["models"]["existingClaim"]}
    assert values["s3"]["existingSecret"] == "fraudwatch-s3"
    assert values["batch"]["enabled"] is False


# --- visualisation ---------------------------------------------------------------------------


#: The committed dashboards (dashboards/grafana/<name>.json) and alerting provisioning files,
#: listed here rather than found with the program's own dashboard_files / alerting_documents:
#: a dashboard or document the program stops deploying fails these tests.
DASHBOARDS = ("anomaly-overview", "interventions", "pipeline-health", "platform")
ALERTING_FILES = ("provisioning/alerting/fraudwatch.yaml",)


def test_one_grafana_dashboard_per_json_file_with_the_same_json(
    prod: Rendering, dashboards_dir: Path
) -> None:
    dashboards = {
        d.inputs["metadata"]["name"]: spec(d)["json"] for d in prod.of_kind("GrafanaDashboard")
    }
    assert dashboards == {
        name: (dashboards_dir / "grafana" / f"{name}.json").read_text(encoding="utf-8")
        for name in DASHBOARDS
    }


def test_alerting_comes_from_the_provisioning_yaml(prod: Rendering, dashboards_dir: Path) -> None:
    docs = [
        doc
        for name in ALERTING_FILES
        for doc in yaml.safe_load_all((dashboards_dir / "grafana" / name).read_text("utf-8"))
    ]
    groups = sum(len(d.get("groups", [])) for d in docs)
    assert len(prod.of_kind("GrafanaAlertRuleGroup")) == groups > 0
    assert len(prod.of_kind("GrafanaNotificationPolicy")) == sum(
        len(d.get("policies", [])) for d in docs
    )
    for point in prod.of_kind("GrafanaContactPoint"):
        assert "FRAUDWATCH_INTERVENTION_URL" not in json.dumps(spec(point))
    urls = [spec(p)["settings"].get("url", "") for p in prod.of_kind("GrafanaContactPoint")]
    assert any("fraudwatch-intervention.fraudwatch-workloads.svc" in u for u in urls)


# --- cross-cutting ---------------------------------------------------------------------------


def test_every_namespace_has_default_deny(each_stack: Rendering) -> None:
    namespaces = {n.inputs["metadata"]["name"] for n in each_stack.of_kind("Namespace")}
    deny = {
        p.inputs["metadata"]["namespace"]
        for p in each_stack.of_kind("NetworkPolicy")
        if p.inputs["metadata"]["name"] == "default-deny"
        and spec(p) == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    }
    assert namespaces and namespaces == deny


def test_only_the_architectures_flows_are_allowed(prod: Rendering) -> None:
    """Ingress to MongoDB comes only from the workloads, Spark (and Mongo itself)."""
    sources = set()
    for policy in prod.of_kind("NetworkPolicy"):
        meta = policy.inputs["metadata"]
        if meta["namespace"] != "fraudwatch-documents":
            continue
        for rule in spec(policy).get("ingress", []):
            for peer in rule.get("from", []):
                sources.add(
                    peer.get("namespaceSelector", {})
                    .get("matchLabels", {})
                    .get("kubernetes.io/metadata.name", "same-namespace")
                )
    assert sources == {"same-namespace", "fraudwatch-workloads", "fraudwatch-compute"}
    assert all(f.why for f in FLOWS)


def test_declared_pods_have_limits_and_run_as_non_root(each_stack: Rendering) -> None:
    """Core workloads and the pod templates the program hands to operators."""
    checked = 0
    for r in each_stack.core:
        for pod in pod_specs(r.inputs):
            assert pod["securityContext"]["runAsNonRoot"] is True, r.name
            for c in pod["containers"]:
                assert {"cpu", "memory"} <= set(c["resources"]["limits"]), r.name
                assert c["securityContext"]["runAsNonRoot"] is True, r.name
                checked += 1
    for pool in each_stack.of_kind("KafkaNodePool"):
        assert set(spec(pool)["resources"]["limits"]) == {"cpu", "memory"}
        assert spec(pool)["template"]["pod"]["securityContext"]["runAsNonRoot"] is True
        checked += 1
    for node_set in spec(each_stack.one("Elasticsearch", "fraudwatch"))["nodeSets"]:
        pod = node_set["podTemplate"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert set(pod["containers"][0]["resources"]["limits"]) == {"cpu", "memory"}
        checked += 1
    for replset in spec(each_stack.one("PerconaServerMongoDB", "fraudwatch-mongo"))["replsets"]:
        assert set(replset["resources"]["limits"]) == {"cpu", "memory"}
        assert replset["containerSecurityContext"]["runAsNonRoot"] is True
        checked += 1
    grafana = spec(each_stack.one("Grafana", "fraudwatch"))["deployment"]["spec"]["template"]
    assert grafana["spec"]["securityContext"]["runAsNonRoot"] is True
    assert set(grafana["spec"]["containers"][0]["resources"]["limits"]) == {"cpu", "memory"}
    spark = spec(each_stack.one("ScheduledSparkApplication", "fraudwatch-batch-score"))
    for role in ("driver", "executor"):
        part = spark["template"][role]
        assert part["securityContext"]["runAsNonRoot"] is True
        assert part["coreLimit"] and part["memory"]
    assert checked >= 5


def test_prod_has_disruption_budgets_for_stateful_components(
    prod: Rendering, dev: Rendering
) -> None:
    es = spec(prod.one("Elasticsearch", "fraudwatch"))
    assert es["podDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    mongo = spec(prod.one("PerconaServerMongoDB", "fraudwatch-mongo"))
    assert mongo["replsets"][0]["podDisruptionBudget"] == {"maxUnavailable": 1}
    kafka = spec(prod.one("Kafka", "fraudwatch"))["kafka"]
    assert kafka["template"]["podDisruptionBudget"]["maxUnavailable"] == 1
    assert spec(dev.one("Elasticsearch", "fraudwatch"))["podDisruptionBudget"] == {}


def test_no_secret_value_appears_in_plain_text(each_stack: Rendering) -> None:
    secrets = [s for s in each_stack.secret_values if len(s) >= 8]
    assert len(secrets) > 10
    leaks = [
        (r.type, r.name)
        for r in each_stack.resources
        for text in plain_strings(r.inputs)
        for s in secrets
        if s in text
    ]
    assert leaks == []
    # and the ones that reach a Secret are marked secret there
    secret_objects = each_stack.of_kind("Secret")
    assert secret_objects and all(is_secret(s.inputs["stringData"]) for s in secret_objects)


def test_config_secrets_reach_their_secret_only(prod: Rendering) -> None:
    pat = prod.one("Secret", "tableau-pat")
    assert pat.inputs["stringData"]["value"]["secret"] == TABLEAU_PAT_SECRET
    intervention = prod.one("Secret", "fraudwatch-intervention")
    assert intervention.inputs["stringData"]["value"]["api-token-hashes"] == API_TOKEN_HASHES


def _comparable(r: Rendering) -> list[tuple[str, str, str]]:
    def scrub(value: Any) -> Any:
        if is_secret(value):
            return "<secret>"
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return sorted(
        (x.type, x.name, json.dumps(scrub(x.inputs), sort_keys=True)) for x in r.resources
    )


def test_stack_name_changes_nothing_only_config_does(prod: Rendering, dashboards_dir: Path) -> None:
    """The prod configuration rendered under the stack name `dev` gives the same resources:
    no code path looks at the stack name, so dev and prod differ only where config says."""
    same_config_other_name = render("prod", stack_name="dev", dashboards_dir=dashboards_dir)
    assert _comparable(same_config_other_name) == _comparable(prod)


def test_dev_and_prod_differ_in_the_expected_resources(dev: Rendering, prod: Rendering) -> None:
    dev_by_key = {(t, n): i for t, n, i in _comparable(dev)}
    prod_by_key = {(t, n): i for t, n, i in _comparable(prod)}
    differing = {
        k[0].rsplit(":", 1)[-1]
        for k in dev_by_key.keys() & prod_by_key.keys()
        if dev_by_key[k] != prod_by_key[k]
    }
    only_prod = {k[0].rsplit(":", 1)[-1] for k in prod_by_key.keys() - dev_by_key.keys()}
    assert differing == {
        "CephCluster",
        "CephBlockPool",
        "CephObjectStore",
        "StorageClass",
        "KafkaNodePool",
        "Kafka",
        "KafkaTopic",
        "PerconaServerMongoDB",
        "Elasticsearch",
        "ScheduledSparkApplication",
        "Release",
        "NetworkPolicy",
        # The admission policies bind to the bi namespace too where it exists.
        "ValidatingAdmissionPolicyBinding",
    }
    # bi.enabled is false in dev: its namespace, policies, secrets and CronJob exist only in prod.
    assert only_prod <= {
        "Namespace",
        "NetworkPolicy",
        "Secret",
        "CronJob",
        "Certificate",
        "ConcernNamespace",
        "Bi",
    }
