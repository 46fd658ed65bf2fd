"""Fixtures for the dashboards-as-code unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dashboards_fixtures import make_scored


@pytest.fixture(scope="session")
def scored_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scored(tmp_path_factory.mktemp("dashboards-data"))
