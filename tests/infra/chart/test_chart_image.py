"""The workloads image (workloads/Dockerfile) matches what the chart runs: multi-stage, pinned
base, non-root user with the chart's UID, the `fraudwatch` console command, the Spark entry
file the ScheduledSparkApplication names. (No image registry is reachable here to build it;
checkov's Dockerfile checks run in test_chart_checkov.py.)"""

from __future__ import annotations

import re
import tomllib

import helm_python as helm
import yaml
from chart_render import CHART_DIR, REPO_ROOT

DOCKERFILE = REPO_ROOT / "workloads" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def test_multi_stage_build_on_a_pinned_base() -> None:
    bases = [args for op, args in _instructions() if op == "FROM"]
    assert len(bases) >= 2
    for base in bases:
        image = base.split()[0]
        # An exact patch tag (x.y.z) or a digest; never latest or a floating minor tag.
        assert re.search(r":\d+\.\d+\.\d+[-\w.]*$|@sha256:[0-9a-f]{64}$", image), image


def test_runs_as_the_non_root_uid_the_chart_expects() -> None:
    users = [args for op, args in _instructions() if op == "USER"]
    uid, gid = users[-1].split(":")
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert int(uid) == values["podSecurityContext"]["runAsUser"] != 0
    assert int(gid) == values["podSecurityContext"]["runAsGroup"]


def test_installs_the_project_and_starts_the_fraudwatch_command() -> None:
    instructions = _instructions()
    copies = " ".join(args for op, args in instructions if op == "COPY")
    assert "pyproject.toml" in copies and "workloads/fraudwatch" in copies
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "fraudwatch" in pyproject["project"]["scripts"]
    (entrypoint,) = [args for op, args in instructions if op == "ENTRYPOINT"]
    assert entrypoint.endswith('"fraudwatch"]')
    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "/opt/fraudwatch/spark_entrypoint.py" in runs
    sparkapp = (CHART_DIR / "templates" / "batch" / "sparkapplication.yaml").read_text()
    assert "local:///opt/fraudwatch/spark_entrypoint.py" in sparkapp


def test_chart_app_version_is_the_package_version() -> None:
    # The default image tag is the appVersion: it must name the package version it ships.
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    with helm.Chart.load(CHART_DIR) as chart:
        assert chart.metadata["appVersion"] == pyproject["project"]["version"]


def test_build_context_is_limited_to_what_the_image_installs() -> None:
    text = (REPO_ROOT / "workloads" / "Dockerfile.dockerignore").read_text()
    patterns = [line for line in text.splitlines() if line and not line.startswith("#")]
    # Exclude everything first, then re-admit only the package and its metadata.
    assert patterns[0] == "*"
    assert "!workloads/fraudwatch/" in patterns and "!pyproject.toml" in patterns
