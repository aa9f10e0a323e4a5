"""The coordinator side: one task per (tree, shard), answers gathered into one SourceReport for the engine.

A shard with no answer by the redo time is sent once more (a duplicate answer is ignored); one
with none by answer_timeout becomes ERROR outcomes: a row per threshold of the tree saying so, and
one per firing series of the shard, so that those states are kept, as for an unreadable file. A
tree that is down costs the check at most answer_timeout and never stops the other trees; a broker
or result backend that is down costs it about a second (Celery's own retries), since no answer can
come through it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rrdalarm.cluster.app import TASK, make_app, queue_name, shown, tree_of
from rrdalarm.cluster.wire import ShardAnswer, ShardRequest, WireError, decode_answer, encode_request, thresholds_text
from rrdalarm.model.definitions import Settings, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.records import WorkerSeen
from rrdalarm.sources.base import Outcome, OutcomeKind, SeriesKey, Shard, Source, SourceReport

PING_TIMEOUT_S = 0.5
POLL_FIRST_S, POLL_MAX_S = 0.02, 0.2


@dataclass
class Sent:
    """One shard of one tree in this check: its tasks (the first, and the redo), and its answer."""

    tree: str
    shard: Shard
    firing: frozenset[SeriesKey]
    payload: dict[str, Any]
    tasks: list[Any] = field(default_factory=list)
    answer: ShardAnswer | None = None
    answered_at: float | None = None
    problem: str = ""


@dataclass
class TreesChecked:
    """The trees' outcomes and counters, and the workers seen (for the store)."""

    report: SourceReport = field(default_factory=SourceReport)
    seen: list[WorkerSeen] = field(default_factory=list)


_apps: dict[tuple[str, float], Any] = {}


def _app(settings: Settings) -> Any:
    """One Celery app (and its connection pools) per broker, kept across the service's checks."""
    key = (repr(settings.cluster), settings.cluster.answer_timeout)
    if key not in _apps:
        _apps[key] = make_app(settings)
    return _apps[key]


def collect_trees(settings: Settings, thresholds: Sequence[Threshold], firing: frozenset[SeriesKey], now: int,
                  want_ok: bool, sources: Mapping[str, type[Source]]) -> TreesChecked:
    """Check the thresholds of every tree but the local one on that tree's workers."""
    trees: dict[str, list[Threshold]] = {}
    for t in thresholds:
        trees.setdefault(t.tree, []).append(t)
    try:
        app = _app(settings)
    except ConfigError as exc:  # the broker's secret cannot be read: every tree says so, the rest goes on
        return _unsent(trees, firing, sources, str(exc))
    fan = Fanout(app, settings, now, want_ok, sources)
    started = time.monotonic()
    sent = fan.send(trees, firing)
    pinged = fan.ping()
    fan.gather(sent, started)
    if fan.down:
        _apps.clear()  # its connections may be broken for good: the next check starts afresh
    return TreesChecked(fan.merge(trees, sent), fan.workers(trees, sent, pinged, started))


def _unsent(trees: Mapping[str, list[Threshold]], firing: frozenset[SeriesKey],
            sources: Mapping[str, type[Source]], why: str) -> TreesChecked:
    out = TreesChecked()
    for tree, ts in sorted(trees.items()):
        ids = {t.id for t in ts}
        keys = [k for k in sorted(firing) if k[0] in ids]
        out.report.outcomes.extend(_problem_outcomes(ts, keys, sources, f"tree {tree}: {why}"))
    return out


def _problem_outcomes(thresholds: Iterable[Threshold], firing: Iterable[SeriesKey],
                      sources: Mapping[str, type[Source]], message: str) -> list[Outcome]:
    """A row per threshold, and an ERROR per firing series, whose state is thereby kept."""
    out = [Outcome(t.id, sources[t.source].describe(t), "", OutcomeKind.ERROR, message=message) for t in thresholds]
    out.extend(Outcome(tid, series, ds, OutcomeKind.ERROR, message=message) for tid, series, ds in firing)
    return out


class Fanout:
    """Sends a check's shards, gathers their answers, and turns what is missing into outcomes."""

    def __init__(self, app: Any, settings: Settings, now: int, want_ok: bool,
                 sources: Mapping[str, type[Source]]) -> None:
        self.app, self.now, self.want_ok, self.sources = app, now, want_ok, sources
        self.cluster = settings.cluster
        self.check = uuid.uuid4().hex
        self.down = ""  # why the broker or the result backend failed: the rest is not even tried

    def send(self, trees: Mapping[str, list[Threshold]], firing: frozenset[SeriesKey]) -> list[Sent]:
        sent = []
        count = self.cluster.shards_per_tree
        for tree, ts in sorted(trees.items()):
            text = thresholds_text(ts)
            source_of = {t.id: self.sources[t.source] for t in ts}
            parts: dict[int, set[SeriesKey]] = {i: set() for i in range(count)}
            for key in firing:
                if key[0] in source_of:
                    parts[source_of[key[0]].shard_of(key[1], count)].add(key)
            for i in range(count):
                keys = frozenset(parts[i])
                request = ShardRequest(self.check, tree, text, self.now, Shard(i, count), self.want_ok, keys)
                one = Sent(tree, Shard(i, count), keys, encode_request(request))
                self._publish(one)
                sent.append(one)
        return sent

    def _publish(self, one: Sent) -> None:
        if self.down:
            one.problem = self.down
            return
        task_id = f"{self.check}.{one.tree}.{one.shard.index}.{len(one.tasks)}"
        try:
            one.tasks.append(self.app.send_task(TASK, args=[one.payload], queue=queue_name(one.tree),
                                                task_id=task_id, expires=self.cluster.answer_timeout))
        except Exception as exc:  # noqa: BLE001 - kombu's and each transport's errors all mean "could not send"
            self.down = one.problem = f"broker {shown(self.app.conf.broker_url)} unreachable: {_first_line(exc)}"

    def ping(self) -> list[str]:
        """The node names of the workers that answer a ping now (busy ones too: their pool is threads)."""
        if self.down:
            return []
        try:
            replies = self.app.control.ping(timeout=PING_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - no heartbeat this time; the answers still count
            return []
        return sorted(name for reply in replies or [] for name in reply)

    def gather(self, sent: list[Sent], started: float) -> None:
        """Poll the answers until all came, answer_timeout passed or the result backend failed; send what is
        missing again once."""
        deadline = started + self.cluster.answer_timeout
        redo_at = started + self.cluster.redo_delay
        redone = False
        pause = POLL_FIRST_S
        waiting = [s for s in sent if s.tasks]
        while waiting and not self.down and time.monotonic() < deadline:
            for one in waiting:
                self._poll(one)
                if self.down:
                    break
            waiting = [s for s in waiting if s.answer is None]
            if waiting and not redone and time.monotonic() >= redo_at:
                redone = True
                for one in waiting:
                    self._publish(one)
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())) if waiting and not self.down else 0)
            pause = min(POLL_MAX_S, pause * 1.5)
        for one in waiting:
            if one.answer is None and self.down:
                one.problem = self.down
        if not self.down:  # else each try would wait on the backend again; the answers expire on their own
            for one in sent:
                self._forget(one)

    def _poll(self, one: Sent) -> None:
        for task in one.tasks:
            try:
                if not task.ready():
                    continue
                answer = _answer_of(task)
            except Exception as exc:  # noqa: BLE001 - every transport has its own errors
                # Past the backend's own retries: no answer can come through it in this check, and waiting
                # for answer_timeout would hold up this machine's tree (and the next check) for nothing.
                self.down = one.problem = f"result backend unreachable: {_first_line(exc)}"
                return
            if not answer.check:  # the task raised on its worker: sending it again would only raise again
                answer = replace(answer, check=self.check, tree=one.tree, shard=one.shard.index)
            # Only this check's answer for this shard counts; anything else is a stray duplicate.
            if answer.check == self.check and answer.tree == one.tree and answer.shard == one.shard.index:
                one.answer, one.answered_at = answer, time.monotonic()
                return

    def _forget(self, one: Sent) -> None:
        for task in one.tasks:
            with contextlib.suppress(Exception):  # it expires on its own (result_expires)
                task.forget()

    def merge(self, trees: Mapping[str, list[Threshold]], sent: Sequence[Sent]) -> SourceReport:
        """The answered shards' reports, and ERROR outcomes for the shards of each tree that failed."""
        report = SourceReport()
        for tree, ts in sorted(trees.items()):
            mine = [s for s in sent if s.tree == tree]
            failed = [s for s in mine if s.answer is None or s.answer.error]
            for one in mine:
                if one.answer is not None and not one.answer.error:
                    report.add(one.answer.report)
            if failed:
                message = self._failure(tree, failed, len(mine))
                keys = sorted(k for s in failed for k in s.firing)
                report.outcomes.extend(_problem_outcomes(ts, keys, self.sources, message))
        return report

    def _failure(self, tree: str, failed: Sequence[Sent], count: int) -> str:
        """One line for the shards of a tree that gave no usable answer."""
        errors = sorted({f"{s.answer.worker}: {s.answer.error}" for s in failed if s.answer is not None})
        unsent = sorted({s.problem for s in failed if not s.tasks})
        cut = sorted({s.problem for s in failed if s.answer is None and s.tasks and s.problem})
        silent = [s for s in failed if s.answer is None and s.tasks and not s.problem]
        parts = [f"not sent: {why}" for why in unsent] + [f"no answer: {why}" for why in cut]
        if silent:
            which = "" if len(silent) == count else " (shard " + ", ".join(
                str(s.shard.index + 1) for s in silent) + f" of {count})"
            parts.append(f"no worker answered within {self.cluster.answer_timeout:g} s{which}")
        parts.extend(errors)
        return f"tree {tree}: " + "; ".join(parts)

    def workers(self, trees: Mapping[str, list[Threshold]], sent: Sequence[Sent], pinged: Sequence[str],
                started: float) -> list[WorkerSeen]:
        """Each worker that answered a shard or the ping, with what it did in this check."""
        wall = time.time()
        took: dict[str, float] = {}
        for tree in trees:
            times = [s.answered_at for s in sent if s.tree == tree]
            took[tree] = (max(t for t in times if t is not None) if None not in times and times
                          else time.monotonic()) - started
        seen: dict[tuple[str, str], WorkerSeen] = {}
        for node in pinged:
            served = tree_of(node)
            if served is not None:
                seen[(served, node)] = WorkerSeen(served, node, wall, tree_duration_s=took.get(served))
        for one in sent:
            a = one.answer
            if a is None:
                continue
            was = seen.get((one.tree, a.worker)) or WorkerSeen(one.tree, a.worker, wall, tree_duration_s=took[one.tree])
            longest = max(a.duration_s, was.shard_duration_s or 0.0)
            seen[(one.tree, a.worker)] = WorkerSeen(one.tree, a.worker, wall, was.files + a.report.files_checked,
                                                    longest, took[one.tree])
        return [seen[k] for k in sorted(seen)]


def _answer_of(task: Any) -> ShardAnswer:
    """The answer a finished task holds; a task that raised on the worker is an answer with its error."""
    if not task.successful():
        return ShardAnswer("", "", -1, "", 0.0, error=f"task failed: {_first_line(task.result)}")
    try:
        return decode_answer(task.result)
    except WireError as exc:
        return ShardAnswer("", "", -1, "", 0.0, error=str(exc))


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
