"""`python -m fraudwatch.pipelines.steps STEP --date DAY`, the command every Kubernetes-mode
pod runs: exit 0 with the step's result, 99 when the step is switched off (the pod operator
marks the task skipped), 2 with a one-line reason when a check fails or the input is wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKLOADS = Path(__file__).resolve().parents[3] / "workloads"


def _step(home: Path, *args: str, **config) -> subprocess.CompletedProcess:
    settings = {"home": str(home), "demo": {"users": 200, "transactions": 2_000}, **config}
    env = {
        **os.environ,
        "PYTHONPATH": str(WORKLOADS),
        "FRAUDWATCH_PIPELINE_CONFIG_JSON": json.dumps(settings),
    }
    return subprocess.run(
        [sys.executable, "-m", "fraudwatch.pipelines.steps", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("steps") / "home"
    done = _step(home, "land", "--date", "2026-03-02")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["counts"]["transactions"] == 2_000
    return home


def test_check_passes_on_the_landed_day_and_writes_its_report(landed):
    done = _step(landed, "check_raw", "--date", "2026-03-02")
    assert done.returncode == 0, done.stderr
    report = json.loads((landed / "reports" / "2026-03-02" / "check_raw.json").read_text())
    assert report["rows"] == 2_000


def test_failed_check_exits_2_with_the_reason(landed):
    done = _step(landed, "check_raw", "--date", "2026-03-02", quality={"min_transactions": 5_000})
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: raw transactions for 2026-03-02: 2,000 rows, fewer than the minimum 5,000; "
        "check that the day's events were landed (or lower quality.min_transactions)"
    )


def test_switched_off_publishing_exits_99(landed):
    done = _step(landed, "publish_tableau", "--date", "2026-03-02")
    assert done.returncode == 99
    assert "publish.tableau: false" in done.stderr


def test_malformed_date_is_refused_before_anything_runs(tmp_path):
    done = _step(tmp_path, "land", "--date", "2026-3-2")
    assert done.returncode == 2
    assert "logical date '2026-3-2' is not a date; use YYYY-MM-DD" in done.stderr
    assert not (tmp_path / "raw").exists()
