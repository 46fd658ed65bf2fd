"""The score thresholds have one home (fraudwatch.scoring.thresholds): every rendered alert
rule, deployment default and consumer agrees with it."""

from __future__ import annotations

from pathlib import Path

import yaml
from fraudwatch.pipelines.config import AlertConditions
from fraudwatch.scoring.thresholds import THRESHOLDS, ScoreThresholds

ROOT = Path(__file__).resolve().parents[3]


def test_the_rendered_grafana_rule_alerts_at_the_alert_threshold():
    rendered = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/alerting/fraudwatch.yaml").read_text()
    )
    queries = [
        data["model"]["query"]
        for group in rendered["groups"]
        for rule in group["rules"]
        for data in rule["data"]
        if "ensemble_score" in str(data.get("model", {}).get("query", ""))
    ]
    assert queries, "no rendered rule compares ensemble_score"
    for query in queries:
        assert f"ensemble_score:>={THRESHOLDS.alert_at}" in query, query


def test_the_ansible_role_deploys_the_policy_defaults():
    defaults = yaml.safe_load((ROOT / "ansible/roles/fraudwatch/defaults/main.yml").read_text())
    assert defaults["fraudwatch_policy_step_up_at"] == THRESHOLDS.step_up_at
    assert defaults["fraudwatch_policy_lock_at"] == THRESHOLDS.lock_at
    for sample in (ROOT / "ansible/inventories/sample").glob("*/group_vars/all/fraudwatch.yml"):
        text = sample.read_text()
        assert f"# fraudwatch_policy_step_up_at: {THRESHOLDS.step_up_at}" in text, sample
        assert f"# fraudwatch_policy_lock_at: {THRESHOLDS.lock_at}" in text, sample


def test_the_pipeline_counts_critical_transactions_at_the_critical_threshold():
    assert AlertConditions().score_threshold == THRESHOLDS.critical_at


def test_the_flag_threshold_is_the_flagged_share_as_a_score():
    assert THRESHOLDS.flag_at == 1 - THRESHOLDS.flagged_share
    assert ScoreThresholds(flagged_share=0.05).flag_at == 0.95


def test_the_intervention_service_defaults_to_the_policy_thresholds(tmp_path):
    from fraudwatch.intervention.config import load_settings

    policy = load_settings(tmp_path / "absent.toml", {"FRAUDWATCH_HOME": str(tmp_path)}).policy
    assert (policy.step_up_at, policy.lock_at) == (THRESHOLDS.step_up_at, THRESHOLDS.lock_at)


def test_the_docs_state_the_shipped_thresholds():
    intervention = (ROOT / "docs/intervention.md").read_text()
    assert f"| policy.step_up_at | {THRESHOLDS.step_up_at} |" in intervention
    assert f"| policy.lock_at | {THRESHOLDS.lock_at} |" in intervention
    dashboards = (ROOT / "docs/dashboards.md").read_text()
    assert f"`ensemble_score >= {THRESHOLDS.alert_at}`" in dashboards


def test_the_watcher_watch_posts_at_the_alert_threshold():
    import json

    watch = json.loads(
        (ROOT / "dashboards/elasticsearch/watches/high_anomaly_score.json").read_text()
    )
    assert watch["metadata"]["threshold"] == THRESHOLDS.alert_at


def test_the_example_pipeline_config_states_the_critical_threshold():
    example = yaml.safe_load(
        (ROOT / "workloads/fraudwatch/pipelines/pipeline.example.yaml").read_text()
    )
    assert example["alerts"]["score_threshold"] == THRESHOLDS.critical_at
