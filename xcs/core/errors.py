"""User errors: bad input from the person running xcs (config, data, workdir, checkpoint).

A `UserError` is caught by the command line and printed as one line on stderr with exit status 2
and no traceback (XCS_DEBUG=1 shows the traceback). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class UserError(ValueError):
    """A problem in what the user gave xcs; the message says what and where, in one line."""


class ConfigError(UserError):
    """A config key with a bad value, or a combination the methods do not support."""

    def __init__(self, key: str, value: object, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"config.{key}={value!r}: {allowed}")


class MissingInputError(UserError, FileNotFoundError):
    """A file or directory the user pointed xcs to that is not there."""
