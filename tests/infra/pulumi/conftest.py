"""Fixtures for the Pulumi unit tests: the program rendered once per stack (mocks are cheap,
but each rendering registers ~200 resources)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from platform_render import REPO_ROOT, Rendering, render

SAMPLE_DASHBOARDS = Path(__file__).parent / "sample_dashboards"


def _has_files(folder: Path, pattern: str) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob(pattern))


@pytest.fixture(scope="session")
def dashboards_dir() -> Path:
    """The repository's dashboards/ once it has dashboards and Elasticsearch definitions,
    the small sample next to these tests until then."""
    real = REPO_ROOT / "dashboards"
    if _has_files(real / "grafana", "*.json") and _has_files(real / "elasticsearch", "*.json"):
        return real
    return SAMPLE_DASHBOARDS


@pytest.fixture(scope="session")
def prod(dashboards_dir: Path) -> Rendering:
    return render("prod", dashboards_dir=dashboards_dir)


@pytest.fixture(scope="session")
def dev(dashboards_dir: Path) -> Rendering:
    return render("dev", dashboards_dir=dashboards_dir)


@pytest.fixture(params=["dev", "prod"])
def each_stack(request: pytest.FixtureRequest, dev: Rendering, prod: Rendering) -> Rendering:
    return {"dev": dev, "prod": prod}[request.param]
