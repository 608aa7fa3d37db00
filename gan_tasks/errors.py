"""The base of every error a user can fix: a bad config, unreachable storage, a locked sweep id, a damaged
file. Raised where the problem is found; the command line prints it as one line and exits with its code."""
from __future__ import annotations


class UserError(Exception):
    """An error whose message tells the user what to change; `exit_code` is the command's exit status."""

    exit_code = 2
    hint = ""  # a second line: what to do about it, where the class knows

    def __init__(self, message: str = "", exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(UserError, ValueError):
    """A value the user gave that cannot be used (a name, a file's content)."""


class NotFound(UserError, FileNotFoundError):
    """Something the user must provide first (a file, an upload, a trained classifier) is missing."""
