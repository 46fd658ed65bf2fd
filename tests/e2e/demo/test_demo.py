"""The newcomer's path: `fraudwatch demo` runs generate → score → evaluate → report."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_prints_top_anomalies_and_writes_the_report(tmp_path):
    env = {**os.environ, "FRAUDWATCH_HOME": str(tmp_path / "home"), "COLUMNS": "160"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fraudwatch.cli",
            "demo",
            "--users",
            "3000",
            "--transactions",
            "40000",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    for step in ("1/4 generate", "2/4 score", "3/4 evaluate", "4/4 report"):
        assert step in out
    assert "Top 10 anomalous users" in out
    assert "ensemble" in out and "ROC-AUC" in out
    home = tmp_path / "home" / "demo"
    report = home / "report.html"
    assert report.is_file() and report.stat().st_size > 50_000
    assert str(report) in out.replace("\n", "")
    # The intervention service's default results directory is the demo's scored output.
    assert (home / "scored" / "users.parquet").is_file()
