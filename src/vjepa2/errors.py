"""Mistakes of the user, told apart from bugs of ours.

Code that checks what the user gave (a config value, a path, a checkpoint file) raises
``UserError`` with a message that says what is wrong and where. The ``vjepa2`` command prints
that message as one line, ``vjepa2 <command>: error: <message>``, and exits with status 2;
any other exception is a bug and keeps its traceback (``--debug`` shows the traceback of a
``UserError`` too). The subclasses are also the built-in exceptions that callers of the library
already catch.
"""

from __future__ import annotations


class UserError(ValueError):
    """A wrong value, a missing file or a file that is not what it should be."""

    def __str__(self) -> str:
        return BaseException.__str__(self)  # KeyError would put the message in quotes


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder that the user named does not exist."""


class UnknownKeyError(UserError, KeyError):
    """A config key, preset or option name that does not exist."""
