"""Every field an alert rule, dashboard panel or watch queries exists in the index mapping."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from dashboards_fixtures import DASHBOARDS
from fraudwatch.elasticsearch.definitions import index_template_mappings, mapped_fields

MAPPINGS = index_template_mappings(DASHBOARDS / "elasticsearch")
FIELDS_BY_RECORD_TYPE = {
    "transaction": mapped_fields(MAPPINGS["fraudwatch-transactions"]),
    "user": mapped_fields(MAPPINGS["fraudwatch-users"]),
    "audit": mapped_fields(MAPPINGS["fraudwatch-audit"]),
}
LUCENE_FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*):")


def _fields_of_query(model: dict[str, Any]) -> tuple[str, set[str]]:
    query = model.get("query", "")
    (record_type,) = re.findall(r"record_type:(\w+)", query)
    fields = set(LUCENE_FIELD.findall(query)) | {model["timeField"]}
    fields |= {agg["field"] for agg in model.get("bucketAggs", []) if "field" in agg}
    fields |= {m["field"] for m in model.get("metrics", []) if "field" in m}
    return record_type, fields


def test_every_alert_rule_uses_only_mapped_fields() -> None:
    document = yaml.safe_load(
        (DASHBOARDS / "grafana/provisioning/alerting/fraudwatch.yaml").read_text()
    )
    checked = 0
    for group in document["groups"]:
        for rule in group["rules"]:
            for data in rule["data"]:
                if data["datasourceUid"] != "elasticsearch":
                    continue
                record_type, fields = _fields_of_query(data["model"])
                unknown = fields - FIELDS_BY_RECORD_TYPE[record_type]
                assert not unknown, f"rule {rule['uid']} queries unmapped fields {unknown}"
                checked += 1
    assert checked == 2  # high score + surge


def test_every_dashboard_panel_uses_only_mapped_fields() -> None:
    checked = 0
    for path in sorted((DASHBOARDS / "grafana").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                if target["datasource"]["uid"] != "elasticsearch":
                    continue
                record_type, fields = _fields_of_query(target)
                unknown = fields - FIELDS_BY_RECORD_TYPE[record_type]
                assert not unknown, f"{path.name}/{panel['title']} queries unmapped {unknown}"
                checked += 1
    assert checked >= 9


def test_the_watch_queries_mapped_fields() -> None:
    watch = json.loads((DASHBOARDS / "elasticsearch/watches/high_anomaly_score.json").read_text())
    assert watch["trigger"]["schedule"]["interval"] == "1m"
    # Its threshold: test_thresholds_one_home.py.
    body = watch["input"]["search"]["request"]["body"]
    fields = set(body["_source"])
    for clause in body["query"]["bool"]["filter"]:
        for spec in clause.values():
            fields |= set(spec)
    fields |= {next(iter(s)) for s in body["sort"]}
    assert not fields - FIELDS_BY_RECORD_TYPE["transaction"]
    webhook = watch["actions"]["intervention_service"]["webhook"]
    assert webhook["url"].endswith("/v1/hooks/watcher")
    assert "email" in watch["actions"]["notify_oncall"]


def test_mappings_are_strict_with_the_contract_types() -> None:
    tx = MAPPINGS["fraudwatch-transactions"]
    assert tx["dynamic"] == "strict"
    props = tx["properties"]
    assert props["ts"]["type"] == "date"
    assert props["ip"]["type"] == "ip"
    assert props["ensemble_score"]["type"] == "double"
    assert props["user_id"]["type"] == "long"
    for keyword in ("persona", "scenario", "tx_type", "country", "model_version"):
        assert props[keyword]["type"] == "keyword"
