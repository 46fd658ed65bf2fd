"""Where fraudwatch keeps its files when no path is given."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """$FRAUDWATCH_HOME, or ~/.fraudwatch when unset."""
    return Path(os.environ.get("FRAUDWATCH_HOME") or Path.home() / ".fraudwatch")


def demo_dir() -> Path:
    return home() / "demo"
