"""The sample inventories and the roles stay consistent and lint-clean (no hosts needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import sample_group_vars
import yaml

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


ENCRYPTION_SETTINGS = (
    "kafka_tls_enabled",
    "mongodb_tls_enabled",
    "ceph_rgw_tls_enabled",
    "fraudwatch_require_encrypted_data_dirs",
)


def test_the_samples_turn_on_every_encryption_setting() -> None:
    for sample in ("single-node", "three-node"):
        main = yaml.safe_load(
            (
                ANSIBLE_DIR / "inventories" / "sample" / sample / "group_vars/all/main.yml"
            ).read_text()
        )
        assert {name: main.get(name) for name in ENCRYPTION_SETTINGS} == dict.fromkeys(
            ENCRYPTION_SETTINGS, True
        ), sample


def test_deploy_stops_when_an_inventory_leaves_encryption_undecided(tmp_path: Path) -> None:
    """A sample inventory without the four settings: the first play stops and names them,
    before any host is contacted (the role defaults do not count as a decision)."""
    inventory = tmp_path / "site"
    shutil.copytree(ANSIBLE_DIR / "inventories" / "sample" / "single-node", inventory)
    main = inventory / "group_vars" / "all" / "main.yml"
    kept = [
        line
        for line in main.read_text().splitlines()
        if not line.startswith(tuple(f"{name}:" for name in ENCRYPTION_SETTINGS))
    ]
    main.write_text("\n".join(kept) + "\n")
    # Artefacts are never read: the run stops at the inventory check.
    secrets_of_no_site = {"vault_fraudwatch_hook_secret": "x", "vault_ceph_s3_secret_key": "x"}
    run = subprocess.run(
        [
            str(BIN_DIR / "ansible-playbook"),
            "-i",
            str(inventory),
            "deploy.yml",
            "-e",
            json.dumps(secrets_of_no_site),
        ],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-4000:]
    assert "set kafka_tls_enabled, mongodb_tls_enabled" in output, output[-4000:]
    assert "fraudwatch_require_encrypted_data_dirs to true or false" in output
    assert "Prepare every host" not in output
    assert "UNREACHABLE" not in output
