"""One delivery attempt in a child process that is killed at its deadline.

A thread cannot be stopped: an attempt abandoned past its timeout could still send,
later, a delivery already recorded as failed. A process can. Each attempt runs in
its own process group, so a program the action started dies with it. Processes
start by fork while the caller has one thread (a few ms), else from the fork
server (rrdalarm.sources.rrd_pool), never by forking a process whose other threads
may hold locks. This module stays free of the database layer: the fork server's
children import it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkContext, ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Any

from rrdalarm.common.secrets import SecretError, redact, resolve_secret
from rrdalarm.model.events import Delivery
from rrdalarm.plugins import Action, ActionContext, ActionError, available_actions, drop_in
from rrdalarm.sources.rrd_pool import worker_context

Outcome = tuple[bool, str | None, bool]
"""ok, the error's one line (secret-free), and whether retrying is pointless."""

# How the child finds its action: the class itself (imported there by name); a drop-in script's class,
# made at run time, as its base and script; any other class that cannot travel, by its action's name.
PluginRef = type | tuple[type, str] | str | None


def secret_values(plugin: type[Action] | None, params: Mapping[str, Any], context: ActionContext) -> list[str]:
    """Every secret this delivery could know, to scrub from its error text."""
    refs: list[Any] = [context.smtp.password if context.smtp else None]
    if plugin is not None:
        refs += [params.get(k) for k, spec in plugin.params.items() if spec.secret]
    values = []
    for ref in refs:
        try:
            value = resolve_secret(ref, "secret")
        except SecretError:
            continue
        if value:
            values.append(value)
    return values


def run_action(plugin: type[Action] | None, delivery: Delivery, context: ActionContext) -> Outcome:
    try:
        if plugin is None:
            raise ActionError(f"action '{delivery.action}' is not installed")
        plugin(delivery.params, context).run(delivery)
        return True, None, False
    except ActionError as exc:
        error, permanent = (str(exc).splitlines() or ["failed"])[0], exc.permanent
    except Exception as exc:  # noqa: BLE001 - a broken plugin is one failed delivery, not a crash
        error, permanent = f"{exc.__class__.__name__}: {exc}".splitlines()[0], False
    # Actions promise secret-free messages; this is the second line of defence.
    return False, redact(error, secret_values(plugin, delivery.params, context)), permanent


def portable(plugin: type[Action] | None, name: str) -> PluginRef:
    if plugin is None:
        return None
    script = getattr(plugin, "fixed_script", None)
    ref: PluginRef = (plugin.__bases__[0], script) if isinstance(script, str) and plugin.__bases__ else plugin
    try:
        pickle.dumps(ref)
    except (pickle.PicklingError, AttributeError, TypeError):
        return name
    return ref


def _resolve(ref: PluginRef, context: ActionContext) -> type[Action] | None:
    if isinstance(ref, tuple):
        return drop_in(*ref)
    if isinstance(ref, str):
        return available_actions(context.scripts_dir).get(ref)
    return ref


def _watch(alive: Connection) -> None:
    """Kill this attempt's group once the process that runs it is gone: nobody would record what it did."""
    with contextlib.suppress(EOFError, OSError):
        alive.recv()
    os.killpg(0, signal.SIGKILL)


def _child(out: Connection, alive: Connection, inherited: Connection | None, env: dict[str, str], cwd: str,
           ref: PluginRef, delivery: Delivery, context: ActionContext) -> None:
    os.setpgid(0, 0)
    if inherited is not None:
        inherited.close()  # forked: the parent's end of `alive`, which would keep it open
    threading.Thread(target=_watch, args=(alive,), daemon=True).start()
    # A fork server's child has the environment and folder of the server's start, not of now.
    os.environ.clear()
    os.environ.update(env)
    with contextlib.suppress(OSError):
        os.chdir(cwd)
    plugin = _resolve(ref, context)
    out.send(None)  # the action starts: its time runs from here, not from the start of this process
    out.send(run_action(plugin, delivery, context))
    out.close()


@dataclass(frozen=True)
class Finished:
    outcome: Outcome
    duration_s: float


@dataclass
class _Running:
    proc: BaseProcess
    result: Connection
    started: float
    running_since: float | None = None
    outcome: Outcome | None = None

    def deadline(self, deadline_s: float) -> float:
        if self.running_since is None:
            return self.started + START_LIMIT_S
        return self.running_since + deadline_s


# How long a child may take to start (import its action) before its action's time starts counting.
START_LIMIT_S = 5.0


def run_attempts(jobs: Sequence[tuple[PluginRef, Delivery]], context: ActionContext, deadline_s: float,
                 mp: ForkContext | ForkServerContext | None = None) -> list[Finished]:
    """Run each job's attempt at once, in parallel; one past `deadline_s` is killed and counts as timed out."""
    mp = mp or worker_context([__name__])
    env, cwd = dict(os.environ), os.getcwd()
    alive, keep = mp.Pipe(duplex=False)
    inherited = keep if isinstance(mp, ForkContext) else None
    try:
        running = [_start(mp, (alive, inherited, env, cwd), ref, d, context) for ref, d in jobs]
        _await(running, context, deadline_s)
    finally:
        alive.close()
        keep.close()
    return [Finished(r.outcome or (False, "no outcome", False), time.monotonic() - r.started) for r in running]


def _await(running: list[_Running], context: ActionContext, deadline_s: float) -> None:
    open_ = list(running)
    while open_:
        now = time.monotonic()
        for r in [r for r in open_ if now >= r.deadline(deadline_s)]:
            _kill(r)
            r.outcome = (False, f"timed out after {context.timeout:g} s", False)
            open_.remove(r)
        if not open_:
            return
        soonest = min(r.deadline(deadline_s) for r in open_)
        ready = set(wait([r.result for r in open_] + [r.proc.sentinel for r in open_], max(0.0, soonest - now)))
        for r in [r for r in open_ if r.result in ready or r.proc.sentinel in ready]:
            _read(r)
            if r.outcome is not None:
                open_.remove(r)


def _start(mp: ForkContext | ForkServerContext, shared: tuple[Any, ...], ref: PluginRef, d: Delivery,
           context: ActionContext) -> _Running:
    receive, send = mp.Pipe(duplex=False)
    proc = mp.Process(target=_child, args=(send, *shared, ref, d, context), daemon=True,
                      name=f"deliver-{d.id[:8]}")
    started = time.monotonic()
    proc.start()
    send.close()
    return _Running(proc, receive, started)


def _read(r: _Running) -> None:
    """Take what the child said: that its action started, or the outcome (a child gone silent has failed)."""
    try:
        while r.result.poll():
            said: Outcome | None = r.result.recv()
            if said is None:
                r.running_since = time.monotonic()
            else:
                r.outcome = said
                break
    except (EOFError, OSError):
        pass
    if r.outcome is None and not r.proc.is_alive():
        r.outcome = (False, f"the action's process ended without an outcome (exit status {r.proc.exitcode})", False)
    if r.outcome is not None:
        r.proc.join(5)
        r.result.close()


def _kill(r: _Running) -> None:
    """Stop the attempt and all it started: after this it can send nothing."""
    pid = r.proc.pid
    if pid is not None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:  # not yet its own group: the process alone
            r.proc.kill()
    r.proc.join()
    r.result.close()
