"""`script`: runs an executable from the scripts dir with the delivery as JSON on stdin.

No shell is involved: argv is `[<scripts_dir>/<script>, *args]`, so spaces,
quotes and `;` in `args` reach the script verbatim. The script must be a plain
file name inside `scripts_dir` (symlinks that resolve outside it are refused),
a regular file and executable. Drop-in scripts (`rrdalarm.plugins.drop_in_actions`)
are subclasses with `fixed_script` set to the file name and no `script` param.

stdin is one JSON document `{"delivery_id", "counts", "events": [...]}` (a digest
adds `"digest"`, shaped as the webhook's). Each
event holds `Event.as_dict()` plus the names an ntopng alert notification
uses (ntopng's shell endpoint feeds a script its alert JSON on stdin), where
they mean the same thing here (ntopng's numeric `severity` is left out: `severity` is the
threshold's own, "critical", "warning" or "info", as in every other action):

    alert_id    = threshold_id     ntopng: the alert type; here: the threshold (the rule that fired)
    entity_val  = "series:ds"      ntopng: what the alert is about (host key, interface ...); here: the series
                                   (just "series" when there is no data source)
    tstamp      = at               ntopng: when the alert was detected; here: the check's time
    tstamp_end  = at or 0          ntopng: release time; here: the check's time for RESOLVED, else 0
    action      = "engage" | "release"  ALARM FIRED and its repeats engage, RESOLVED releases
    score       = 50 | 10          the lowest ntopng score of warning (fired/repeat) and notice (resolved),
                                   for scripts that filter on score
    msg         = message          the human-readable text

The environment is the parent's minus every `RRDALARM_*` variable (settings
paths, tokens), plus `RRDALARM_DELIVERY_ID` and `RRDALARM_EVENT_COUNT`.
A non-zero exit is retryable and reported with the exit code and the last
line of stderr; a script still running after `context.timeout` seconds is
killed with its whole process group (retryable).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from rrdalarm.model.states import EventKind
from rrdalarm.plugins import ActionError, Param

from .base import Action, Delivery, Event

_SEVERITY_WARNING, _SEVERITY_NOTICE = 4, 3  # ntopng AlertLevel values
_SCORE = {_SEVERITY_WARNING: 50, _SEVERITY_NOTICE: 10}  # ntopng SCORE_LEVEL_WARNING / SCORE_LEVEL_NOTICE


def script_name_problem(name: object) -> str | None:
    """Why `name` is not a plain file name inside the scripts dir, or None."""
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\x00"):
        return f"{name!r} must be a plain file name inside the scripts dir (no folders, no '..')"
    return None


def args_problem(value: object) -> str | None:
    """Why `value` is not a list of argument strings, or None."""
    if not isinstance(value, list | tuple) or not all(isinstance(a, str) for a in value):
        return "must be a list of strings"
    if any("\x00" in a for a in value):
        return "must not contain NUL characters"
    return None


def ntopng_fields(e: Event) -> dict[str, Any]:
    """The ntopng alert field names that have a meaning for this event (see the module docstring)."""
    resolved = e.kind == EventKind.RESOLVED
    level = _SEVERITY_NOTICE if resolved else _SEVERITY_WARNING
    return {
        "alert_id": e.threshold_id,
        "entity_val": f"{e.series}:{e.ds}" if e.ds else e.series,
        "tstamp": e.at,
        "tstamp_end": e.at if resolved else 0,
        "action": "release" if resolved else "engage",
        "score": _SCORE[level],
        "msg": e.message,
    }


def stdin_document(delivery: Delivery) -> bytes:
    """What the script reads on stdin."""
    doc: dict[str, Any] = {
        "delivery_id": delivery.id,
        "counts": delivery.counts,
        "events": [e.as_dict() | ntopng_fields(e) for e in delivery.carried],
    }
    digest = delivery.digest_summary()
    if digest is not None:
        doc["digest"] = digest
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def script_environment(delivery: Delivery) -> dict[str, str]:
    """The parent's environment without RRDALARM_* (settings, tokens), plus the delivery's id and size."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    env["RRDALARM_DELIVERY_ID"] = delivery.id
    env["RRDALARM_EVENT_COUNT"] = str(len(delivery.carried))
    return env


def _last_line(data: bytes | None, limit: int = 200) -> str:
    lines = [ln.strip() for ln in (data or b"").decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return ""
    line = " ".join(lines[-1].split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the script and everything it started (it leads its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone
    except PermissionError:
        proc.kill()


class ScriptAction(Action):
    """Runs `script` from the scripts dir with `args`; the events as JSON on stdin."""

    name = "script"
    params: ClassVar[Mapping[str, Param]] = {
        "script": Param(str, required=True, help="file name of an executable in the scripts dir",
                        check=script_name_problem),
        "args": Param(list, default=[], help="arguments passed after the script name, verbatim (no shell)",
                      check=args_problem),
    }
    # The legacy "action parameter" was passed to the action script as its argument.
    legacy_param: ClassVar[str | None] = "args"
    fixed_script: ClassVar[str | None] = None

    def script_path(self) -> Path:
        """The executable to run; a permanent ActionError says why there is none."""
        name = self.fixed_script if self.fixed_script is not None else self.config.get("script")
        problem = script_name_problem(name)
        if problem or not isinstance(name, str):
            raise ActionError(f"script: {problem}", permanent=True)
        base = self.context.scripts_dir
        if base is None:
            raise ActionError("script: no scripts_dir is configured", permanent=True)
        try:
            root = base.resolve(strict=True)
            target = (base / name).resolve(strict=True)
        except (OSError, RuntimeError):  # missing file, dangling or looping symlink
            raise ActionError(f"script: {name!r} does not exist in {base}", permanent=True) from None
        if not target.is_relative_to(root) or target == root:
            raise ActionError(f"script: {name!r} points outside {base}", permanent=True)
        if not target.is_file():
            raise ActionError(f"script: {name!r} in {base} is not a regular file", permanent=True)
        if not os.access(target, os.X_OK):
            raise ActionError(f"script: {name!r} in {base} is not executable", permanent=True)
        return target

    def arguments(self) -> list[str]:
        args = self.config.get("args")
        if args is None:
            return []
        if isinstance(args, str):  # a single legacy action parameter
            args = [args]
        problem = args_problem(args)
        if problem:
            raise ActionError(f"script: parameter 'args' {problem}", permanent=True)
        return list(args)

    def run(self, delivery: Delivery) -> None:
        path = self.script_path()
        argv = [str(path), *self.arguments()]
        timeout = self.context.timeout
        try:
            # Popen rather than subprocess.run: run() kills only the direct child on timeout, a script's own
            # children (sleep, curl ...) would live on. A new session makes the script a process group leader.
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=script_environment(delivery), cwd=path.parent, close_fds=True, start_new_session=True,
            )
        except OSError as exc:  # e.g. a bad #! line (ENOEXEC) or an interpreter that is missing
            raise ActionError(f"script: cannot run {path.name!r}: {exc.strerror}", permanent=True) from None
        with proc:
            try:
                _, stderr = proc.communicate(stdin_document(delivery), timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.communicate()
                raise ActionError(f"script: {path.name!r} killed after {timeout:g} s") from None
            except BaseException:
                _kill_group(proc)
                raise
        if proc.returncode != 0:
            code = proc.returncode
            how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
            last = _last_line(stderr)
            raise ActionError(f"script: {path.name!r} {how}" + (f": {last}" if last else ""))
