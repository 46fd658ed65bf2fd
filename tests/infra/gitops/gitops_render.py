"""Shared by the GitOps tests: render Kustomize directories under infra/gitops with a pinned
kustomize (tests/infra/gitops/install_kustomize.sh); objects are validated with the chart
tests' validator (tests/infra/chart/chart_render.py), one definition of "valid" for both."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chart"))

from chart_render import REPO_ROOT, find, parse_manifests, render_chart, validate_object

__all__ = [
    "ENVIRONMENTS",
    "GITOPS_DIR",
    "REPO_ROOT",
    "find",
    "kustomize_build",
    "kustomize_dirs",
    "render_chart",
    "validate_object",
]

GITOPS_DIR = REPO_ROOT / "infra" / "gitops"
INSTALL_SCRIPT = Path(__file__).with_name("install_kustomize.sh")
ENVIRONMENTS = ("dev", "prod")


def kustomize_command() -> list[str]:
    """The kustomize to run: $FRAUDWATCH_KUSTOMIZE, the pinned one, or one on PATH."""
    configured = os.environ.get("FRAUDWATCH_KUSTOMIZE")
    if configured:
        return [configured, "build"]
    pinned = REPO_ROOT / ".cache" / "bin" / "kustomize"
    if pinned.exists():
        return [str(pinned), "build"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise RuntimeError(
        f"kustomize is not installed: run `bash {INSTALL_SCRIPT.relative_to(REPO_ROOT)}`"
    )


@cache
def _build(directory: str) -> tuple[dict[str, Any], ...]:
    completed = subprocess.run(
        [*kustomize_command(), directory], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise AssertionError(f"kustomize build {directory} failed: {completed.stderr.strip()}")
    return tuple(parse_manifests([completed.stdout]))


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """Objects of one Kustomize directory, rendered like `kubectl kustomize DIR`."""
    return [dict(o) for o in _build(str(directory))]


def kustomize_dirs() -> list[Path]:
    """Every directory under infra/gitops with a kustomization.yaml."""
    return sorted(p.parent for p in GITOPS_DIR.rglob("kustomization.yaml"))
