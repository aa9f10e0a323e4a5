"""`touch`: a third-party action that creates (or updates) a file in the data dir, one line per event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rrdalarm.actions.base import Action, ActionError, Delivery, Param


def name_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value or value in (".", "..") or any(c in value for c in "/\\\x00"):
        return "must be a plain file name"
    return None


class TouchAction(Action):
    name = "touch"
    params: ClassVar[Mapping[str, Param]] = {
        "file": Param(str, required=True, help="file name inside the data dir", check=name_problem),
    }
    legacy_param = "file"

    def run(self, delivery: Delivery) -> None:
        file = self.config.get("file")
        if name_problem(file):
            raise ActionError(f"touch: {file!r} must be a plain file name", permanent=True)
        path = self.context.data_dir / str(file)
        try:
            with path.open("a", encoding="utf-8") as fh:
                fh.writelines(f"{delivery.id} {e.id} {e.status}\n" for e in delivery.events)
        except OSError as exc:
            raise ActionError(f"touch: cannot write {path}: {exc.strerror}") from None
