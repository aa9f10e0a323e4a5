"""ConfigError: a user's mistake in a settings or thresholds file, with its file, line and field."""

from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    """A user mistake in a settings or thresholds file, with where it is."""

    def __init__(
        self, path: Path | str | None, message: str, line: int | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.path = str(path) if path is not None else None
        self.message = message
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}"
        what = f"field '{self.field}': " if self.field else ""
        return one_line(f"{where}: {what}{self.message}" if where else f"{what}{self.message}")


def one_line(text: str) -> str:
    """Text with line breaks, other control characters and lone surrogates written as escapes.

    A field name or path comes from the user's file as typed: the error stays one printable line
    (and can be written to any terminal).
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)
