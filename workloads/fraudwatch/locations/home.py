"""Where fraudwatch keeps its files when no path is given: `$FRAUDWATCH_HOME`, else
`~/.fraudwatch`. The one place that reads the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_HOME = "~/.fraudwatch"


def fraudwatch_home(environ: Mapping[str, str] | None = None) -> Path:
    """`$FRAUDWATCH_HOME` (of `environ`, default the process environment), or `~/.fraudwatch`
    when unset."""
    env = os.environ if environ is None else environ
    return Path(env.get("FRAUDWATCH_HOME") or DEFAULT_HOME).expanduser()


def demo_dir() -> Path:
    """Where `fraudwatch demo` works: `$FRAUDWATCH_HOME/demo`."""
    return fraudwatch_home() / "demo"
