"""User-facing errors.

A ``UserError`` is a problem with the user's input (a file, a params value, a backend answer),
not a bug: the CLI prints it as one line naming the file, line/row and field, and exits with
status 2 and no traceback.
"""

from __future__ import annotations


class UserError(Exception):
    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.file:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        field = f"field '{self.field}': " if self.field else ""
        return f"{where}{field}{self.message}"


class BackendError(UserError):
    """A remote or local backend failed in a way the user must act on (quota, auth, garbage)."""
