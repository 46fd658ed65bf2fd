"""Drift between committed dashboards/rules and an export of a live Grafana."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from dashboards_fixtures import DASHBOARDS
from fraudwatch.publish.cli import dashboards_app
from typer.testing import CliRunner

GRAFANA = DASHBOARDS / "grafana"


def _export_like_grafana(target: Path) -> Path:
    """What Grafana's API returns for the committed objects: ids, versions and provenance added."""
    (target / "dashboards").mkdir(parents=True)
    for index, path in enumerate(sorted(GRAFANA.glob("*.json"))):
        model = json.loads(path.read_text())
        model.pop("__generated__")
        model.update({"id": 40 + index, "version": 7})
        body = {"dashboard": model, "meta": {"folderUid": "fraudwatch"}}
        (target / "dashboards" / f"{model['uid']}.json").write_text(json.dumps(body))
    document = yaml.safe_load((GRAFANA / "provisioning/alerting/fraudwatch.yaml").read_text())
    rules = []
    for group in document["groups"]:
        for rule in group["rules"]:
            rules.append(
                {
                    **rule,
                    "id": 3,
                    "orgID": 1,
                    "folderUID": "fraudwatch",
                    "ruleGroup": group["name"],
                    "provenance": "file",
                    "updated": "2026-01-01T00:00:00Z",
                }
            )
    (target / "alert-rules.json").write_text(json.dumps(rules))
    return target


def _diff(export: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        dashboards_app, ["diff", "--export", str(export), "--dashboards-dir", str(DASHBOARDS)]
    )
    return result.exit_code, result.output


def test_an_unchanged_grafana_shows_no_drift(tmp_path: Path) -> None:
    code, output = _diff(_export_like_grafana(tmp_path))
    assert code == 0, output
    assert "no drift" in output


def test_a_panel_edited_in_the_ui_is_reported_with_its_diff(tmp_path: Path) -> None:
    export = _export_like_grafana(tmp_path)
    path = export / "dashboards" / "fraudwatch-anomaly-overview.json"
    body = json.loads(path.read_text())
    body["dashboard"]["panels"][0]["title"] = "Scores (edited by hand)"
    path.write_text(json.dumps(body))
    code, output = _diff(export)
    assert code == 1
    assert "dashboard fraudwatch-anomaly-overview differs from the committed one" in output
    assert any(
        line.startswith("+") and '"title": "Scores (edited by hand)"' in line
        for line in output.splitlines()
    )


def test_threshold_change_missing_rule_and_ui_only_dashboard(tmp_path: Path) -> None:
    export = _export_like_grafana(tmp_path)
    rules = json.loads((export / "alert-rules.json").read_text())
    rules[0]["data"][0]["model"]["query"] = "record_type:transaction AND ensemble_score:>=0.5"
    rules = [r for r in rules if r["uid"] != "fraudwatch-streaming-lag"]
    (export / "alert-rules.json").write_text(json.dumps(rules))
    (export / "dashboards" / "scratch.json").write_text(
        json.dumps({"dashboard": {"uid": "scratch", "title": "mine", "panels": []}})
    )
    code, output = _diff(export)
    assert code == 1
    assert "alert-rule fraudwatch-high-ensemble-score differs" in output
    assert "ensemble_score:>=0.5" in output
    assert "alert-rule fraudwatch-streaming-lag is committed but not in Grafana" in output
    assert "dashboard scratch is in Grafana but not committed" in output


def test_diff_without_url_or_token_is_one_line_error() -> None:
    result = CliRunner().invoke(
        dashboards_app,
        ["diff", "--url", "https://grafana.example.test", "--dashboards-dir", str(DASHBOARDS)],
        env={"GRAFANA_TOKEN": ""},
    )
    assert result.exit_code == 2
    assert "no Grafana token" in result.output
