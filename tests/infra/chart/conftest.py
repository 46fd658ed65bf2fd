"""Fixtures for the chart tests; all rendering goes through chart_render.render_chart()."""

from __future__ import annotations

from typing import Any

import pytest
from chart_render import render_chart, values_file

VALUES_SETS = ("default", "minimal", "production")


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """The chart rendered (and validated) with each ci/ values file, by values-set name."""
    return {name: render_chart(values_file(name)) for name in VALUES_SETS}
