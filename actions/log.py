"""`log`: one line per event appended to a file in the configured log dir."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from rrdalarm.common.fileutil import make_private_dirs
from rrdalarm.common.quantities import format_limit, format_quantity
from rrdalarm.plugins import ActionContext, ActionError, Param

from .base import Action, Delivery, Event


def file_name_problem(name: object) -> str | None:
    """Why `name` is not a plain file name that stays inside the log dir, or None."""
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\x00"):
        return f"{name!r} must be a plain file name inside the log dir (no folders, no '..')"
    return None


def confined_log_path(log_dir: Path, name: str) -> Path:
    """The file `name` inside log_dir; a name that would leave it is refused."""
    problem = file_name_problem(name)
    if problem:
        raise ActionError(f"log: {problem}")
    return log_dir / name


def format_line(event: Event) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(event.at))
    # "31.6 MB/s" would split into two words: the unit is glued on where a value is one field.
    value = format_quantity(event.value, event.unit).replace(" ", "")
    limit = format_limit(event.limit, event.unit).replace(" ", "")
    series = f"{event.series}:{event.ds}" if event.ds else event.series
    return (
        f"{stamp} {event.status} severity={event.severity} threshold={event.threshold_id} series={series} "
        f"value={value} {event.type} {limit} event={event.id} {event.message}".rstrip()
    )


class LogAction(Action):
    name = "log"
    params: ClassVar[Mapping[str, Param]] = {
        "file": Param(str, default="rrdalarm.log", help="file name inside the log dir", check=file_name_problem),
    }
    legacy_param: ClassVar[str | None] = "file"

    def __init__(self, params: Mapping[str, Any], context: ActionContext) -> None:
        super().__init__(params, context)
        self.path = confined_log_path(context.log_dir, str(self.config.get("file", "rrdalarm.log")))

    def run(self, delivery: Delivery) -> None:
        lines = "".join(format_line(e).replace("\n", " ") + "\n" for e in delivery.events)
        try:
            make_private_dirs(self.context.log_dir)
            # O_APPEND keeps lines from concurrent writers whole.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            try:
                os.write(fd, lines.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            raise ActionError(f"log: cannot write {self.path}: {exc.strerror}") from None
