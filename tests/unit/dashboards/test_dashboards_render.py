"""Rendering is reproducible and what it renders is valid for Grafana."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import jsonschema
import yaml
from dashboards_fixtures import DASHBOARDS
from grafana_foundation_sdk.models import dashboard as dashboard_model

RENDER = runpy.run_path(str(DASHBOARDS / "render.py"))
GRAFANA = DASHBOARDS / "grafana"
KNOWN_UIDS = {"elasticsearch", "prometheus", "__expr__"}

# Grafana's file provisioning formats for alerting and datasources, as documented
# ("Provision alerting resources using files", "Provision Grafana: data sources").
_RULE = {
    "type": "object",
    "required": ["uid", "title", "condition", "data", "noDataState", "execErrState", "for"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "condition": {"type": "string"},
        "noDataState": {"enum": ["OK", "NoData", "Alerting", "KeepLast"]},
        "execErrState": {"enum": ["OK", "Error", "Alerting", "KeepLast"]},
        "for": {"type": "string", "pattern": "^[0-9]+[smhd]$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "data": {
            "type": "array",
            "minItems": 2,
            "items": {
                "type": "object",
                "required": ["refId", "datasourceUid", "relativeTimeRange", "model"],
                "properties": {
                    "datasourceUid": {"enum": sorted(KNOWN_UIDS)},
                    "relativeTimeRange": {
                        "type": "object",
                        "required": ["from", "to"],
                        "properties": {"from": {"type": "integer"}, "to": {"type": "integer"}},
                    },
                },
            },
        },
    },
}
ALERTING_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "groups", "contactPoints", "policies"],
    "properties": {
        "apiVersion": {"const": 1},
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["orgId", "name", "folder", "interval", "rules"],
                "properties": {
                    "interval": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                    "rules": {"type": "array", "minItems": 1, "items": _RULE},
                },
            },
        },
        "contactPoints": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["orgId", "name", "receivers"],
                "properties": {
                    "receivers": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["uid", "type", "settings"],
                            "properties": {"type": {"enum": ["webhook", "email"]}},
                        },
                    }
                },
            },
        },
        "policies": {
            "type": "array",
            "items": {"type": "object", "required": ["orgId", "receiver"]},
        },
    },
}
DATASOURCE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "datasources"],
    "properties": {
        "datasources": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "uid", "type", "access", "url"],
                "properties": {"access": {"enum": ["proxy", "direct"]}},
            },
        }
    },
}


#: Every file render.py generates, listed here rather than taken from render.py itself: a
#: dashboard or document the renderer stops generating fails the staleness test.
GENERATED = {
    "grafana/anomaly-overview.json",
    "grafana/interventions.json",
    "grafana/pipeline-health.json",
    "grafana/platform.json",
    "grafana/provisioning/alerting/fraudwatch.yaml",
    "grafana/provisioning/datasources/fraudwatch.yaml",
    "tableau/fraudwatch.tds",
}


def test_committed_files_are_not_stale(tmp_path: Path) -> None:
    """A fresh render into a scratch directory equals what is committed."""
    assert set(RENDER["rendered_files"]()) == GENERATED
    RENDER["render"](tmp_path)
    stale = [
        relative
        for relative in RENDER["rendered_files"]()
        if (tmp_path / relative).read_text() != (DASHBOARDS / relative).read_text()
    ]
    assert not stale, f"stale generated files {stale}: run `python dashboards/render.py`"


def test_rendering_twice_gives_identical_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    RENDER["render"](first)
    RENDER["render"](second)
    for relative in RENDER["rendered_files"]():
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative


def test_every_generated_file_says_how_to_regenerate_it() -> None:
    for relative, content in RENDER["rendered_files"]().items():
        head = content[:400]
        assert "dashboards/render.py" in head, f"{relative} does not name its generator"


def test_dashboards_round_trip_through_the_sdk_types() -> None:
    """Each dashboard parses into the SDK's Dashboard model, and re-encodes to the same panels."""
    files = sorted(GRAFANA.glob("*.json"))
    assert {p.stem for p in files} == {
        "anomaly-overview",
        "interventions",
        "pipeline-health",
        "platform",
    }
    for path in files:
        raw = json.loads(path.read_text())
        model = dashboard_model.Dashboard.from_json(raw)
        assert model.uid == raw["uid"] and model.title == raw["title"]
        assert model.panels and len(model.panels) == len(raw["panels"])
        for panel in raw["panels"]:
            assert panel["datasource"]["uid"] in KNOWN_UIDS, (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == panel["datasource"]["uid"]


def test_dashboard_uids_are_unique_and_panels_do_not_overlap() -> None:
    uids = []
    for path in sorted(GRAFANA.glob("*.json")):
        raw = json.loads(path.read_text())
        uids.append(raw["uid"])
        cells: set[tuple[int, int]] = set()
        for panel in raw["panels"]:
            pos = panel["gridPos"]
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & area, f"{path.name}: {panel['title']} overlaps another panel"
            assert pos["x"] + pos["w"] <= 24
            cells |= area
    assert len(uids) == len(set(uids))


def test_top_users_link_to_the_admin_user_page() -> None:
    raw = json.loads((GRAFANA / "anomaly-overview.json").read_text())
    (panel,) = [p for p in raw["panels"] if p["title"] == "Top anomalous users"]
    links = [
        prop["value"][0]["url"]
        for override in panel["fieldConfig"]["overrides"]
        for prop in override["properties"]
        if prop["id"] == "links"
    ]
    assert links == ["${admin_url}/admin/users/${__value.raw}"]


def test_alerting_provisioning_matches_grafanas_file_format() -> None:
    document = yaml.safe_load((GRAFANA / "provisioning/alerting/fraudwatch.yaml").read_text())
    jsonschema.validate(document, ALERTING_SCHEMA)
    rules = [r for g in document["groups"] for r in g["rules"]]
    for rule in rules:
        refs = [d["refId"] for d in rule["data"]]
        assert rule["condition"] in refs, rule["uid"]
        assert len(refs) == len(set(refs))
    titles = {r["title"] for r in rules}
    assert titles == {
        "High ensemble anomaly score",
        "Surge in anomalies per minute",
        "Streaming scorer lagging",
        "Intervention circuit breaker open",
        "Inline decisions falling back",
    }


def test_contact_point_takes_url_and_token_from_the_environment() -> None:
    document = yaml.safe_load((GRAFANA / "provisioning/alerting/fraudwatch.yaml").read_text())
    (hook,) = [
        r for cp in document["contactPoints"] for r in cp["receivers"] if r["type"] == "webhook"
    ]
    assert hook["settings"]["url"] == "${FRAUDWATCH_INTERVENTION_URL}/v1/hooks/grafana"
    assert hook["settings"]["authorization_credentials"].startswith("${")
    assert hook["disableResolveMessage"] is True


def test_high_score_threshold_is_configurable_and_defaults_to_the_alert_threshold() -> None:
    from fraudwatch.scoring.thresholds import THRESHOLDS

    rules_module = __import__("alert_rules")
    assert THRESHOLDS.alert_at == rules_module.SCORE_THRESHOLD
    rule = rules_module.high_score_rule(0.9)
    assert "ensemble_score:>=0.9" in rule["data"][0]["model"]["query"]


def test_datasources_are_provisioned_with_variables_not_hosts() -> None:
    text = (GRAFANA / "provisioning/datasources/fraudwatch.yaml").read_text()
    document = yaml.safe_load(text)
    jsonschema.validate(document, DATASOURCE_SCHEMA)
    assert {d["uid"] for d in document["datasources"]} == {"elasticsearch", "prometheus"}
    for source in document["datasources"]:
        assert source["url"].startswith("${FRAUDWATCH_"), source["name"]
    for source in document["datasources"]:
        for value in source.get("secureJsonData", {}).values():
            assert value.startswith("${"), "a secret must come from the environment"
        assert "localhost" not in source["url"] and "127.0.0.1" not in source["url"]


def test_pulumi_program_finds_the_same_files() -> None:
    """infra/fraudwatch_infra/visualisation.py's selection: dashboards outside provisioning/,
    alerting documents inside it."""
    dashboards = sorted(
        p
        for p in GRAFANA.rglob("*.json")
        if not {"provisioning", "alerting"} & set(p.relative_to(GRAFANA).parts[:-1])
    )
    assert {p.relative_to(GRAFANA).as_posix() for p in dashboards} == {
        name.removeprefix("grafana/") for name in GENERATED if name.endswith(".json")
    }
    alerting = [
        doc
        for p in (GRAFANA / "provisioning").rglob("*.yaml")
        for doc in yaml.safe_load_all(p.read_text())
        if {"groups", "contactPoints", "policies"} & set(doc)
    ]
    assert len(alerting) == 1
