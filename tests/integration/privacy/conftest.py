"""Fixtures for the retention job on real servers: the tier's Ceph, Elasticsearch and Kafka
and FerretDB for the MongoDB state store (tests/integration/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS / "unit" / "privacy"))  # the state-store records helper


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job reads the intervention service's config from $FRAUDWATCH_HOME: each test has
    its own, so no developer's ~/.fraudwatch is ever touched."""
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path / "fraudwatch-home"))
    for name in ("FRAUDWATCH_CONFIG", "FRAUDWATCH_STATE_URL", "FRAUDWATCH_PIPELINE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
