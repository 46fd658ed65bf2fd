"""Shared by the unit and integration dashboards tests: repository paths and real scored data."""

from __future__ import annotations

import sys
from pathlib import Path

from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[3]
DASHBOARDS = REPO / "dashboards"
sys.path.insert(0, str(DASHBOARDS / "grafana"))


def make_scored(root: Path) -> Path:
    """Generate and score a small population with the real batch job (Isolation Forest only)."""
    from fraudwatch.cli import app

    runner = CliRunner()
    raw, scored = root / "raw", root / "scored"
    for args in (
        ["generate", "--out", str(raw), "--users", "300", "--transactions", "3000", "--seed", "7"],
        [
            "score",
            "--input",
            str(raw),
            "--out",
            str(scored),
            "--models",
            "iforest",
            "--fit-users",
            "300",
        ],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return scored
