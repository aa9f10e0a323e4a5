"""Crash safety (issue #16): `check`, `deliver` and `serve` SIGKILLed at random moments lose and double nothing.

A tree of RRD files whose series flip between OK and FIRING in a seeded pattern is checked at T0, T0+180, …
twice: once uninterrupted (the reference, its own data dir and database), once by real `rrdalarm check --at T`
processes killed at random and started again at the same T until one completes, with `rrdalarm deliver`
processes killed beside them and `rrdalarm serve --no-scheduler` killed and restarted while its editor saves
the thresholds file and /start runs checks of its own. Afterwards the event history equals the reference's,
every delivery reached the webhook receiver at least once (a duplicate only under the same id), the TOML files
parse and the database passes its integrity check.

Each kill comes after a delay drawn over 1.3 times the length of a whole check on this machine (measured
first), not over a fixed 300 ms: a check spends its first few hundred milliseconds importing, and the kills
that matter land in its fetch, its one recording transaction and its deliveries after it.

The normal suite kills about 70 times; `RRDALARM_KILLS=1000` (bench/crash_long.sh) runs the long form, and
`RRDALARM_CRASH_PG=1` adds a run on PostgreSQL. `RRDALARM_CRASH_SEED` replays a seed the test printed.
"""

from __future__ import annotations

import functools
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import T0, Env, free_port, make_env, threshold
from sqlalchemy import text

from rrdalarm.delivery.outbox import deliver_pending
from rrdalarm.editor.thresholds_edit import version_of
from rrdalarm.store.database import open_store

KILLS = int(os.environ.get("RRDALARM_KILLS", "70"))
BUDGET_S = float(os.environ.get("RRDALARM_CRASH_BUDGET", "45" if KILLS <= 100 else "3600"))
SERIES = 4
STEP_S = 180  # a check every 3 minutes; each check's newest point lies in a block of 3 of the same value
MAX_KILLS_PER_TIME = 3  # then the check at that time runs to its end, so the run moves on
PASSWORD = "crash test password"
TOKEN = "crash-test-token-0123456789"
Event = tuple[int, str, str, str, str, int]  # threshold, series, ds, kind, status, check time


class Receiver(ThreadingHTTPServer):
    """A webhook receiver recording every POST that arrives: (path, header id, body)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def arrivals(self, path: str) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return [(ident, body) for p, ident, body in self.seen if p == path]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server: Receiver = self.server  # type: ignore[assignment]
        with server.lock:
            server.seen.append((self.path, self.headers["X-Rrdalarm-Delivery"], body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dataclass
class Tally:
    check: int = 0
    deliver: int = 0
    serve: int = 0
    edits: int = 0
    starts: int = 0
    checks_done: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def kills(self) -> int:
        return self.check + self.deliver + self.serve


def _pattern(rng: random.Random, checks: int) -> list[list[bool]]:
    """Per series, firing or not at each check: seeded coin flips (half the checks change a series)."""
    return [[rng.random() < 0.5 for _ in range(checks + 1)] for _ in range(SERIES)]


def _tree(env: Env, pattern: list[list[bool]]) -> None:
    checks = len(pattern[0]) - 1
    points = 3 * checks
    for k, states in enumerate(pattern):
        # Point i lies in block (i+1)//3; the check at T0 + 180*j reads points 3j-1..3j+1, all of block j.
        values = [9.0 if states[(i + 1) // 3] else 1.0 for i in range(points)]
        env.rrd(f"s{k}.rrd", {"x": values}, end=T0 + (points - 1) * 60, rows=points + 10)


def _thresholds(hook: str) -> str:
    # Threshold 99 never fires: the editor toggles it, so saving the file changes no event.
    return (threshold(glob="*.rrd", start="now-1min", actions=[{"type": "webhook", "url": hook},
                                                               {"type": "log", "file": "alarms.log"}])
            + threshold(99, glob="s0.rrd", value=1e12, name="toggled by the editor"))


def _tune(env: Env) -> None:
    with env.settings_path.open("a") as fh:
        fh.write("\n[delivery]\ntimeout = 5\nbackoff = 1\nmax_backoff = 1\n")


def _start(env: Env, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "rrdalarm", *args], env=env.process_env(), cwd=env.base,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _ended_or_killed(proc: subprocess.Popen[bytes], deadline: float | None) -> bool:
    """Wait for `proc` until `deadline` (monotonic; None: its end); SIGKILL it then. True if it was killed."""
    try:
        proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
        return True


def _checked_at(env: Env, at: int, rng: random.Random, span: float, tally: Tally) -> None:
    """Start `check --at` (and maybe a `deliver` beside it) until a check at `at` ends on its own."""
    killed_here = 0
    while True:
        begun = time.monotonic()
        deliverer = _start(env, "deliver", "--quiet") if rng.random() < 0.5 else None
        checker = _start(env, "check", "--at", str(at), "--quiet")
        limit = None if killed_here >= MAX_KILLS_PER_TIME else begun + rng.uniform(0, span)
        if deliverer is not None:
            tally.deliver += _ended_or_killed(deliverer, begun + rng.uniform(0, span))
        if _ended_or_killed(checker, limit):
            tally.check += 1
            killed_here += 1
            continue
        assert checker.stderr is not None
        err = checker.stderr.read().decode()
        if checker.returncode not in (0, 1):
            again = env.run_process("check", "--dry-run", "--at", str(at), "--json")
            raise AssertionError((at, checker.returncode, err, again.returncode, again.stdout, again.stderr))
        tally.checks_done += 1
        return


def _web_installation(env: Env) -> Env:
    """A second installation serving the editor over the same thresholds file; its own data dir and database,
    an empty RRD root (its /start checks record runs and no event)."""
    base = env.base / "web"
    (base / "rrd").mkdir(parents=True)
    (base / "token").write_text(TOKEN + "\n", encoding="utf-8")
    settings = base / "rrdalarm.toml"
    settings.write_text(
        f'rrd_root = "{base / "rrd"}"\nthresholds = "{env.thresholds_path}"\ndata_dir = "{base / "data"}"\n'
        f'log_dir = "{base / "data" / "log"}"\nworkers = 1\nlock_wait = 5\n'
        '[service]\nmin_start_interval = 0\napi_token = { file = "token" }\n', encoding="utf-8")
    web = Env(base, base / "rrd", base / "data", settings, env.thresholds_path)
    (base / "password").write_text(PASSWORD + "\n", encoding="utf-8")
    web.run("user", "add", "alice", "--role", "admin", "--password-file", str(base / "password"), check=True)
    return web


def _csrf(page: str) -> str:
    marker = 'name="csrf_token" type="hidden" value="'
    return page.split(marker, 1)[1].split('"', 1)[0]


def _edits(url: str, web: Env, tally: Tally) -> None:
    """Log in, then run /start and save the thresholds file (threshold 99 on, off, …) until the server is gone."""
    http = requests.Session()
    page = http.get(url + "/login", timeout=5).text
    http.post(url + "/login", data={"name": "alice", "password": PASSWORD, "csrf_token": _csrf(page)},
              timeout=10, allow_redirects=False)
    token = _csrf(http.get(url + "/thresholds", timeout=5).text)
    while True:
        text = web.thresholds_path.read_text(encoding="utf-8")
        on = next(t for t in tomllib.loads(text)["threshold"] if t["id"] == 99).get("enabled", True)
        saved = http.post(f"{url}/thresholds/99/{'disable' if on else 'enable'}", timeout=5,
                          data={"csrf_token": token, "version": version_of(text)}, allow_redirects=False)
        tally.edits += saved.status_code == 302
        started = requests.get(url + "/start", params={"noHTML": "true"}, timeout=10,
                               headers={"Authorization": f"Bearer {TOKEN}"})
        tally.starts += started.status_code == 200


def _serve_once(web: Env, rng: random.Random, tally: Tally) -> None:
    """One `serve --no-scheduler`, killed at a random moment of its life (starting, logging in, saving)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (web.base / "serve.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "rrdalarm", "serve", "--no-scheduler", "--listen",
                                 f"127.0.0.1:{port}"], env=web.process_env(), cwd=web.base, stdout=log, stderr=log)
    killer = threading.Timer(rng.uniform(0.5, 4.0), proc.kill)
    killer.start()
    while proc.poll() is None:
        try:
            _edits(url, web, tally)
        except (requests.RequestException, IndexError):
            time.sleep(0.05)  # not listening yet, or killed under a request
    killer.join()
    tally.serve += proc.returncode == -9


def _serving(web: Env, rng: random.Random, tally: Tally, stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            _serve_once(web, rng, tally)
    except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
        tally.errors.append(f"{exc.__class__.__name__}: {exc}")


def _events(url: str) -> list[Event]:
    with open_store(url) as store, store.session() as s:
        rows = s.execute(text("select threshold_id, series, ds, kind, status, at from alarm_events order by id")).all()
    return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5])) for r in rows]


def _delivery_ids(url: str, action: str) -> set[str]:
    with open_store(url) as store, store.session() as s:
        rows = s.execute(text("select id, status from deliveries where action = :a"), {"a": action}).all()
    assert {str(r[1]) for r in rows} <= {"sent"}, Counter(str(r[1]) for r in rows)
    return {str(r[0]) for r in rows}


def _drain(env: Env) -> None:
    """An unkilled deliverer, its clock moved past the leases the killed ones left, until the outbox is empty."""
    settings = env.settings()
    with open_store(settings.db_url) as store:
        for n in range(1, 60):
            later = time.time() + 120 * n
            results = deliver_pending(store, settings, clock=functools.partial(float, later))
            assert all(r.status != "dead" for r in results), results
            if {d.status for d, _ in store.deliveries(limit=100_000)} <= {"sent"}:
                return
    raise AssertionError("the outbox did not drain")


def _received(receiver: Receiver, path: str, ids: set[str]) -> tuple[list[Event], int]:
    """The events the receiver got at `path` (each delivery once, first arrival first) and the duplicates."""
    arrivals = receiver.arrivals(path)
    first: dict[str, dict[str, Any]] = {}
    for ident, body in arrivals:
        assert ident == body["delivery_id"], (ident, body["delivery_id"])
        # A duplicate is the same delivery again: the same id and the same events.
        assert first.setdefault(ident, body)["events"] == body["events"], ident
    assert set(first) == ids, (len(set(first)), len(ids))
    events = [(int(e["threshold_id"]), str(e["series"]), str(e["ds"]), str(e["kind"]), str(e["status"]),
               int(e["at"])) for body in first.values() for e in body["events"]]
    return events, len(arrivals) - len(first)


def _per_series(events: list[Event]) -> dict[tuple[int, str, str], list[Event]]:
    by: dict[tuple[int, str, str], list[Event]] = defaultdict(list)
    for e in events:
        by[e[:3]].append(e)
    return dict(by)


def _integrity(url: str) -> str:
    """SQLite's integrity_check, or on PostgreSQL amcheck over every index of the schema (where installed)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return str(conn.execute("pragma integrity_check").fetchone()[0])
    with open_store(url) as store, store.session() as s:
        s.execute(text("create extension if not exists amcheck"))
        indexes = s.execute(text("select c.oid from pg_index i join pg_class c on c.oid = i.indexrelid "
                                 "join pg_am a on a.oid = c.relam join pg_namespace n on n.oid = c.relnamespace "
                                 "where a.amname = 'btree' and n.nspname = 'public'")).scalars().all()
        for oid in indexes:
            s.execute(text("select bt_index_check(:oid, true)"), {"oid": oid})
        return "ok"


def _killed_run(env: Env, web: Env, times: list[int], rng: random.Random, span: float) -> Tally:
    tally = Tally()
    stop = threading.Event()
    server = threading.Thread(target=_serving, args=(web, random.Random(rng.random()), tally, stop), daemon=True)
    server.start()
    deadline = time.monotonic() + BUDGET_S
    try:
        for at in times:
            if tally.kills >= KILLS or time.monotonic() > deadline:
                break
            _checked_at(env, at, rng, span, tally)
    finally:
        stop.set()
        server.join(timeout=60)
    assert not tally.errors, tally.errors
    return tally


def _reference(tmp_path: Path, pattern: list[list[bool]], hook: str, checks: int) -> list[Event]:
    (tmp_path / "reference").mkdir()
    ref = make_env(tmp_path / "reference")
    _tune(ref)
    _tree(ref, pattern)
    ref.write_thresholds(_thresholds(hook))
    for j in range(checks):
        done = ref.run("check", "--at", str(T0 + STEP_S * j), "--quiet")
        assert done.returncode in (0, 1), done.stderr
    return _events(ref.settings().db_url)


def _span(env: Env) -> float:
    """How long one check process runs here: kills are drawn over all of it (start, fetch, commit, delivery)."""
    begun = time.monotonic()
    env.run_process("check", "--dry-run", "--at", str(T0), "--quiet")
    return 1.3 * (time.monotonic() - begun)


@pytest.fixture(params=["sqlite", *(["postgresql"] if os.environ.get("RRDALARM_CRASH_PG") else [])])
def crash_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/data/rrdalarm.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.mark.slow
def test_kills_at_random_moments_lose_and_double_nothing(tmp_path: Path, receiver: Receiver, crash_db: str) -> None:
    seed = int(os.environ.get("RRDALARM_CRASH_SEED") or random.randrange(1 << 32))
    print(f"\ncrash: seed {seed} (RRDALARM_CRASH_SEED={seed} replays it), database {crash_db.split(':')[0]}")
    rng = random.Random(seed)
    checks = max(12, KILLS // 2)
    pattern = _pattern(rng, checks)
    env = make_env(tmp_path, crash_db if not crash_db.startswith("sqlite") else None)
    _tune(env)
    _tree(env, pattern)
    env.write_thresholds(_thresholds(receiver.url("/hook")))
    web = _web_installation(env)
    tally = _killed_run(env, web, [T0 + STEP_S * j for j in range(checks)], rng, _span(env))
    done = tally.checks_done
    reference = _reference(tmp_path, pattern, receiver.url("/ref"), done)
    url = env.settings().db_url
    assert _events(url) == reference
    _drain(env)
    carried, duplicates = _received(receiver, "/hook", _delivery_ids(url, "webhook"))
    assert sorted(carried) == sorted(reference) and len(set(carried)) == len(carried)
    # Per series, the receiver heard of its changes in the order they happened (never RESOLVED before FIRED).
    assert _per_series(carried) == _per_series(reference)
    for path in (env.thresholds_path, env.thresholds_path.with_name("thresholds.toml.bak"), env.settings_path,
                 web.settings_path):
        tomllib.loads(path.read_text(encoding="utf-8"))
    integrity = {_integrity(url), _integrity(web.settings().db_url)}
    assert integrity == {"ok"}
    print(f"crash: kills check {tally.check}, deliver {tally.deliver}, serve {tally.serve} "
          f"({tally.kills} in all); checks completed {done}; editor saves {tally.edits}, /start checks "
          f"{tally.starts}; events compared {len(reference)}; deliveries {len(set(_delivery_ids(url, 'webhook')))} "
          f"(duplicates with the same id: {duplicates}); integrity {', '.join(sorted(integrity))}")
