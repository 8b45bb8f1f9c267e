"""The one error type for bad input data: it always names the file, the line and the token."""

from __future__ import annotations

from xcs.core.errors import UserError


class DataFormatError(UserError):
    """A data file that cannot be read as what it claims to be."""

    def __init__(self, path: str, line: int | None, token: str | None, reason: str):
        self.path, self.line, self.token, self.reason = path, line, token, reason
        where = path if line is None else f"{path}:{line}"
        what = "" if token is None else f" (token {token!r})"
        super().__init__(f"{where}: {reason}{what}")
