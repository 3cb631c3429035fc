"""The one exception type for bad input.

A ``UserError`` names the file, field or value that is wrong; the CLI prints it as one line
and exits with status 2. Every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input (a file, field, flag or value); the message says which and why."""


class InputNotFound(UserError, FileNotFoundError):
    """A named input file or folder does not exist."""
