"""Measured alert precision from verdicts, per model version and day, and its report section
with a chart (only when a dispositions file is given)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fraudwatch.feedback.analyst import AnalystSettings, simulate
from fraudwatch.feedback.labels import Disposition, write_dispositions
from fraudwatch.feedback.precision import alert_precision, budget_metrics, version_precision

from .conftest import run_cli


def _d(user: int, label: str, day: int, version: str = "v1", hour: int = 9) -> Disposition:
    return Disposition(user, label, datetime(2026, 3, day, hour, tzinfo=UTC), None, "", version)


def test_precision_per_version_and_day_counts_each_users_latest_verdict():
    items = [
        _d(1, "fraud", 6),
        _d(2, "legitimate", 6),
        _d(2, "fraud", 6, hour=12),  # the later verdict on the same day counts
        _d(3, "unsure", 6),
        _d(4, "legitimate", 7),
        _d(5, "fraud", 7, "v2"),
    ]
    rows = {(r.model_version, r.day): r.as_json() for r in alert_precision(items)}
    assert rows[("v1", "2026-03-06")] == {
        "model_version": "v1",
        "day": "2026-03-06",
        "fraud": 2,
        "legitimate": 0,
        "unsure": 1,
        "judged": 2,
        "precision": 1.0,
    }
    assert rows[("v1", "2026-03-07")]["precision"] == 0.0
    assert rows[("v2", "2026-03-07")]["precision"] == 1.0
    assert version_precision(items, "v1")["precision"] == round(2 / 3, 4)
    assert version_precision(items, "v3")["judged"] == 0


def test_budget_metrics_on_labelled_users():
    users, flagged = [1, 2, 3, 4, 5], [True, True, False, False, False]
    labels = {1: 1, 2: 0, 3: 1, 9: 1}  # user 9 is not in the run
    assert budget_metrics(users, flagged, labels) == {
        "labelled": 3,
        "confirmed_fraud": 2,
        "labelled_in_budget": 2,
        "precision_at_budget": 0.5,
        "fraud_recall": 0.5,
    }
    assert budget_metrics(users, flagged, {4: 0})["precision_at_budget"] is None


def test_report_has_a_precision_section_with_a_chart_only_with_dispositions(scored, tmp_path):
    file = write_dispositions(tmp_path / "d.parquet", simulate(scored, AnalystSettings(seed=1)))
    plain, with_verdicts = tmp_path / "plain.html", tmp_path / "with.html"
    result = run_cli("report", "--scored", str(scored), "--out", str(plain))
    assert result.returncode == 0, result.stderr
    args = ["report", "--scored", str(scored), "--out", str(with_verdicts)]
    result = run_cli(*args, "--dispositions", str(file))
    assert result.returncode == 0, result.stderr
    assert "measured-precision" not in plain.read_text()
    page = with_verdicts.read_text()
    section = re.search(r"<section id='measured-precision'>(.*?)</section>", page, re.S)
    assert section and "<svg" in section.group(1)
    assert "Measured alert precision by day of verdict" in section.group(1)
    bad = run_cli(*args, "--dispositions", str(tmp_path / "missing.jsonl"))
    assert bad.returncode == 2
    assert "does not exist" in " ".join((bad.stdout + bad.stderr).split())
