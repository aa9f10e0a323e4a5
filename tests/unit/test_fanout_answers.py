"""Which answers a check takes for a shard (rrdalarm.cluster.fanout.Fanout._poll)."""

from __future__ import annotations

from typing import Any

from rrdalarm.cluster.fanout import Fanout, Sent
from rrdalarm.cluster.wire import ShardAnswer, encode_answer
from rrdalarm.model.definitions import Settings
from rrdalarm.sources.base import Shard


class Finished:
    """A task's result as Celery's AsyncResult presents a finished one."""

    def __init__(self, result: Any, ok: bool = True) -> None:
        self.result, self.ok = result, ok

    def ready(self) -> bool:
        return True

    def successful(self) -> bool:
        return self.ok


def fanout() -> Fanout:
    return Fanout(None, Settings(), 100, False, {})


def test_an_answer_of_another_check_or_shard_is_a_stray_and_waits_on() -> None:
    fan = fanout()
    one = Sent("a", Shard(1, 4), frozenset(), {})
    one.tasks = [Finished(encode_answer(ShardAnswer("other-check", "a", 1, "w", 0.1))),
                 Finished(encode_answer(ShardAnswer(fan.check, "a", 2, "w", 0.1)))]
    fan._poll(one)
    assert one.answer is None
    one.tasks.append(Finished(encode_answer(ShardAnswer(fan.check, "a", 1, "w", 0.1))))
    fan._poll(one)
    assert one.answer is not None and one.answer.worker == "w" and not one.answer.error


def test_a_task_that_raised_on_its_worker_is_this_shards_answer_with_its_error() -> None:
    fan = fanout()
    one = Sent("a", Shard(0, 4), frozenset(), {})
    one.tasks = [Finished(RuntimeError("disk on fire\nTraceback ..."), ok=False)]
    fan._poll(one)
    assert one.answer is not None and one.answer.error == "task failed: disk on fire"
    assert (one.answer.check, one.answer.tree, one.answer.shard) == (fan.check, "a", 0)
    assert "task failed: disk on fire" in fan._failure("a", [one], 4)
