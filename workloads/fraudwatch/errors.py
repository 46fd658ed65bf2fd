"""Errors a user can act on. The CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """Something the user gave us is wrong: the message names the problem and the fix."""

    exit_code = 2
