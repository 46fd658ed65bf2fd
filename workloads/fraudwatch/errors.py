"""Errors a user can act on. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class UserError(Exception):
    """Something the user gave us is wrong: the message names the problem and the fix."""

    exit_code = 2


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A CLI command that prints a UserError as one line and exits with status 2 (no
    traceback). Typer and the console are imported only then: this module is read where
    neither is installed."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            import typer

            from fraudwatch.progress import console

            console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper
