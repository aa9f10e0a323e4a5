"""Each tree as the console shows it: its workers, their last heartbeat, files, the last check's duration.

Pure: the configured thresholds, the workers as the checks last saw them and the time in; lines out,
the trees in trouble first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rrdalarm.model.definitions import LOCAL_TREE, Threshold
from rrdalarm.model.records import WorkerSeen

# A worker is taken for alive while its last heartbeat is at most this many check intervals old, plus
# the time a check waits for answers (every check pings the workers of each tree it sends shards to).
HEARTBEAT_INTERVALS = 3


@dataclass(frozen=True)
class WorkerLine:
    worker: str
    seen_at: int
    ago_s: int
    alive: bool
    files: int
    shard_duration_s: float | None


@dataclass(frozen=True)
class TreeLine:
    name: str
    thresholds: int
    workers: tuple[WorkerLine, ...]
    files: int
    """Files read by the workers alive, in their last answers."""
    duration_s: float | None
    """How long the tree's part of the newest check took."""
    problem: str | None

    @property
    def alive(self) -> int:
        return sum(1 for w in self.workers if w.alive)


def heartbeat_limit(interval: float, answer_timeout: float) -> float:
    """Seconds after its last heartbeat that a worker is no longer taken for alive."""
    return HEARTBEAT_INTERVALS * interval + answer_timeout


def _problem(configured: int, workers: Sequence[WorkerLine], limit: float) -> str | None:
    """Why a tree that thresholds name is not being read; a tree no threshold names is never a problem."""
    if configured and not workers:
        return "no worker seen yet: start `rrdalarm worker --tree NAME` on the machine that holds its files"
    if configured and not any(w.alive for w in workers):
        return f"no worker alive: none answered for {int(limit)} s; its series are ERROR rows, their states kept"
    return None


def trees_overview(thresholds: Sequence[Threshold], seen: Sequence[WorkerSeen], now: float, interval: float,
                   answer_timeout: float) -> list[TreeLine]:
    """Every tree that a threshold names (but this machine's own) or that a worker served; trouble first."""
    limit = heartbeat_limit(interval, answer_timeout)
    configured: dict[str, int] = {}
    for t in thresholds:
        if t.tree != LOCAL_TREE:
            configured[t.tree] = configured.get(t.tree, 0) + 1
    by_tree: dict[str, list[WorkerSeen]] = {}
    for w in seen:
        by_tree.setdefault(w.tree, []).append(w)
    lines = []
    for name in sorted(set(configured) | set(by_tree)):
        mine = by_tree.get(name, [])
        workers = tuple(WorkerLine(w.worker, int(w.seen_at), max(0, int(now - w.seen_at)), now - w.seen_at <= limit,
                                   w.files, w.shard_duration_s)
                        for w in sorted(mine, key=lambda w: w.worker))
        newest = max((w for w in mine if w.tree_duration_s is not None), key=lambda w: w.seen_at, default=None)
        lines.append(TreeLine(name, configured.get(name, 0), workers, sum(w.files for w in workers if w.alive),
                              newest.tree_duration_s if newest else None,
                              _problem(configured.get(name, 0), workers, limit)))
    return sorted(lines, key=lambda line: (line.problem is None, line.name))
