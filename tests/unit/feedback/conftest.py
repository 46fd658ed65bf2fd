"""Generated days for the feedback loop: ONE population over several days (so a user is the
same account every day and an analyst's verdict on it stays true), laid out as the pipelines'
raw/<day>/ folders, and the pipeline configuration that reads them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from fraudwatch.generator.population import GeneratorConfig
from fraudwatch.generator.writer import generate
from fraudwatch.pipelines.config import PipelineConfig, parse_config

START = date(2026, 3, 1)
DAYS = 12
GENERATED = GeneratorConfig(
    users=4_000, transactions=96_000, seed=11, start=START, days=DAYS, fraud_rate=0.02
)
#: The loop's own period: ten days of training and review cycles, then four later days no model
#: or gate has seen (two days, 58 flagged users, were too few to compare two models' precision:
#: one flagged user decided it).
LOOP_DAYS = 14
LOOP_GENERATED = GeneratorConfig(
    users=4_000, transactions=112_000, seed=11, start=START, days=LOOP_DAYS, fraud_rate=0.02
)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The real `fraudwatch` command in a subprocess (exit code, stdout, stderr)."""
    return subprocess.run(
        [sys.executable, "-c", "from fraudwatch.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def day(n: int) -> str:
    """The n-th generated day (1-based) as YYYY-MM-DD."""
    return (START + timedelta(days=n - 1)).isoformat()


def split_into_days(raw: Path, data: Path, days: int = DAYS) -> None:
    """raw/ of a multi-day generation → data/raw/<day>/ as the daily landing writes them."""
    manifest = json.loads((raw / "manifest.json").read_text())
    for n in range(1, days + 1):
        d = day(n)
        target = data / "raw" / d
        for table in ("transactions", "logins", "api_calls"):
            part = raw / table / f"date={d}"
            if part.is_dir():
                shutil.copytree(part, target / table / f"date={d}")
        shutil.copytree(raw / "users", target / "users")
        (target / "manifest.json").write_text(
            json.dumps({**manifest, "fingerprint": f"{manifest['fingerprint']}-{d}"})
        )


@pytest.fixture(scope="session")
def generated_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("generated") / "raw"
    generate(GENERATED, raw, workers=1)
    return raw


@pytest.fixture(scope="session")
def loop_raw(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("generated-loop") / "raw"
    generate(LOOP_GENERATED, raw, workers=1)
    return raw


@pytest.fixture(scope="session")
def scored(generated_raw, tmp_path_factory) -> Path:
    """The whole generated period scored by a freshly fitted Isolation Forest."""
    from fraudwatch.scoring.pipeline import ScoreOptions
    from fraudwatch.scoring.pipeline import score as run_score

    out = tmp_path_factory.mktemp("scored") / "scored"
    run_score(generated_raw, out, ScoreOptions(models=["iforest"], fit_users=5_000))
    return out


def pipeline_config(home: Path, models: tuple = ("iforest", "copod"), **retrain) -> PipelineConfig:
    """Local pipeline at test scale: Isolation Forest and COPOD (two members to weigh)."""
    return parse_config(
        {
            "home": str(home),
            "models": list(models),
            "fit_users": 5_000,
            "retrain": {"window_days": 4, "min_days": 2, **retrain},
        }
    )


@pytest.fixture
def pipeline_home(generated_raw, tmp_path) -> Path:
    home = tmp_path / "pipeline"
    split_into_days(generated_raw, home)
    return home


__all__ = ["DAYS", "PipelineConfig", "day", "pipeline_config", "run_cli", "split_into_days"]
