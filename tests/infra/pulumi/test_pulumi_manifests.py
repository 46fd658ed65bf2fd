"""Every core Kubernetes object the program creates is valid for the targeted Kubernetes
version (kubernetes-validate --strict) and passes checkov's Kubernetes checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from platform_render import Rendering, stack_config

HERE = Path(__file__).parent


def _target_version(stack: str) -> str:
    return stack_config(stack)["kubernetesVersion"] + ".0"


def test_every_core_object_validates_strictly(each_stack: Rendering) -> None:
    version = _target_version(each_stack.stack)
    assert each_stack.core, "the program creates core objects"
    failures = []
    for resource in each_stack.core:
        manifest = resource.manifest()
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            failures.append(f"{resource.type} {resource.name}: {err.message} at {list(err.path)}")
    assert failures == []


def test_strict_validation_rejects_a_misspelled_field(prod: Rendering) -> None:
    """Guard against a validator that accepts anything."""
    manifest = prod.one("CronJob", "tableau-publish").manifest()
    manifest["spec"]["schedul"] = manifest["spec"].pop("schedule")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, _target_version("prod"), strict=True)


def _checkov() -> str:
    found = shutil.which("checkov") or str(Path(sys.executable).parent / "checkov")
    if not Path(found).exists():
        pytest.fail("checkov is not installed: pip install -r infra/requirements-test.txt")
    return found


def test_checkov_passes_on_the_core_objects(prod: Rendering, tmp_path: Path) -> None:
    manifests = [r.manifest() for r in prod.core]
    (tmp_path / "platform.yaml").write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    result = subprocess.run(
        [
            _checkov(),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--config-file",
            str(HERE / "checkov.yaml"),
            "--output",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    summary = report.get("summary", {})
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert failed == [], "\n".join(failed)
    assert summary.get("passed", 0) > 0, result.stderr[-2000:]
