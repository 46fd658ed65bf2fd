"""Grafana dashboards travel in the packaged chart as sidecar ConfigMaps, copied from the
repository's dashboards/grafana/ at packaging time (the chart keeps no committed copy)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from chart_render import CHART_DIR, REPO_ROOT, find, render_chart

PACKAGE_SCRIPT = CHART_DIR / "scripts" / "package_chart.py"
SAMPLE = {
    "title": "Fraud overview",
    "uid": "fraud-overview",
    "panels": [{"type": "timeseries", "title": "Flagged per minute"}],
    "schemaVersion": 39,
}


def _package(dashboards: Path, destination: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(PACKAGE_SCRIPT),
            "--dashboards",
            str(dashboards),
            "--destination",
            str(destination),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def dashboards_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "dashboards" / "grafana"
    folder.mkdir(parents=True)
    (folder / "fraud_overview.json").write_text(json.dumps(SAMPLE))
    return folder


def test_packaged_chart_ships_each_dashboard_as_a_sidecar_configmap(dashboards_dir, tmp_path):
    result = _package(dashboards_dir, tmp_path / "dist")
    assert result.returncode == 0, result.stderr
    assert "1 dashboard(s): fraud_overview.json" in result.stdout
    (archive,) = (tmp_path / "dist").glob("fraudwatch-*.tgz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "fraudwatch/dashboards/fraud_overview.json" in names
    assert not [n for n in names if "/scripts/" in n or "/ci/" in n]

    objects = render_chart(chart=archive)
    (configmap,) = [o for o in find(objects, "ConfigMap", "dashboards")]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"]["grafana_folder"] == "fraudwatch"
    assert configmap["metadata"]["name"] == "fw-fraudwatch-dashboard-fraud-overview"
    assert json.loads(configmap["data"]["fraud_overview.json"]) == SAMPLE


def test_sidecar_label_is_configurable_and_dashboards_can_be_off(dashboards_dir, tmp_path):
    assert _package(dashboards_dir, tmp_path / "dist").returncode == 0
    (archive,) = (tmp_path / "dist").glob("*.tgz")
    objects = render_chart(
        {"dashboards": {"label": "grafana_dash", "labelValue": "yes"}}, chart=archive
    )
    (configmap,) = find(objects, "ConfigMap", "dashboards")
    assert configmap["metadata"]["labels"]["grafana_dash"] == "yes"
    assert not find(
        render_chart({"dashboards": {"enabled": False}}, chart=archive), "ConfigMap", "dashboards"
    )


def test_packaging_refuses_a_broken_dashboard_with_a_clear_message(dashboards_dir, tmp_path):
    (dashboards_dir / "broken.json").write_text("{not json")
    result = _package(dashboards_dir, tmp_path / "dist")
    assert result.returncode == 2
    assert "broken.json: not valid JSON" in result.stderr
    assert not list((tmp_path / "dist").glob("*.tgz"))


def test_packaging_without_dashboards_still_produces_a_chart(tmp_path: Path) -> None:
    result = _package(tmp_path / "missing", tmp_path / "dist")
    assert result.returncode == 0, result.stderr
    assert "no dashboards found" in result.stdout


def test_repository_keeps_no_copy_of_the_dashboards_in_the_chart() -> None:
    assert "/dashboards/" in (CHART_DIR / ".gitignore").read_text().split()
    tracked = subprocess.run(
        ["git", "ls-files", "charts/fraudwatch/dashboards"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tracked == ""
    # Packaging works on a scratch copy: the source tree is never filled with copies.
    assert not (CHART_DIR / "dashboards").exists()
