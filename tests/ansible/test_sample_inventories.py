"""The sample inventories and the roles stay consistent and lint-clean (no hosts needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sample_group_vars

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
BIN_DIR = Path(sys.executable).parent


def test_every_role_tunable_is_documented_in_the_samples() -> None:
    stale = [
        str(path.relative_to(ANSIBLE_DIR))
        for path, content in sample_group_vars.expected_files().items()
        if not path.exists() or path.read_text() != content
    ]
    assert stale == [], f"regenerate with `python tests/ansible/sample_group_vars.py`: {stale}"


def test_yamllint_is_clean() -> None:
    run = subprocess.run(
        [str(BIN_DIR / "yamllint"), "-s", "."],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_ansible_lint_production_profile_is_clean() -> None:
    run = subprocess.run(
        [str(BIN_DIR / "ansible-lint"), "--nocolor", "--offline"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]


def test_sample_inventories_parse_with_their_groups() -> None:
    for sample in ("single-node", "three-node"):
        run = subprocess.run(
            [str(BIN_DIR / "ansible-inventory"), "-i", f"inventories/sample/{sample}", "--graph"],
            cwd=ANSIBLE_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        for group in ("@kafka", "@ceph", "@fraudwatch", "@prometheus"):
            assert group in run.stdout, (sample, group)
