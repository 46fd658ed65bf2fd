"""`make test` fails on a skip whose reason is not on the allow-list (tests/skip_policy.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
MAKEFILE = (REPO / "Makefile").read_text()


def run(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text("import pytest\n\n\n" + body)
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "tests.skip_policy"),
            *("-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    "body",
    [
        'def test_a():\n    pytest.skip("calibration data not found")\n',
        'missing = pytest.importorskip("no_such_module_for_fraudwatch")\n\n\ndef test_a():\n    pass\n',
    ],
    ids=["skip in a test", "module-level importorskip"],
)
def test_an_unexpected_skip_fails_the_run(tmp_path: Path, body: str) -> None:
    done = run(tmp_path, "def test_ok():\n    pass\n\n\n" + body)
    assert done.returncode == 1, done.stdout
    assert "unexpected skips" in done.stdout


def test_an_allowed_skip_and_a_clean_run_pass(tmp_path: Path) -> None:
    body = 'def test_a():\n    pytest.skip("the broker belongs to `make services-up`; not ours")\n'
    done = run(tmp_path, body)
    assert done.returncode == 0, done.stdout


def test_every_tier_of_make_test_loads_the_policy() -> None:
    tiers = MAKEFILE.split("\ntest:", 1)[1].split("\n", 1)[0].split()
    for tier in (t for t in tiers if t.startswith("test-") and t != "test-ansible"):
        recipe = MAKEFILE.split(f"\n{tier}:", 1)[1].split("\n\n", 1)[0]
        assert "$(SKIP_POLICY)" in recipe, f"{tier} runs pytest without the skip policy"
