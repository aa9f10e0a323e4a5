"""The retry horizon ([delivery] retry_for) and requeueing dead deliveries from the CLI and /deliveries."""

from __future__ import annotations

import functools
import re
import time
from pathlib import Path

import pytest
from conftest import T0, Env, WebApp, assert_one_clear_line, check, threshold
from flask import Flask
from test_control_api import logged_in

from rrdalarm.config.settings import load_settings
from rrdalarm.delivery.outbox import deliver_pending
from rrdalarm.model.errors import ConfigError
from rrdalarm.store.database import DeliveryRow, Store

LOG = {"type": "log", "file": "a.log"}


def _settings(env: Env, delivery: str) -> None:
    with env.settings_path.open("a") as fh:
        fh.write("\n[delivery]\n" + delivery)


def _failing_log(env: Env) -> Path:
    """A log action that cannot write (a folder sits where its file goes) until the folder is removed."""
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[LOG]))
    blocker = env.data / "log" / "a.log"
    blocker.mkdir(parents=True)
    return blocker


def _rows(store: Store) -> list[DeliveryRow]:
    return [d for d, _ in store.deliveries(limit=1000)]


def test_retry_for_is_read_and_checked() -> None:
    assert load_settings(None).delivery.retry_for == 24 * 3600
    assert load_settings(None).delivery.max_attempts is None


@pytest.mark.parametrize(("line", "fragment"), [
    ('retry_for = "soon"', "retry_for"),
    ("retry_for = 0", "retry_for"),
    ("max_attempts = 2.5", "max_attempts"),
])
def test_bad_delivery_settings_are_one_line_naming_file_line_and_key(env: Env, line: str, fragment: str) -> None:
    _settings(env, "timeout = 5\n" + line + "\n")
    with pytest.raises(ConfigError) as err:
        env.settings()
    text = str(err.value)
    assert "\n" not in text and fragment in text
    assert text.startswith(f"{env.settings_path}:{len(env.settings_path.read_text().splitlines())}:")
    proc = env.run("deliver")
    assert proc.returncode == 2
    assert_one_clear_line(proc, fragment)


def test_retries_go_on_past_eight_attempts_until_the_horizon(env: Env, store: Store) -> None:
    _settings(env, 'retry_for = "1h"\nbackoff = 1\nmax_backoff = 60\n')
    _failing_log(env)
    start = time.time()
    check(env, store)
    for minute in range(1, 30):
        [r] = deliver_pending(store, env.settings(), clock=functools.partial(float, start + 60 * minute))
        assert r.status == "pending", minute
    [row] = _rows(store)
    assert row.attempts == 30
    # The horizon's own attempt is the last one.
    [last] = deliver_pending(store, env.settings(), clock=lambda: start + 3600 + 5)
    assert last.status == "dead"


def test_max_attempts_still_gives_up_first_when_it_comes_first(env: Env, store: Store) -> None:
    _settings(env, 'retry_for = "1h"\nmax_attempts = 2\nbackoff = 1\nmax_backoff = 1\n')
    _failing_log(env)
    check(env, store)
    start = time.time()
    [r] = deliver_pending(store, env.settings(), clock=lambda: start + 10)
    assert r.status == "dead"


def _dead(env: Env, store: Store) -> Path:
    _settings(env, "max_attempts = 1\n")
    blocker = _failing_log(env)
    check(env, store)
    assert [d.status for d in _rows(store)] == ["dead"]
    return blocker


def test_cli_requeues_a_dead_delivery_by_id_and_sends_it(env: Env, store: Store) -> None:
    blocker = _dead(env, store)
    [row] = _rows(store)
    blocker.rmdir()
    proc = env.run("deliver", "--requeue", row.id, "--author", "carol")
    assert proc.returncode == 0, proc.stderr
    assert f"requeued 1 delivery: {row.id}" in proc.stdout and "1 delivered" in proc.stdout
    [again] = _rows(store)
    assert (again.status, again.attempts) == ("sent", 1)
    [entry] = store.audit()
    assert (entry.user, entry.change) == ("carol", "requeue") and row.id in entry.diff


def test_cli_requeues_every_dead_delivery_since_a_time(env: Env, store: Store) -> None:
    _dead(env, store)
    env.rrd("a.rrd", {"x": [1]}, end=T0 + 3600)
    check(env, store, at=T0 + 3600)  # resolves: a second dead delivery, an hour later
    assert sorted(d.status for d in _rows(store)) == ["dead", "dead"]
    proc = env.run("deliver", "--requeue", "--all-dead", "--since", str(T0 + 1800))
    assert proc.returncode == 1  # the receiver still fails
    assert "requeued 1 delivery" in proc.stdout
    by_created = {d.created_at: d.status for d in _rows(store)}
    assert by_created == {T0: "dead", T0 + 3600: "dead"}  # max_attempts = 1: dead again after its one attempt
    assert [e.change for e in store.audit()] == ["requeue"]


@pytest.mark.parametrize(("args", "fragment"), [
    (("--requeue",), "--requeue needs delivery ids or --all-dead"),
    (("--requeue", "no-such-id"), "no-such-id"),
    (("--all-dead",), "--all-dead needs --requeue"),
    (("--requeue", "--all-dead", "--since", "yesterday-ish"), "--since"),
])
def test_cli_requeue_mistakes_are_one_line(env: Env, store: Store, args: tuple[str, ...], fragment: str) -> None:
    _dead(env, store)
    proc = env.run("deliver", *args)
    assert proc.returncode == 2
    assert_one_clear_line(proc, fragment)
    assert [d.status for d in _rows(store)] == ["dead"]


def test_cli_will_not_requeue_a_sent_delivery(env: Env, store: Store) -> None:
    env.rrd("a.rrd", {"x": [9]})
    env.write_thresholds(threshold(actions=[LOG]))
    check(env, store)
    [row] = _rows(store)
    proc = env.run("deliver", "--requeue", row.id)
    assert proc.returncode == 2
    assert_one_clear_line(proc, row.id, "sent")


@pytest.fixture
def app(env: Env, make_app: WebApp) -> Flask:
    users = [("alice", "correct horse battery", "admin"), ("vic", "correct horse battery", "viewer")]
    app: Flask = make_app(env, users, WTF_CSRF_ENABLED=True)
    return app


def test_an_admin_requeues_from_the_deliveries_page(env: Env, store: Store, app: Flask) -> None:
    blocker = _dead(env, store)
    [row] = _rows(store)
    admin, token = logged_in(app, "alice")
    page = admin.get("/deliveries").get_data(as_text=True)
    assert re.search(rf'action="/deliveries/{row.id}/requeue"', page) and "Requeue</button>" in page
    viewer, vtoken = logged_in(app, "vic")
    assert "Requeue</button>" not in viewer.get("/deliveries").get_data(as_text=True)
    assert viewer.post(f"/deliveries/{row.id}/requeue", data={"csrf_token": vtoken}).status_code == 403
    assert admin.post(f"/deliveries/{row.id}/requeue").status_code == 400  # no CSRF token
    assert [d.status for d in _rows(store)] == ["dead"]
    blocker.rmdir()
    done = admin.post(f"/deliveries/{row.id}/requeue", data={"csrf_token": token}, follow_redirects=True)
    assert done.status_code == 200
    assert f"Delivery {row.id} requeued." in done.get_data(as_text=True)
    [again] = _rows(store)
    assert again.status in ("pending", "sent")
    assert "alice · requeue" in admin.get("/audit").get_data(as_text=True)
    gone = admin.post(f"/deliveries/{row.id}/requeue", data={"csrf_token": token}, follow_redirects=True)
    assert "not requeued" in gone.get_data(as_text=True)
