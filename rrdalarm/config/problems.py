"""How the readers of a threshold table report mistakes: the first one raised, or every field's collected.

The loader and the CLI stop at the first ConfigError (one line naming file, line
and field). The editor wants every field's mistake at once, beside each field.
Both run the same readers; only this object decides what a ConfigError does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rrdalarm.model.errors import ConfigError

T = TypeVar("T")


class Problems:
    """Runs the reading steps of one table; with `collect`, a failing step records its error and yields a fallback.

    Steps are independent field groups, so that one field's mistake never hides another's; a step that
    compares fields (start before end) runs only when those fields were read (`ok`), or it would only
    repeat their mistake in other words.
    """

    def __init__(self, *, collect: bool = False) -> None:
        self.collect = collect
        self.errors: list[ConfigError] = []

    def step(self, fallback: T, read: Callable[[], T]) -> T:
        """`read()`; when collecting, a ConfigError it raises is kept and `fallback` returned instead."""
        if not self.collect:
            return read()
        try:
            return read()
        except ConfigError as exc:
            self.errors.append(exc)
            return fallback

    def ok(self, *fields: str) -> bool:
        """Whether none of `fields` has a mistake recorded (always true when raising: none gets recorded)."""
        return not any(e.field in fields for e in self.errors)
