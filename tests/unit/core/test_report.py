"""The analyst report: one self-contained HTML file with the charts and the top-100 table."""

from __future__ import annotations

import re

from .conftest import run_cli


def test_report_is_self_contained_with_charts_and_top_table(scored_dir, tmp_path):
    out = tmp_path / "report.html"
    result = run_cli("report", "--scored", str(scored_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert (
        page.count("<svg") >= 8
    )  # daily, 4 score distributions (one figure), 5 groupings, scenarios
    for title in (
        "by hour of day",
        "by transaction type",
        "by persona",
        "by country",
        "by channel",
        "Which scenarios",
        "Score distributions",
        "Top 100 anomalous users",
    ):
        assert title in page, title
    assert not re.search(r"""(src|href)=["']https?://""", page), "no external resources"
    top_rows = page.split("Top 100 anomalous users", 1)[1].count("<tr>") - 1
    assert top_rows == 100
    assert "σ" in page.split("Top 100 anomalous users", 1)[1]


def test_report_refuses_a_directory_that_was_not_scored(tmp_path):
    result = run_cli("report", "--scored", str(tmp_path), "--out", str(tmp_path / "r.html"))
    assert result.returncode == 2 and "fraudwatch score" in result.stderr
    assert not (tmp_path / "r.html").exists()
