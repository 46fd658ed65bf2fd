"""The shared state-store records helper lives beside these tests (no package)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job reads the intervention service's config from $FRAUDWATCH_HOME: each test has
    its own, so no developer's ~/.fraudwatch is ever touched."""
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path / "fraudwatch-home"))
    for name in ("FRAUDWATCH_CONFIG", "FRAUDWATCH_STATE_URL", "FRAUDWATCH_PIPELINE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
