"""A small generated data set and its scored output, shared by the core unit tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fraudwatch.generator.population import GeneratorConfig
from fraudwatch.generator.writer import generate

SMALL = GeneratorConfig(users=4_000, transactions=60_000, seed=7, days=14, fraud_rate=0.004)


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `fraudwatch` command in a subprocess (exit code, stdout, stderr)."""
    return subprocess.run(
        [sys.executable, "-c", "from fraudwatch.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("raw") / "raw"
    generate(SMALL, out, workers=2, chunk_users=1_000)
    return out


@pytest.fixture(scope="session")
def scored_dir(raw_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scored") / "scored"
    result = run_cli(
        "score", "--input", str(raw_dir), "--out", str(out), "--fit-users", "2000", "--top", "5"
    )
    assert result.returncode == 0, result.stderr
    return out
