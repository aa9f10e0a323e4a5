"""Worker processes of the RRD source: where files are fetched, so that a crash there is not the check's.

librrd maps each file it reads: a file truncated under a fetch raises SIGBUS in the
process that reads it, and a damaged file can make librrd segfault. Fetching in
worker processes keeps those deaths out of the check. multiprocessing.Pool is not
used: it quietly replaces a dead worker and the task that worker held never comes
back, so the check hung. Here every worker holds one task on its own pipe, so a
death is seen (its sentinel) and pinned on that task: each of its items is tried
once more alone, and an item whose worker dies again is given up as `Lost`.
Workers that cannot start at all make the pool fall back to this process, with a
warning, instead of starting new ones forever.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkContext, ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

J = TypeVar("J")
"""What every worker of one pool shares (sent once, when it starts)."""
I = TypeVar("I")  # noqa: E741
"""One item of a task: the unit that is retried alone and given up alone."""
R = TypeVar("R")
"""What a task gives back."""

START_TIMEOUT = 60.0
"""A worker that has not said it is ready by then is taken for one that cannot start."""
PARENT_WATCH_S = 0.5
"""How often an idle forked worker looks whether its check is still alive."""

WORKER_NICENESS = 10
"""Added to a worker's nice value: reading files for a check is background work next to a page request."""

_READY = "ready"
_DONE = "done"
_FAILED = "failed"

_forkserver_lock = threading.Lock()


@dataclass(frozen=True)
class Lost(Generic[I]):
    """An item whose worker died twice while working on it; `how` says how the last one died."""

    item: I
    how: str


@dataclass(frozen=True)
class _Task(Generic[I]):
    items: list[I]
    retry: bool


@dataclass
class _Worker(Generic[I]):
    process: BaseProcess
    conn: Connection
    started: float
    ready: bool = False
    task: _Task[I] | None = None


def _orphaned(parent: int) -> bool:
    """Whether the check that forked this worker has died (parent 0: a fork server's worker, whose pipe closes)."""
    return parent != 0 and os.getppid() != parent


def _yield_cpu() -> None:
    """Give the processes that answer people (the service's pages, the collectors) the CPU first."""
    with contextlib.suppress(OSError):  # not allowed here: the worker just runs at its parent's priority
        os.nice(WORKER_NICENESS)


def _serve(conn: Connection, fn: Callable[[Any, list[Any]], Any], job: Any, parent: int = 0) -> None:
    """A worker's life: say it is ready, then run tasks until the parent closes the pipe or dies.

    A forked worker holds a copy of the parent's end of its pipe (and of whatever else the parent had
    open, the check lock's connection among them): killed with SIGKILL, the parent never closes it, so
    no EOF comes and the worker watches for its own reparenting instead.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops its workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker keeps the handlers of its parent
    _yield_cpu()
    conn.send((_READY, None))
    while True:
        try:
            while not conn.poll(PARENT_WATCH_S):
                if _orphaned(parent):
                    return
            task = conn.recv()
        except EOFError:
            return
        try:
            result = fn(job, task)
        except Exception:  # noqa: BLE001 - a bug, not bad data: the parent raises it, as it would in-process
            conn.send((_FAILED, traceback.format_exc()))
            return
        conn.send((_DONE, result))


def _how_it_died(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"


def main_script_imports() -> list[str]:
    """Modules the parent's main script took names from, when each worker runs that script again.

    multiprocessing runs a main script given by path once more in every new worker
    (so that what it defines can be unpickled there): the console script `rrdalarm`
    imports rrdalarm.cli.main, some 0.3 s. Preloaded in the fork server, that is paid once
    per fork server instead of once per worker and check.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if main is None or getattr(main, "__file__", None) is None or (spec and spec.name.endswith("__main__")):
        return []  # -c, interactive, or `python -m pkg`: nothing is run again
    names = set()
    for value in vars(main).values():
        name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if isinstance(name, str) and name not in ("__main__", "__mp_main__", "builtins"):
            names.add(name)
    return sorted(names)


def forkserver_context(preload: Sequence[str]) -> ForkServerContext:
    """The forkserver context, its server running with a safe import path.

    The fork server runs `python -c`, which puts the working directory first on
    sys.path (Python 3.11 also ignores the parent's sys.path there): run from /etc
    or /opt, a folder named rrdalarm there would be imported instead of this
    package by the preload, and every worker would inherit it. PYTHONSAFEPATH keeps
    the working directory off; the workers then get the parent's sys.path.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([*preload, *main_script_imports()])
    with _forkserver_lock:
        saved = os.environ.get("PYTHONSAFEPATH")
        os.environ["PYTHONSAFEPATH"] = "1"
        try:
            forkserver.ensure_running()
        finally:
            if saved is None:
                del os.environ["PYTHONSAFEPATH"]
            else:
                os.environ["PYTHONSAFEPATH"] = saved
    return ctx


def worker_context(preload: Sequence[str]) -> ForkContext | ForkServerContext:
    """fork while this process has one thread (a cron check): a worker then costs a few ms, not an interpreter.

    With other threads about (serve: the scheduler, the web server), a fork could copy a
    lock one of them holds; the fork server, started once, forks from a clean process.
    """
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return forkserver_context(preload)


class WorkerPool(Generic[J, I, R]):
    """Runs `fn(job, task)` for each task in worker processes; yields results as they come.

    `size` workers at most; `grow` raises it. Results come in any order; an item
    is never run twice unless its first worker died. `warnings` says when the
    workers could not start and the tasks ran in this process.
    """

    def __init__(self, fn: Callable[[J, list[I]], R], job: J, size: int, preload: Sequence[str] = ()) -> None:
        self.fn, self.job, self.size = fn, job, size
        self.preload = tuple(preload)
        self.warnings: list[str] = []
        self._ctx: ForkContext | ForkServerContext | None = None
        self._workers: list[_Worker[I]] = []
        self._queue: deque[_Task[I]] = deque()
        self._cannot_start: str | None = None
        self._top_up(size)  # now: they start while the caller gets the tasks ready

    def __enter__(self) -> WorkerPool[J, I, R]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def grow(self, size: int) -> None:
        self.size = max(self.size, size)

    def close(self) -> None:
        """Stop every worker (idle ones are waiting for a task; a busy one is abandoned)."""
        for w in self._workers:
            w.conn.close()
            w.process.terminate()
        for w in self._workers:
            w.process.join()
        self._workers.clear()

    def run(self, tasks: Iterable[list[I]]) -> Iterator[R | Lost[I]]:
        self._queue.extend(_Task(t, retry=False) for t in tasks)
        while self._queue or any(w.task for w in self._workers):
            busy = sum(1 for w in self._workers if w.task)
            self._top_up(min(self.size, busy + len(self._queue)))
            if not self._workers:
                yield from self._run_here()
                return
            self._assign()
            yield from self._step()

    def _top_up(self, want: int) -> None:
        while self._cannot_start is None and len(self._workers) < want:
            try:
                self._workers.append(self._start())
            except (OSError, EOFError) as exc:  # no fork server, no process: as good as a worker that died
                self._cannot_start = str(exc)

    def _start(self) -> _Worker[I]:
        if self._ctx is None:
            self._ctx = worker_context(self.preload)
        ours, theirs = self._ctx.Pipe()
        forked = self._ctx.get_start_method() == "fork"
        process = self._ctx.Process(target=_serve, args=(theirs, self.fn, self.job, os.getpid() if forked else 0),
                                    daemon=True)
        process.start()
        theirs.close()  # the worker's end lives in the worker only: its death reads as EOF here
        return _Worker(process, ours, time.monotonic())

    def _assign(self) -> None:
        # Only to a ready worker: one that never reads could otherwise block this send for good.
        for w in self._workers:
            if w.ready and w.task is None and self._queue:
                task = self._queue.popleft()
                try:
                    w.conn.send(task.items)
                except OSError:  # it just died; its sentinel says so next, and the task waits for another
                    self._queue.appendleft(task)
                else:
                    w.task = task

    def _step(self) -> Iterator[R | Lost[I]]:
        """Wait for one or more workers to answer or die, and deal with what happened."""
        conns = {w.conn: w for w in self._workers}
        sentinels = {w.process.sentinel: w for w in self._workers}
        starting = [w.started + START_TIMEOUT for w in self._workers if not w.ready]
        timeout = max(0.0, min(starting) - time.monotonic()) if starting else None
        ready = wait([*conns, *sentinels], timeout)
        if not ready:
            for w in self._workers:
                if not w.ready and time.monotonic() >= w.started + START_TIMEOUT:
                    w.process.kill()  # its sentinel reports it next time round, as a worker that cannot start
            return
        seen: list[_Worker[I]] = []
        for obj in ready:
            w = sentinels[obj] if isinstance(obj, int) else conns[obj]  # type: ignore[index]
            if not any(w is s for s in seen):
                seen.append(w)
                yield from self._read(w)

    def _read(self, w: _Worker[I]) -> Iterator[R | Lost[I]]:
        """Take every message the worker has sent; if its pipe is closed, it is gone."""
        while True:
            try:
                if not w.conn.poll():
                    if w.process.is_alive():
                        return
                    raise EOFError  # dead, and all it said has been read
                kind, body = w.conn.recv()
            except (EOFError, OSError):
                yield from self._bury(w)
                return
            if kind == _READY:
                w.ready = True
            elif kind == _DONE:
                w.task = None
                yield body
            else:
                self.close()
                raise RuntimeError(f"a fetch worker failed:\n{body}")

    def _bury(self, w: _Worker[I]) -> Iterator[Lost[I]]:
        """A worker is gone: retry what it held, or give it up if this was already the retry."""
        self._workers.remove(w)
        w.conn.close()
        w.process.join(5)
        if w.process.exitcode is None:  # closed its pipe yet lingers: it has nothing left to give
            w.process.kill()
            w.process.join()
        how = _how_it_died(w.process.exitcode)
        task = w.task
        if not w.ready:
            # Died before it could take a task: an import error, a broken interpreter. Starting more would loop.
            self._cannot_start = how
            return
        if task is None:
            return
        if task.retry:
            for item in task.items:
                yield Lost(item, how)
            return
        self._queue.extendleft(_Task([item], retry=True) for item in reversed(task.items))

    def _run_here(self) -> Iterator[R]:
        """No worker can start: run what is left in this process, as a check without workers would."""
        self.warnings.append(f"fetch workers could not start ({self._cannot_start}); files were read by the check "
                             "process itself")
        while self._queue:
            yield self.fn(self.job, self._queue.popleft().items)
