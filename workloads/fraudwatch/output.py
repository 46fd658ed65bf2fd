"""Outputs appear whole or not at all: everything is written to a temporary sibling first and
moved into place only when complete, so a failed or interrupted run leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fraudwatch.errors import UserError


def _check_writable_parent(target: Path) -> Path:
    parent = target.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {parent}: {exc.strerror}; choose another --out") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{parent} is not writable; choose another --out or fix its permissions")
    return parent


@contextmanager
def atomic_directory(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes `target` when the block succeeds."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} exists and is not a directory; choose another --out")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise UserError(f"{target} already exists; pass --overwrite to replace it")
    parent = _check_writable_parent(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=parent))
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path that replaces `target` when the block succeeds."""
    target = Path(target)
    if target.is_dir():
        raise UserError(f"{target} is a directory; give a file name such as report.html")
    parent = _check_writable_parent(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.partial-", dir=parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
