"""The outbox: grouping, transactions, retries with backoff, leases, dead letters."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import T0, Env, threshold
from hypothesis import given
from hypothesis import strategies as st

from rrdalarm.check.engine import run_check
from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.delivery.dispatch import plan_actions, plan_deliveries
from rrdalarm.delivery.outbox import backoff_delay, deliver_pending
from rrdalarm.model.definitions import ActionSpec, DeliverySettings, Threshold
from rrdalarm.model.events import Delivery
from rrdalarm.model.records import NewEvent
from rrdalarm.model.states import Direction
from rrdalarm.plugins import ActionContext, ActionError, Param, available_actions
from rrdalarm.store.database import DeliveryAttempt, DeliveryRow, Store, open_store


@given(attempts=st.integers(min_value=1, max_value=60), base=st.integers(1, 600), cap=st.integers(1, 86400))
def test_backoff_doubles_and_is_capped(attempts: int, base: int, cap: int) -> None:
    d = backoff_delay(attempts, base, cap)
    assert d == min(cap, base * 2 ** (attempts - 1))
    assert backoff_delay(attempts + 1, base, cap) >= d


def ev(tid: int, kind: str = "fired", series: str = "a.rrd") -> NewEvent:
    status = "RESOLVED" if kind == "resolved" else "ALARM FIRED"
    return NewEvent(tid, f"t{tid}", series, "x", status, kind, "above", 1.0, 2.0, T0, "m")


class Mail:
    """A stand-in plugin class used only for planning (never run): declares a split parameter."""

    name = "mail"
    params = {"to": Param(list, required=True)}  # noqa: RUF012
    legacy_param = None
    split_param = "to"

    def __init__(self, params: object, context: ActionContext) -> None:
        raise AssertionError("not run in planning")

    def run(self, delivery: object) -> None:
        raise ActionError("not run")


def th(tid: int, *actions: ActionSpec) -> Threshold:
    return Threshold(id=tid, name=f"t{tid}", type=Direction.ABOVE, value=1.0, glob="*.rrd", actions=actions)


def test_grouping_per_action_parameters_and_recipient() -> None:
    plugins: dict[str, Any] = {"mail": Mail, **available_actions(None)}
    thresholds = [
        th(1, ActionSpec("mail", {"to": ["a@x.org", "b@x.org"]}), ActionSpec("log", {"file": "one.log"})),
        th(2, ActionSpec("mail", {"to": "a@x.org"}), ActionSpec("log", {"file": "one.log", "on": ["resolve"]})),
    ]
    plan = plan_actions(thresholds, plugins)
    events = [ev(1), ev(2), ev(2, "resolved", "b.rrd"), ev(1, "repeat")]
    got = {(d.action, json.dumps(d.params, sort_keys=True)): d.events for d in plan_deliveries(plan, events)}
    assert got == {
        # a@x.org gets one message with both thresholds' fired and resolved events; repeats are off by default.
        ("mail", '{"to": ["a@x.org"]}'): (0, 1, 2),
        ("mail", '{"to": ["b@x.org"]}'): (0,),
        # threshold 1 logs fire and resolve; threshold 2 only resolve, same file: one delivery.
        ("log", '{"file": "one.log"}'): (0, 2),
    }
    assert len({d.id for d in plan_deliveries(plan, events)}) == 3


def test_bad_on_value_is_a_config_error() -> None:
    from rrdalarm.model.errors import ConfigError

    with pytest.raises(ConfigError, match="'on' must be a list of fire, repeat, resolve"):
        plan_actions([th(1, ActionSpec("log", {"on": ["always"]}))], available_actions(None))


def check(env: Env, store: Store, at: int = T0, **kw: object) -> object:
    settings = env.settings()
    assert settings.thresholds is not None
    return run_check(settings, load_thresholds(settings.thresholds), store, at=at, **kw)  # type: ignore[arg-type]


def rows(store: Store) -> list[DeliveryRow]:
    return [d for d, _ in store.deliveries(limit=1000)]


def test_outbox_rows_are_written_with_the_events(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "a.log"}]))
    check(env, store, deliver=False)
    [d] = rows(store)
    assert (d.status, d.attempts, d.event_ids) == ("pending", 0, [store.events()[0].id])
    assert not (env.data / "log" / "a.log").exists()
    check(env, store, at=T0 + 60, dry_run=True)
    assert len(rows(store)) == 1


def test_failure_then_retry_after_backoff_then_success(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "a.log"}]))
    blocker = env.data / "log" / "a.log"
    blocker.mkdir(parents=True)  # the log file cannot be opened while a folder sits there
    settings = replace(env.settings(), delivery=DeliverySettings(timeout=2, max_attempts=5, backoff=30))
    thresholds = load_thresholds(env.thresholds_path)
    before = int(time.time())
    result = run_check(settings, thresholds, store, at=T0)
    after = int(time.time())
    assert [r.status for r in result.deliveries] == ["pending"]
    assert any("will retry" in w for w in result.warnings)
    [d] = rows(store)
    first_retry = d.next_attempt_at
    # 30 s after the attempt, which the deliverer made on the real clock between `before` and `after`.
    assert int(before) + 30 <= first_retry <= after + 30  # stored in whole seconds
    # Not due yet: nothing happens.
    assert deliver_pending(store, settings, clock=lambda: first_retry - 1) == []
    blocker.rmdir()
    [r] = deliver_pending(store, settings, clock=lambda: first_retry + 1)
    assert r.ok and r.status == "sent"
    [(d, attempts)] = store.deliveries()
    assert d.status == "sent" and [a.ok for a in attempts] == [False, True]
    assert "cannot write" in (attempts[0].error or "")
    assert len((env.data / "log" / "a.log").read_text().splitlines()) == 1
    assert deliver_pending(store, settings, clock=lambda: first_retry + 10_000) == []


def test_gives_up_after_max_attempts(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "a.log"}]))
    (env.data / "log" / "a.log").mkdir(parents=True)
    settings = replace(env.settings(), delivery=DeliverySettings(timeout=2, max_attempts=3, backoff=1, max_backoff=1))
    run_check(settings, load_thresholds(env.thresholds_path), store, at=T0)
    # Deliveries run on the real clock, whatever --at said about the check.
    now = time.time()
    def later(seconds: float) -> Callable[[], float]:
        return lambda: now + seconds

    statuses = [deliver_pending(store, settings, clock=later(t))[0].status for t in (10, 20)]
    assert statuses == ["pending", "dead"]
    assert deliver_pending(store, settings, clock=lambda: now + 99999) == []
    assert store.count(DeliveryAttempt) == 3


def test_uninstalled_action_waits_and_retries(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "a.log"}]))
    check(env, store, deliver=False)
    settings = env.settings()
    [r] = deliver_pending(store, settings, plugins={})
    assert (r.ok, r.status, r.error) == (False, "pending", "action 'log' is not installed")


@pytest.mark.e2e  # real `rrdalarm deliver` processes racing for the outbox
def test_concurrent_deliver_processes_send_each_delivery_once(env: Env, store: Store) -> None:
    for i in range(40):
        env.rrd(f"d/{i}.rrd", {"x": [9]})
    actions = "".join(f'[[threshold.action]]\ntype = "log"\nfile = "f{i}.log"\n' for i in range(30))
    env.write_thresholds(threshold(glob="d/*.rrd") + actions)
    check(env, store, deliver=False)
    assert len(rows(store)) == 30
    cmd = [sys.executable, "-m", "rrdalarm", "deliver", "--quiet"]
    procs = [subprocess.Popen(cmd, env=env.process_env()) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert {d.status for d in rows(store)} == {"sent"}
    assert store.count(DeliveryAttempt) == 30
    for i in range(30):
        assert len((env.data / "log" / f"f{i}.log").read_text().splitlines()) == 40


def test_history_deliveries_and_deliver_command(env: Env) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[{"type": "log", "file": "a.log"}]))
    (env.data / "log" / "a.log").mkdir(parents=True)
    first = env.run("check", "--at", str(T0), "--quiet")
    assert first.returncode == 1 and first.stderr == ""
    failed = env.run("history", "--deliveries", "--json")
    [doc] = [json.loads(line) for line in failed.stdout.splitlines()]
    assert doc["status"] == "pending" and doc["action"] == "log" and not doc["attempts"][0]["ok"]
    assert "cannot write" in doc["attempts"][0]["error"]
    shutil.rmtree(env.data / "log" / "a.log")
    with store_of(env) as s, s.session() as session:
        session.query(DeliveryRow).update({"next_attempt_at": 0})
    p = env.run("deliver")
    assert p.returncode == 0 and "1 delivered" in p.stdout
    text = env.run("history", "--deliveries").stdout
    assert "sent" in text and "ok" in text and "failed: log: cannot write" in text


class store_of:
    def __init__(self, env: Env) -> None:
        self.store = open_store(env.settings().db_url)

    def __enter__(self) -> Store:
        return self.store

    def __exit__(self, *_: object) -> None:
        self.store.close()


def test_secret_references_are_stored_not_values(env: Env, store: Store, tmp_path: Path) -> None:
    from rrdalarm.common.secrets import SecretError, describe, resolve_secret, secret_problem

    (tmp_path / "pw").write_text("s3cret-value\n")
    os.environ["RRDALARM_TEST_SECRET"] = "from-env"
    try:
        assert resolve_secret({"env": "RRDALARM_TEST_SECRET"}, "x") == "from-env"
        assert resolve_secret({"file": str(tmp_path / "pw")}, "x") == "s3cret-value"
    finally:
        del os.environ["RRDALARM_TEST_SECRET"]
    with pytest.raises(SecretError, match="environment variable NOPE_NOT_SET is not set"):
        resolve_secret({"env": "NOPE_NOT_SET"}, "x")
    assert secret_problem({"vault": "x"}) is not None and secret_problem("plain") is None
    assert describe("inline-secret") == "***" and describe({"env": "A"}) == {"env": "A"}


class Leaky:
    """A careless plugin whose error message contains its secret."""

    name = "leaky"
    params = {"token": Param(str, secret=True), "target": Param(str)}  # noqa: RUF012
    legacy_param = None
    split_param = None

    def __init__(self, params: dict[str, Any], context: ActionContext) -> None:
        self.config = params

    def run(self, delivery: object) -> None:
        from rrdalarm.common.secrets import resolve_secret

        raise RuntimeError(f"server said: bad token {resolve_secret(self.config['token'], 'token')}")


def test_secret_values_never_reach_the_recorded_error(env: Env, store: Store) -> None:
    from rrdalarm.model.records import PlannedDelivery, RunSummary

    store.record_check(
        RunSummary(T0, 0.1, 1, 1, 1, 1, 0), [], [ev(1)],
        [PlannedDelivery("d-leaky", "leaky", {"token": {"env": "LEAKY_TOKEN"}, "target": "x"}, (0,))],
    )
    os.environ["LEAKY_TOKEN"] = "tok-123456"
    try:
        [r] = deliver_pending(store, env.settings(), plugins={"leaky": Leaky})  # type: ignore[dict-item]
    finally:
        del os.environ["LEAKY_TOKEN"]
    assert not r.ok
    assert r.error == "RuntimeError: server said: bad token ***"
    [(row, attempts)] = store.deliveries()
    assert "tok-123456" not in (row.last_error or "") + (attempts[0].error or "") + row.params


def test_history_never_prints_secret_parameters() -> None:
    from rrdalarm.actions.apprise import AppriseAction
    from rrdalarm.actions.email import EmailAction
    from rrdalarm.actions.webhook import WebhookAction
    from rrdalarm.cli.main import shown_param

    hook = WebhookAction.params
    assert shown_param(hook["secret"], "hunter2") == "***"
    assert shown_param(hook["secret"], {"env": "HOOK_SECRET"}) == {"env": "HOOK_SECRET"}
    assert shown_param(hook["url"], "https://hooks.example.org/T000/B000/XXXX") == "***"
    assert shown_param(AppriseAction.params["urls"], ["tgram://123:abc/42"]) == "***"
    assert shown_param(hook["headers"], {"Authorization": "Bearer x", "X-Key": {"file": "/k"}}) == {
        "Authorization": "***", "X-Key": {"file": "/k"},
    }
    assert shown_param(EmailAction.params["to"], ["ops@x.org"]) == ["ops@x.org"]
    assert shown_param(None, "of a plugin no longer installed") == "***"


class Capture:
    """Records the sources of the events it is given, in the file CAPTURE_FILE names (it runs in a child process)."""

    name = "capture"
    params: dict[str, Param] = {}  # noqa: RUF012
    legacy_param = None
    split_param = None

    def __init__(self, params: object, context: ActionContext) -> None:
        pass

    def run(self, delivery: Delivery) -> None:
        with open(os.environ["CAPTURE_FILE"], "a") as fh:
            fh.write(json.dumps([e.source for e in delivery.events]) + "\n")


def test_events_carry_their_source(env: Env, store: Store) -> None:
    from rrdalarm.model.records import PlannedDelivery, RunSummary

    ntop = NewEvent(1, "t1", "ntopng:host:traffic{ifid:0,host:10.0.0.1}", "bytes_sent", "ALARM FIRED", "fired",
                    "above", 1.0, 2.0, T0, "m")
    store.record_check(RunSummary(T0, 0.1, 1, 2, 2, 2, 0), [], [ev(1), ntop],
                       [PlannedDelivery("d-cap", "capture", {}, (0, 1))])
    seen = env.base / "captured"
    os.environ["CAPTURE_FILE"] = str(seen)
    try:
        [r] = deliver_pending(store, env.settings(), plugins={"capture": Capture})  # type: ignore[dict-item]
    finally:
        del os.environ["CAPTURE_FILE"]
    assert r.ok
    assert [json.loads(line) for line in seen.read_text().splitlines()] == [["rrd", "ntopng"]]


def test_legacy_action_name_runs_a_drop_in_script_with_its_parameter(env: Env, store: Store) -> None:
    scripts = env.base / "scripts"
    scripts.mkdir()
    out = env.base / "got.txt"
    script = scripts / "sendsms"
    script.write_text(f'#!/bin/sh\necho "$1" > {out}\ncat >> {out}\n')
    script.chmod(0o755)
    with env.settings_path.open("a") as fh:
        fh.write(f'scripts_dir = "{scripts}"\n')
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds("1\ta.rrd\tabove\t5\t0\tnow-1h\tnow\tsendsms\t+4912345\t60\n")
    settings = env.settings()
    result = run_check(settings, load_thresholds(env.thresholds_path), store, at=T0)
    assert [r.ok for r in result.deliveries] == [True], result.warnings
    first, rest = out.read_text().split("\n", 1)
    assert first == "+4912345"
    assert json.loads(rest)["events"][0]["series"] == "a.rrd"
