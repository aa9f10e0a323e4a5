"""A cluster under faults, all of it real: redis-server, PostgreSQL, two `rrdalarm serve` coordinators,
`rrdalarm worker` processes for two trees, and an HTTP receiver of the deliveries.

The RRD files are rewritten between phases (every series flips between OK and FIRING), so the events
each series must have are known in advance. While the cluster runs, a worker is SIGKILLed mid-shard,
Redis is stopped for RRDALARM_CLUSTER_OUTAGE_S seconds (60 by default) and started again empty, the
leading coordinator is SIGKILLed, and two coordinators run 20 checks. Afterwards PostgreSQL must hold
each expected FIRED and RESOLVED once and nothing else, and every delivery must have been received
(again only under its own id). With -s the test prints what an operator saw at each fault.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from conftest import Env, Rrdcached, another_installation, make_env, make_rrd, threshold
from pytest_httpserver import HTTPServer
from redis_server import RedisServer
from test_cluster import Worker, start_worker, write_settings
from test_cluster import stalled_rrdcached as stalled_rrdcached  # the fixtures, for this module's test
from test_cluster import workers as workers
from test_leader import wait_until
from test_service import TOKEN, Server, start_server

from rrdalarm.model.states import EventKind, State
from rrdalarm.store.database import CheckRun, Store, open_store

OUTAGE_S = float(os.environ.get("RRDALARM_CLUSTER_OUTAGE_S", "60"))
INTERVAL = 1
SLACK_S = 2.5  # a poll, a check and a loaded 2-core machine
FILES = 10  # per tree
ANSWER_TIMEOUT, REDO_AFTER = 10, 3
IDS = {"a": 1, "b": 2, "local": 3}  # tree -> its threshold
FOLDER = {"a": "a", "b": "b", "local": "l"}
REMOTE = ("a", "b")
TWO_COORDINATORS_CHECKS = 20
# The check in flight when Redis stops ends after the result backend's own retries (about a second), the next
# one fires the local tree's alarms.
LOCAL_ON_TIME_S = 2 * INTERVAL + SLACK_S + 2
# After Redis is back: a worker's next try to reconnect (kombu waits up to 30 s between tries), then a check.
CATCH_UP_S = 30 + ANSWER_TIMEOUT + INTERVAL + SLACK_S


def firing(i: int, phase: int) -> bool:
    """Whether file i breaches in `phase`: every series flips at every phase."""
    return (i + phase) % 2 == 1


@dataclass
class Seen:
    """A line of the failure table."""

    fault: str
    saw: list[str]
    lost: str = "?"


@dataclass
class Rig:
    """The running cluster and what the test expects of it."""

    base: Path
    redis: RedisServer
    store: Store
    envs: dict[str, Env]
    roots: dict[str, Path]
    servers: dict[str, Server]
    workers: list[Worker]
    hook: str
    settings_text: dict[str, str] = field(default_factory=dict)
    phases: dict[str, list[int]] = field(default_factory=lambda: {t: [] for t in IDS})
    table: list[Seen] = field(default_factory=list)

    def write_phase(self, phase: int, trees: tuple[str, ...] = tuple(IDS)) -> None:
        """Rewrite the trees' files for `phase`: ten one-minute points ending now, all 9 (fires) or all 1."""
        end = int(time.time()) // 60 * 60
        for tree in trees:
            root, folder = self.roots[tree], FOLDER[tree]
            for i in range(FILES):
                value = 9.0 if firing(i, phase) else 1.0
                new = make_rrd(root / ".new" / f"h{i}.rrd", {"x": [value] * 12}, end=end, rows=30)
                os.replace(new, root / folder / f"h{i}.rrd")  # a reader sees the old file or the new one
            self.phases[tree].append(phase)

    def expected_firing(self, tree: str) -> set[tuple[int, str, str]]:
        phase = self.phases[tree][-1]
        return {(IDS[tree], f"{FOLDER[tree]}/h{i}.rrd", "x") for i in range(FILES) if firing(i, phase)}

    def firing_now(self, tree: str) -> set[tuple[int, str, str]]:
        return {k for k, v in self.store.states([IDS[tree]]).items() if v.state is State.FIRING}

    def settled(self, trees: tuple[str, ...] = tuple(IDS)) -> bool:
        return all(self.firing_now(t) == self.expected_firing(t) for t in trees)

    def wait_settled(self, seconds: float, what: str, trees: tuple[str, ...] = tuple(IDS)) -> float:
        return wait_until(lambda: self.settled(trees), seconds, f"{what}: states of {trees} as expected")

    def runs(self) -> int:
        return self.store.count(CheckRun)

    def leader(self) -> tuple[str, Server]:
        leaders = [(n, s) for n, s in self.servers.items() if s.proc.poll() is None and role(s) == "leader"]
        assert len(leaders) == 1, [(n, role(s)) for n, s in self.servers.items() if s.proc.poll() is None]
        return leaders[0]

    def trees_lines(self) -> list[str]:
        proc = self.envs["c1"].run_process("trees", timeout=60)
        assert proc.returncode == 0, proc.stderr
        return [" ".join(line.split()) for line in proc.stdout.splitlines()]

    def lost(self) -> str:
        """Events missing or extra so far, against the phases the checks have seen."""
        missing, extra = compare_events(self)
        return "nothing" if not missing and not extra else f"missing {missing}, extra {extra}"


def role(srv: Server) -> str:
    return str(srv.get("/healthz", token=None).json()["role"])


def log_of(srv: Server) -> str:
    return (srv.env.base / "serve.log").read_text(encoding="utf-8", errors="replace")


def expected_events(rig: Rig) -> dict[tuple[int, str, str], list[str]]:
    """Per series, the kinds its phases make: a FIRED at each OK -> FIRING, a RESOLVED at each way back."""
    out: dict[tuple[int, str, str], list[str]] = {}
    for tree, phases in rig.phases.items():
        for i in range(FILES):
            kinds, was = [], False
            for phase in phases:
                now = firing(i, phase)
                if now != was:
                    kinds.append(EventKind.FIRED.value if now else EventKind.RESOLVED.value)
                was = now
            out[(IDS[tree], f"{FOLDER[tree]}/h{i}.rrd", "x")] = kinds
    return out


def recorded_events(store: Store) -> dict[tuple[int, str, str], list[str]]:
    by_series: dict[tuple[int, str, str], list[str]] = defaultdict(list)
    for e in sorted(store.events(limit=1_000_000), key=lambda e: e.id):
        by_series[(e.threshold_id, e.series, e.ds)].append(e.kind)
    return by_series


def compare_events(rig: Rig) -> tuple[int, int]:
    """(missing, extra) events, counted per series as the difference of the kinds' sequences."""
    want, got = expected_events(rig), recorded_events(rig.store)
    missing = extra = 0
    for key in set(want) | set(got):
        w, g = want.get(key, []), got.get(key, [])
        common = len(w) if w == g[: len(w)] else 0
        missing += len(w) - common
        extra += len(g) - common
    return missing, extra


def coordinator_env(base: Path, pg_url: str, broker: str) -> tuple[Env, Env]:
    """Two installations (own data dirs) on one database, one RRD root for the local tree, one broker."""
    (base / "c1").mkdir()
    first = make_env(base / "c1", pg_url)
    with first.settings_path.open("a") as fh:
        fh.write(f'\n[cluster]\nbroker = "{broker}"\nshards_per_tree = 2\nanswer_timeout = {ANSWER_TIMEOUT}\n'
                 f"redo_after = {REDO_AFTER}\n[delivery]\ntimeout = 2\nbackoff = 1\nmax_backoff = 1\n")
    return first, another_installation(first, "c2")


def thresholds_text(hook: str) -> str:
    action = [{"type": "webhook", "url": hook, "on": ["fire", "resolve"]}]
    return "".join(threshold(IDS[tree], f"{FOLDER[tree]}/*.rrd", start="now-10min", rearm=3600, actions=action,
                             **({"tree": tree} if tree != "local" else {})) for tree in IDS)


def start_coordinator(rig: Rig, name: str) -> Server:
    env = rig.envs[name]
    rig.settings_text.setdefault(name, env.settings_path.read_text(encoding="utf-8"))
    env.settings_path.write_text(rig.settings_text[name], encoding="utf-8")  # start_server adds [service]
    log = env.base / "serve.log"
    if log.exists():  # start_server writes it afresh: keep what the killed one said
        log.rename(env.base / f"serve-{time.time_ns()}.log")
    srv = start_server(env, interval=INTERVAL, service_lines="deliver_interval = 1\n")
    rig.servers[name] = srv
    return srv


def start_tree_worker(rig: Rig, tree: str, name: str, rrdcached: str = "") -> Worker:
    settings = write_settings(rig.base / f"{name}.toml", root=None, data=rig.base / f"data-{name}",
                              broker=rig.redis.url, answer_timeout=ANSWER_TIMEOUT)
    if rrdcached:
        settings.write_text(f'rrdcached = "{rrdcached}"\n' + settings.read_text(encoding="utf-8"), encoding="utf-8")
    worker = start_worker(rig.workers, rig.base, tree, rig.roots[tree], settings, name)
    worker.wait_for(" ready.")
    return worker


@pytest.fixture
def rig(tmp_path: Path, pg_url: str, redis_server: RedisServer, workers: list[Worker],
        httpserver: HTTPServer) -> Iterator[Rig]:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    c1, c2 = coordinator_env(tmp_path, pg_url, redis_server.url)
    c1.write_thresholds(thresholds_text(httpserver.url_for("/hook")))
    roots = {"a": tmp_path / "root-a", "b": tmp_path / "root-b", "local": c1.root}
    for tree, root in roots.items():
        (root / FOLDER[tree]).mkdir(parents=True)
    with open_store(pg_url) as store:
        rig = Rig(tmp_path, redis_server, store, {"c1": c1, "c2": c2}, roots, {}, workers,
                  httpserver.url_for("/hook"))
        rig.write_phase(0)
        try:
            yield rig
        finally:
            for srv in rig.servers.values():
                if srv.proc.poll() is None:
                    srv.proc.kill()
                    srv.proc.wait(timeout=30)
            print_table(rig.table)


def print_table(table: list[Seen]) -> None:
    print("\n\nfault | what the operator saw | what was lost")
    for row in table:
        print(f"{row.fault} | {'; '.join(row.saw)} | {row.lost}")


def test_a_cluster_under_faults_loses_no_event_and_fires_nothing_twice(
        rig: Rig, httpserver: HTTPServer, stalled_rrdcached: Rrdcached) -> None:
    for tree in REMOTE:
        start_tree_worker(rig, tree, f"worker-{tree}")
    for name in ("c1", "c2"):
        start_coordinator(rig, name)
    rig.wait_settled(30, "the first checks")
    kill_a_worker_mid_shard(rig, stalled_rrdcached)
    stop_redis_for_a_while(rig, stalled_rrdcached)
    kill_the_leader(rig)
    two_coordinators_for_20_checks(rig)
    for srv in rig.servers.values():  # stop checking; what is pending is delivered below
        srv.proc.terminate()
        srv.proc.wait(timeout=30)
    finish_deliveries(rig)
    missing, extra = compare_events(rig)
    assert (missing, extra) == (0, 0), (expected_events(rig), recorded_events(rig.store))
    received = [json.loads(req.get_data()) for req, _ in httpserver.log]
    sent, again = assert_received_once_or_again_with_its_id(rig.store, received)
    events = sum(len(v) for v in expected_events(rig).values())
    rig.table.append(Seen("afterwards", [f"{rig.runs()} checks, {events} events as expected",
                                         f"{sent} deliveries sent and received, {again} received again (same id)"],
                          "nothing"))


def check_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " check: " in line]


def longest_check(lines: list[str]) -> float:
    """The longest duration in the service's "check: ... in X s" lines."""
    return max((float(line.rsplit(" in ", 1)[1].split()[0]) for line in lines), default=0.0)


def runs_since(rig: Rig, run_id: int) -> list[CheckRun]:
    return [r for r in rig.store.runs(limit=1_000_000) if r.id > run_id]


def newest_run_id(rig: Rig) -> int:
    runs = rig.store.runs(limit=1)
    return runs[0].id if runs else 0


def kill_a_worker_mid_shard(rig: Rig, stalled: Rrdcached) -> None:
    """A second worker of tree a reads through a stopped rrdcached, so its shard waits there; SIGKILL it."""
    stuck = start_tree_worker(rig, "a", "worker-a-stuck", stalled.unix)
    _, leader = rig.leader()
    mark, first = len(log_of(leader)), newest_run_id(rig)
    stuck.wait_for(": started", timeout=30)
    rig.write_phase(1)  # the shard held by the worker is redone on these files
    stuck.kill()
    killed_at, at_kill = time.monotonic(), rig.runs()
    # The check in flight, and one more: the first may have ended before the files changed.
    wait_until(lambda: rig.runs() >= at_kill + 2, ANSWER_TIMEOUT + 10, "two checks after the worker was killed")
    took = rig.wait_settled(ANSWER_TIMEOUT + 10, "after a worker was killed mid-shard") + time.monotonic() - killed_at
    errors = sum(r.errors for r in runs_since(rig, first))
    longest = longest_check(check_lines(log_of(leader)[mark:]))
    assert errors == 0, "the killed worker's shard was redone by the other worker of its tree, not reported"
    assert REDO_AFTER <= longest < ANSWER_TIMEOUT, longest
    seen = [" ".join(m.groups()) + " s ago" for line in rig.trees_lines()
            if (m := re.match(r"a (\S+) seen .*?\((\d+) s ago\)", line))]
    # The killed worker is listed only if a check saw it (a ping) before it died, its heartbeat then ageing.
    assert seen, rig.trees_lines()
    rig.table.append(Seen("worker of tree a SIGKILLed mid-shard", [
        f"the check took {longest:.1f} s (its shard sent again after {REDO_AFTER} s), 0 ERROR rows",
        f"new states after {took:.1f} s", f"rrdalarm trees: {'; '.join(seen)}"], rig.lost()))


def stop_redis_for_a_while(rig: Rig, stalled: Rrdcached) -> None:
    """Redis down for OUTAGE_S: pages answer, the local tree fires on time, the remote trees keep their states.

    It stops while a check waits for a shard (held by a worker reading through a stopped rrdcached): that
    check must not wait for answers that cannot come, or the local tree's alarms wait with it.
    """
    _, leader = rig.leader()
    mark, first = len(log_of(leader)), newest_run_id(rig)
    marks = {w.log: len(w.text()) for w in rig.workers}
    stuck = start_tree_worker(rig, "b", "worker-b-stuck", stalled.unix)
    stuck.wait_for(": started", timeout=30)
    rig.redis.stop()
    stopped = time.monotonic()
    stuck.kill()
    kept = {t: rig.expected_firing(t) for t in REMOTE}
    rig.write_phase(2)
    outage = watch_outage(rig, stopped, kept)
    assert outage.local_at is not None, "the local tree's series did not change while Redis was down"
    assert outage.local_at <= LOCAL_ON_TIME_S, f"the local tree's alarms waited {outage.local_at:.1f} s for Redis"
    during = runs_since(rig, first)
    assert len(during) >= OUTAGE_S / (4 * INTERVAL), f"{len(during)} checks in {OUTAGE_S:g} s"
    assert all(r.errors >= len(REMOTE) for r in during[:-1]), [r.errors for r in during]
    page = requests.get(leader.url + "/", params={"token": TOKEN}, timeout=30).text
    rows = sorted(set(re.findall(r"tree [ab]: [^<\n]+", page)))
    assert rows, "the page shows no ERROR row of the remote trees"
    rig.redis.start()  # the same port and folder, empty: what was queued is gone (the harder case)
    back = rig.wait_settled(CATCH_UP_S + 10, "after Redis came back", REMOTE)
    assert back <= CATCH_UP_S, f"the remote trees caught up {back:.1f} s after Redis came back"
    coordinator = log_of(leader)[mark:]
    workers = "".join(w.text()[marks[w.log]:] for w in rig.workers if w.log in marks)
    retries = [float(x) for x in re.findall(r"Trying again in ([0-9.]+) seconds", workers)]
    rig.table.append(Seen(f"Redis stopped for {OUTAGE_S:g} s, started again empty", [
        f"/healthz answered {sum(outage.health.values())} times {dict(outage.health)}, slowest {outage.slowest:.2f} s",
        f"{len(during)} checks, each with ERROR rows for trees a and b (page: {rows[0]!r}), their states kept",
        f"the local tree's new states after {outage.local_at:.1f} s",
        f"coordinator log: {coordinator.count('Connection to Redis lost')} 'Connection to Redis lost', "
        f"{coordinator.count('must be restarted')} CRITICAL 'The Celery application must be restarted'",
        f"worker logs: 'Connection to broker lost', {len(retries)} tries to reconnect, "
        f"{max(retries, default=0):g} s apart at most",
        f"trees a and b caught up {back:.1f} s after Redis came back"], rig.lost()))


@dataclass
class Outage:
    """What the test saw while Redis was down."""

    local_at: float | None = None
    health: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0


def watch_outage(rig: Rig, stopped: float, kept: dict[str, set[tuple[int, str, str]]]) -> Outage:
    """Until OUTAGE_S after the stop: /healthz of each coordinator, the remote trees' states (kept), and when
    the local tree's states changed."""
    seen = Outage()
    while (elapsed := time.monotonic() - stopped) < OUTAGE_S:
        for srv in rig.servers.values():
            asked = time.monotonic()
            answer = srv.get("/healthz", token=None)
            seen.slowest = max(seen.slowest, time.monotonic() - asked)
            seen.health[f"{answer.status_code} {answer.json()['role']}"] += 1
        assert {t: rig.firing_now(t) for t in REMOTE} == kept, "a remote tree's states changed while Redis was down"
        if seen.local_at is None and rig.settled(("local",)):
            seen.local_at = elapsed
        time.sleep(0.5)
    assert seen.slowest < 5, f"/healthz took {seen.slowest:.1f} s while Redis was down"
    return seen


def kill_the_leader(rig: Rig) -> None:
    """SIGKILL the coordinator that schedules: the other checks within an interval, then started again."""
    name, leader = rig.leader()
    leader.proc.send_signal(signal.SIGKILL)
    leader.proc.wait(timeout=10)
    killed_at, before = time.monotonic(), rig.runs()
    rig.write_phase(3)
    took = wait_until(lambda: rig.runs() > before, INTERVAL + SLACK_S + 10, "a check after the leader was killed")
    assert took <= INTERVAL + SLACK_S, f"took over after {took:.1f} s"
    rig.wait_settled(ANSWER_TIMEOUT + 10, "after the leader was killed")
    other_name, other = rig.leader()
    assert other_name != name
    taken = [line.split(": ", 2)[-1] for line in log_of(other).splitlines() if "leader: this service now" in line]
    assert taken
    start_coordinator(rig, name)  # back, as standby
    rig.table.append(Seen("leading coordinator SIGKILLed", [
        f"the other checked {took:.1f} s later (interval {INTERVAL} s)", f"its log: {taken[-1]}",
        f"/healthz role: {role(other)}; new states after {time.monotonic() - killed_at:.1f} s"], rig.lost()))


def two_coordinators_for_20_checks(rig: Rig) -> None:
    """Both coordinators up: 20 checks, a phase change halfway; only the leader runs the scheduled ones."""
    wait_until(lambda: sorted(role(s) for s in rig.servers.values()) == ["leader", "standby"], 10 + SLACK_S,
               "one leader and one standby")
    name, _ = rig.leader()
    marks = {n: len(log_of(s)) for n, s in rig.servers.items()}
    start = rig.runs()
    half = TWO_COORDINATORS_CHECKS // 2
    wait_until(lambda: rig.runs() >= start + half, half * (INTERVAL + 2) + 10, f"{half} checks")
    rig.write_phase(4)
    rig.wait_settled(ANSWER_TIMEOUT + 10, "with two coordinators")
    wait_until(lambda: rig.runs() >= start + TWO_COORDINATORS_CHECKS, half * (INTERVAL + 2) + 10,
               f"{TWO_COORDINATORS_CHECKS} checks")
    logged = {n: len(check_lines(log_of(s)[marks[n]:])) for n, s in rig.servers.items()}
    assert all(v == 0 for n, v in logged.items() if n != name), logged  # the standby ran none
    rig.table.append(Seen(f"two coordinators for {TWO_COORDINATORS_CHECKS} checks", [
        f"{rig.runs() - start} checks, logged by: {logged}", f"leader {name}, the other standby"], rig.lost()))


def finish_deliveries(rig: Rig) -> None:
    """Send what the stopped coordinators left pending (as `rrdalarm deliver` from cron would)."""
    for _ in range(5):
        if all(d.status == "sent" for d, _ in rig.store.deliveries(limit=1_000_000)):
            return
        rig.envs["c1"].run_process("deliver", "--quiet", timeout=60)
        time.sleep(1)
    pending = Counter(d.status for d, _ in rig.store.deliveries(limit=1_000_000))
    raise AssertionError(f"deliveries not all sent after five rounds: {dict(pending)}")


def assert_received_once_or_again_with_its_id(store: Store, received: list[dict[str, object]]) -> tuple[int, int]:
    """Each event in one delivery, each delivery received, a second arrival only under the same id and events;
    (deliveries, arrivals more than one per delivery)."""
    rows = [d for d, _ in store.deliveries(limit=1_000_000)]
    carried = Counter(i for d in rows for i in store.event_ids_of(d))
    assert all(n == 1 for n in carried.values()), [i for i, n in carried.items() if n > 1][:10]
    assert set(carried) == {e.id for e in store.events(limit=1_000_000)}
    by_id: dict[str, list[tuple[int, ...]]] = defaultdict(list)
    for doc in received:
        events = doc["events"]
        assert isinstance(events, list)
        by_id[str(doc["delivery_id"])].append(tuple(sorted(int(e["id"]) for e in events)))
    assert set(by_id) == {d.id for d in rows}, "a delivery was not received, or one not recorded was"
    expected = {d.id: tuple(sorted(store.event_ids_of(d))) for d in rows}
    assert all(set(seen) == {expected[i]} for i, seen in by_id.items())
    return len(rows), sum(len(v) - 1 for v in by_id.values())
