"""An attempt past its deadline is stopped for good: it cannot send once recorded as failed."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import T0, Env
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from rrdalarm.delivery import outbox
from rrdalarm.delivery.attempts import portable, run_attempts
from rrdalarm.delivery.outbox import deliver_pending
from rrdalarm.model.definitions import DeliverySettings
from rrdalarm.model.events import Delivery
from rrdalarm.model.records import NewEvent, PlannedDelivery, RunSummary
from rrdalarm.plugins import Action, ActionContext, Param, available_actions
from rrdalarm.sources.rrd_pool import forkserver_context
from rrdalarm.store.database import Store, open_store

SLOW_S = 4.0


def note_group() -> None:
    """Say which process group the attempt runs in, beside the file it would 'send' to."""
    Path(os.environ["SLOW_SENT"] + ".pgid").write_text(str(os.getpgid(0)))


def live_members(pgid: int) -> list[int]:
    """The processes of group `pgid` that still run (zombies have stopped: they can send nothing)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended while listed
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            pids.append(int(stat.parent.name))
    return pids


def assert_stopped_for_good(sent: Path) -> None:
    """Nothing of the attempt runs any more, so it can never send: no need to wait out SLOW_S."""
    pgid = int(Path(str(sent) + ".pgid").read_text())
    deadline = time.monotonic() + 5
    while live := live_members(pgid):
        assert time.monotonic() < deadline, f"the attempt's processes {live} still run"
        time.sleep(0.05)
    assert not sent.exists()


class Slow(Action):
    """Ignores its timeout: sleeps, then 'sends' by writing the file SLOW_SENT names."""

    name = "slow"
    params: ClassVar[dict[str, Param]] = {}

    def run(self, delivery: Delivery) -> None:
        note_group()
        time.sleep(SLOW_S)
        Path(os.environ["SLOW_SENT"]).write_text(delivery.id)


class SlowChild(Action):
    """Starts a program (in its own process group) that 'sends' late: the deadline stops it too."""

    name = "slowchild"
    params: ClassVar[dict[str, Param]] = {}

    def run(self, delivery: Delivery) -> None:
        note_group()
        subprocess.run(["sh", "-c", f'sleep {SLOW_S}; echo sent > "$SLOW_SENT"'], check=True)


@pytest.fixture
def store(env: Env) -> Iterator[Store]:
    s = open_store(env.settings().db_url)
    yield s
    s.close()


def event() -> NewEvent:
    return NewEvent(1, "t1", "a.rrd", "x", "ALARM FIRED", "fired", "above", 1.0, 2.0, T0, "m")


@pytest.fixture
def sent(env: Env) -> Iterator[Path]:
    path = env.base / "sent"
    os.environ["SLOW_SENT"] = str(path)
    yield path
    del os.environ["SLOW_SENT"]


@pytest.mark.parametrize("plugin", [Slow, SlowChild])
def test_an_attempt_past_its_deadline_never_sends_after_it_failed(env: Env, store: Store, sent: Path,
                                                                 plugin: type[Action],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The grace an action gets to report its own timeout first, shortened: these actions never do.
    monkeypatch.setattr(outbox, "_GRACE_S", 0.3)
    store.record_check(RunSummary(T0, 0.1, 1, 1, 1, 1, 0), [], [event()],
                       [PlannedDelivery("d-slow", plugin.name, {}, (0,))])
    settings = replace(env.settings(), delivery=DeliverySettings(timeout=1, max_attempts=3, backoff=1))
    [r] = deliver_pending(store, settings, plugins={plugin.name: plugin})
    assert (r.ok, r.error, r.status) == (False, "timed out after 1 s", "pending")
    [(row, attempts)] = store.deliveries()
    assert (row.status, row.last_error, row.lease_until) == ("pending", "timed out after 1 s", None)
    assert [(a.ok, a.error) for a in attempts] == [(False, "timed out after 1 s")]
    assert_stopped_for_good(sent)


def test_a_slow_webhook_receiver_times_out_and_a_fast_one_gets_its_delivery(env: Env, store: Store) -> None:
    def slow(request: Request) -> Response:
        time.sleep(3)
        return Response("late")

    # A threaded receiver: the slow answer must not hold back the fast one's request.
    server = HTTPServer(threaded=True)
    server.start()
    try:
        server.expect_request("/slow").respond_with_handler(slow)
        server.expect_request("/fast").respond_with_data("ok")
        store.record_check(RunSummary(T0, 0.1, 1, 1, 1, 1, 0), [], [event()], [
            PlannedDelivery("d-slow", "webhook", {"url": server.url_for("/slow")}, (0,)),
            PlannedDelivery("d-fast", "webhook", {"url": server.url_for("/fast")}, (0,)),
        ])
        settings = replace(env.settings(), delivery=DeliverySettings(timeout=1, max_attempts=1))
        results = {r.delivery_id: r for r in deliver_pending(store, settings)}
        assert results["d-fast"].ok and results["d-fast"].status == "sent"
        assert not results["d-slow"].ok and results["d-slow"].status == "dead"
        assert results["d-slow"].error == f"webhook: {server.url_for('').rstrip('/')}: no answer within 1 s"
    finally:
        server.clear()
        server.stop()


def delivery(ident: str, action: str) -> Delivery:
    return Delivery(ident, action, {}, (), 1, T0)


@pytest.mark.parametrize("start", ["fork", "forkserver"])
def test_attempts_run_and_are_stopped_under_either_start(env: Env, sent: Path, start: str) -> None:
    mp = multiprocessing.get_context("fork") if start == "fork" else forkserver_context([])
    scripts = env.base / "scripts"
    scripts.mkdir()
    script = scripts / "note"
    script.write_text(f'#!/bin/sh\ncat > "{env.base}/noted"\n')
    script.chmod(0o755)
    context = ActionContext(log_dir=env.base, data_dir=env.base, scripts_dir=scripts, timeout=1)
    plugins = available_actions(scripts)
    jobs = [(portable(Slow, "slow"), delivery("a", "slow")),
            (portable(plugins["note"], "note"), delivery("b", "note")),
            (portable(None, "gone"), delivery("c", "gone"))]
    assert jobs[1][0] == (plugins["script"], "note")  # a drop-in's class is made at run time: it goes as its parts
    slow, note, gone = run_attempts(jobs, context, 2.0, mp)
    assert slow.outcome == (False, "timed out after 1 s", False)
    assert note.outcome == (True, None, False)
    assert json.loads((env.base / "noted").read_text())["delivery_id"] == "b"
    assert gone.outcome == (False, "action 'gone' is not installed", False)
    assert_stopped_for_good(sent)
