#!/usr/bin/env python3
"""Latency of the web pages of `rrdalarm serve` while its scheduler checks a large RRD tree.

    python bench/service_load.py [--files N] [--seconds S] [--clients C] [--target-ms MS] [--corpus DIR] [--keep]

Steps (see bench/README.md):

1. Corpus: check_bench's ntopng-shaped tree of N files (default 100,000), made
   once under --corpus (default bench/.corpus/<N>) and reused.
2. Load: ``rrdalarm serve`` over it (10 thresholds, 12,000 series firing),
   its scheduler checking every second, so checks run back to back. Once the
   first (cold) check is done, C client threads, each a viewer logged in
   through the login form, send GET /, /thresholds and /api/suggest?q=... in
   turn, with a short pause between requests, for S seconds. The serve log
   gives each check's end and duration; a request that overlaps a check
   counts as "during a check".
3. Floor: ``rrdalarm serve --no-scheduler`` over the same data dir (the same
   firing series on the pages), the same clients and requests for S/3
   seconds (at least 10): no check runs.
4. Prints p50/p95/p99/max and the count per route, during checks and in the
   floor, the ratio of the p95s, and the checks' durations.

Exit status: 0 when the p95 of every route during checks is under --target-ms
(200 ms), 1 when it is not (with TARGET MISSED lines), 2 when the corpus cannot
be made, the server does not start or no check ran while measuring.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import check_bench
import requests
from check_bench import END, RULES_10, WINDOW, Rule, ensure_corpus, rel_path, toml_str

DEFAULT_FILES = 100_000
DEFAULT_SECONDS = 60.0
DEFAULT_CLIENTS = 4
TARGET_P95_MS = 200.0
PAUSE_S = 0.05  # between two requests of one client: a person clicking, not a flood
REQUEST_TIMEOUT_S = 30.0
TOKEN = "service-load-bench-token"
USER, PASSWORD = "bench", "service-load-bench-password"
ROUTES = ("/", "/thresholds", "/api/suggest")
FIRST_CHECK_WAIT_S = 600.0
CHECK_INTERVAL_S = 1.0  # [service] check_interval of the load phase: checks run back to back

# One line per finished check, written by CheckService.run_check at INFO.
CHECK_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO rrdalarm\.service: check: (\d+) files, "
                        r".* in ([0-9.]+) s$")


class BenchError(Exception):
    """The corpus, the server or the measurement could not be set up."""


# ---------------------------------------------------------------------- setup


def thresholds_toml(rules: Sequence[Rule]) -> str:
    """check_bench's thresholds with the window as epochs: the corpus ends at END, whatever the clock says."""
    text = check_bench.thresholds_toml(rules)
    return text.replace('start = "now-1h"', f'start = "{END - WINDOW}"').replace('end = "now"', f'end = "{END}"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_settings(work: Path, corpus: Path) -> Path:
    (work / "token").write_text(TOKEN + "\n", encoding="utf-8")
    (work / "thresholds.toml").write_text(thresholds_toml(RULES_10), encoding="utf-8")
    settings = work / "rrdalarm.toml"
    settings.write_text(
        f"rrd_root = {toml_str(str(corpus))}\nthresholds = \"thresholds.toml\"\n"
        f"data_dir = {toml_str(str(work / 'data'))}\nlog_dir = {toml_str(str(work / 'log'))}\n"
        'database_url = ""\nworkers = 0\n\n[service]\n'
        f'listen = "127.0.0.1:{free_port()}"\ncheck_interval = {CHECK_INTERVAL_S:g}\n'
        'api_token = { file = "token" }\n',
        encoding="utf-8",
    )
    return settings


def serve_env(settings: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    env["RRDALARM_SETTINGS"] = str(settings)
    return env


def add_user(settings: Path) -> None:
    pw = settings.parent / "password"
    pw.write_text(PASSWORD + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "rrdalarm", "user", "add", USER, "--role", "viewer",
                           "--password-file", str(pw)], env=serve_env(settings), capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise BenchError(f"cannot add the user: {done.stderr.strip()}")


def listen_url(settings: Path) -> str:
    found = re.search(r'listen = "([^"]+)"', settings.read_text(encoding="utf-8"))
    assert found is not None
    return f"http://{found.group(1)}"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path


def start_server(settings: Path, *extra: str) -> Server:
    log = settings.parent / ("serve-no-scheduler.log" if extra else "serve.log")
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "rrdalarm", "serve", *extra, "--log-level", "info"],
                                env=serve_env(settings), stdout=out, stderr=out)
    url = listen_url(settings)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/healthz", timeout=2)
            return Server(proc, url, log)
        except requests.RequestException:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise BenchError(f"the server did not start:\n{log.read_text(errors='replace')[-3000:]}")


def stop_server(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


def logged_in(url: str) -> requests.Session:
    """A session logged in through the login form, as a browser is (CSRF token from the page)."""
    session = requests.Session()
    page = session.get(url + "/login", timeout=REQUEST_TIMEOUT_S).text
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    if found is None:
        raise BenchError("no CSRF token on the login page")
    answer = session.post(url + "/login", data={"csrf_token": found.group(1), "name": USER, "password": PASSWORD},
                          timeout=REQUEST_TIMEOUT_S, allow_redirects=False)
    if answer.status_code != 302:
        raise BenchError(f"login failed: HTTP {answer.status_code}")
    return session


# ------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Sample:
    route: str
    started: float  # time.time()
    ended: float
    ms: float
    ok: bool


def suggest_texts(files: int) -> list[str]:
    """Prefixes of paths being typed, as the threshold editor's field sends them."""
    texts = []
    for i in (0, files // 3, files // 2, files - 1):
        path = rel_path(i)
        texts += [path[:k] for k in range(1, len(path) + 1, 3)]
    return texts


def one_request(session: requests.Session, url: str, route: str, query: str) -> Sample:
    params = {"q": query} if route == "/api/suggest" else {}
    started, t0 = time.time(), time.perf_counter()
    try:
        r = session.get(url + route, params=params, timeout=REQUEST_TIMEOUT_S, allow_redirects=False)
        ok = r.status_code == 200
    except requests.RequestException:
        ok = False
    ms = (time.perf_counter() - t0) * 1000
    return Sample(route, started, time.time(), ms, ok)


def client_loop(url: str, texts: Sequence[str], seconds: float, offset: int, out: list[Sample]) -> None:
    session = logged_in(url)
    deadline = time.monotonic() + seconds
    k = offset
    while time.monotonic() < deadline:
        route = ROUTES[k % len(ROUTES)]
        out.append(one_request(session, url, route, texts[k % len(texts)]))
        k += 1
        time.sleep(PAUSE_S)


def measure(url: str, texts: Sequence[str], clients: int, seconds: float) -> list[Sample]:
    """`clients` threads, each logged in, sending the routes in turn for `seconds`."""
    per_client: list[list[Sample]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            client_loop(url, texts, seconds, i, per_client[i])
        except (BenchError, requests.RequestException) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 2 * REQUEST_TIMEOUT_S + 30)
    if errors:
        raise BenchError(f"a client failed: {errors[0]}")
    return [s for samples in per_client for s in samples]


def warm_up(url: str, texts: Sequence[str]) -> None:
    session = logged_in(url)
    for k in range(15):
        one_request(session, url, ROUTES[k % len(ROUTES)], texts[k % len(texts)])


@dataclass(frozen=True)
class CheckSpan:
    started: float
    ended: float
    files: int
    finished: bool = True

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def checks_in_log(log: Path) -> list[CheckSpan]:
    """Each finished check of the serve log: its end (the log line's time) minus its duration."""
    spans = []
    for line in log.read_text(errors="replace").splitlines():
        found = CHECK_LINE.match(line)
        if found:
            ended = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            spans.append(CheckSpan(ended - float(found.group(3)), ended, int(found.group(2))))
    return spans


def wait_first_check(server: Server, timeout: float) -> CheckSpan:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = checks_in_log(server.log)
        if spans:
            return spans[0]
        if server.proc.poll() is not None:
            break
        time.sleep(0.5)
    raise BenchError(f"no check finished within {timeout:g} s:\n{server.log.read_text(errors='replace')[-3000:]}")


def with_unfinished(spans: list[CheckSpan], after: float, until: float) -> list[CheckSpan]:
    """The finished checks, and the one still running when measuring stopped.

    The scheduler starts the next check at most CHECK_INTERVAL_S after one ends, so from then on
    until the end of the measurement a check was running even though its log line never came.
    """
    last = max((c.ended for c in spans), default=after)
    if until > last + CHECK_INTERVAL_S:
        return [*spans, CheckSpan(last + CHECK_INTERVAL_S, until, 0, finished=False)]
    return spans


def during_check(sample: Sample, spans: Sequence[CheckSpan]) -> bool:
    return any(sample.started < c.ended and sample.ended > c.started for c in spans)


# ---------------------------------------------------------------------- report


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


@dataclass
class RouteFigures:
    route: str
    load: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    failed: int = 0

    def line(self) -> str:
        if not self.load or not self.floor:
            return f"{self.route:<14} not enough requests (during checks {len(self.load)}, floor {len(self.floor)})"
        ratio = pct(self.load, 95) / max(pct(self.floor, 95), 1e-9)
        return (f"{self.route:<14}{len(self.load):>6}{pct(self.load, 50):>9.1f}{pct(self.load, 95):>9.1f}"
                f"{pct(self.load, 99):>9.1f}{max(self.load):>9.1f}   {len(self.floor):>6}{pct(self.floor, 50):>9.1f}"
                f"{pct(self.floor, 95):>9.1f}{pct(self.floor, 99):>9.1f}{ratio:>9.2f}x{self.failed:>7}")


def figures(floor: Sequence[Sample], load: Sequence[Sample], spans: Sequence[CheckSpan]) -> list[RouteFigures]:
    by_route = {r: RouteFigures(r) for r in ROUTES}
    for s in floor:
        by_route[s.route].floor.append(s.ms)
        by_route[s.route].failed += not s.ok
    for s in load:
        if during_check(s, spans):
            by_route[s.route].load.append(s.ms)
        by_route[s.route].failed += not s.ok
    return list(by_route.values())


def print_report(rows: Sequence[RouteFigures], spans: Sequence[CheckSpan], cold: CheckSpan,
                 load: Sequence[Sample], target_ms: float) -> bool:
    """The table and the verdicts; True when the target is met by every route."""
    durations = [c.seconds for c in spans if c.finished]
    done = (f"{len(durations)} finished while measuring: duration median {statistics.median(durations):.2f} s, "
            f"min {min(durations):.2f} s, max {max(durations):.2f} s") if durations else "none finished while measuring"
    print(f"\nchecks      first (cold) check {cold.seconds:.2f} s over {cold.files:,} files; {done}"
          + "".join(f"; one still running after {c.seconds:.1f} s" for c in spans if not c.finished))
    inside = sum(during_check(s, spans) for s in load)
    print(f"requests    {inside} of {len(load)} sent during the load phase overlapped a check\n")
    print(f"{'route':<14}{'during a check (ms)':>42}   {'no check: floor (ms)':>42}")
    print(f"{'':<14}{'n':>6}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}   {'n':>6}{'p50':>9}{'p95':>9}{'p99':>9}"
          f"{'p95/floor':>10}{'failed':>7}")
    for row in rows:
        print(row.line())
    print()
    ok = True
    for row in rows:
        p95 = pct(row.load, 95) if row.load else float("inf")
        good = p95 < target_ms and row.failed == 0
        ok = ok and good
        print(f"{'PASS' if good else 'MISS'}  {row.route} p95 during a check {p95:.1f} ms < {target_ms:g} ms"
              f"{'' if row.failed == 0 else f' ({row.failed} requests failed)'}")
    for row in rows:
        p95 = pct(row.load, 95) if row.load else float("inf")
        if p95 >= target_ms or row.failed:
            print(f"TARGET MISSED: {row.route} p95 {p95:.1f} ms, {row.failed} failed")
    return ok


# ------------------------------------------------------------------------ main


@dataclass(frozen=True)
class Options:
    files: int
    seconds: float
    clients: int
    target_ms: float
    corpus: Path
    keep: bool


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=DEFAULT_FILES, help="RRD files in the tree (default 100,000)")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help="seconds of measurement while checks run (default 60; the floor takes a third)")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="client threads (default 4)")
    parser.add_argument("--target-ms", type=float, default=TARGET_P95_MS, help="p95 target in ms (default 200)")
    parser.add_argument("--corpus", type=Path, help="where the tree is made and kept (default bench/.corpus/<N>)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (settings, data dir, serve logs)")
    args = parser.parse_args(argv)
    if args.files < 1 or args.clients < 1 or not 5 <= args.seconds <= 3600:
        parser.error("--files and --clients must be at least 1, --seconds between 5 and 3600")
    corpus = Path(os.path.abspath(args.corpus or check_bench.BENCH_DIR / ".corpus" / str(args.files)))
    return Options(args.files, args.seconds, args.clients, args.target_ms, corpus, args.keep)


def run_phases(opts: Options, settings: Path, say: Callable[[str], None]) -> tuple[
        list[Sample], list[Sample], list[CheckSpan], CheckSpan]:
    """The load phase, then the floor over the same data dir: the same firing series on the pages."""
    texts = suggest_texts(opts.files)
    server = start_server(settings)
    try:
        cold = wait_first_check(server, FIRST_CHECK_WAIT_S)
        say(f"load        first check took {cold.seconds:.2f} s; {opts.clients} clients for {opts.seconds:g} s "
            "while the scheduler checks every second")
        warm_up(server.url, texts)
        load = measure(server.url, texts, opts.clients, opts.seconds)
        until = max((s.ended for s in load), default=time.time())
        time.sleep(0.5)  # the log line of a check that ended with the measurement
    finally:
        stop_server(server)
    finished = [c for c in checks_in_log(server.log) if cold.ended < c.ended <= until]
    server = start_server(settings, "--no-scheduler")
    try:
        warm_up(server.url, texts)
        floor_s = max(10.0, opts.seconds / 3)
        say(f"floor       {opts.clients} clients for {floor_s:g} s, no check running")
        floor = measure(server.url, texts, opts.clients, floor_s)
    finally:
        stop_server(server)
    return floor, load, with_unfinished(finished, cold.ended, until), cold


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse(argv)

    def say(text: str) -> None:
        print(text, flush=True)

    work = Path(tempfile.mkdtemp(prefix="service_load-"))
    try:
        seconds, reused = ensure_corpus(opts.corpus, opts.files)
        say(f"corpus      {opts.corpus}: {opts.files:,} files, {'reused' if reused else 'made'} in {seconds:.1f} s; "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        settings = write_settings(work, opts.corpus)
        add_user(settings)
        floor, load, spans, cold = run_phases(opts, settings, say)
        if not spans:
            raise BenchError("no check ran while measuring")
    except (BenchError, OSError) as exc:
        say(f"service_load: {exc}")
        return 2
    finally:
        if opts.keep:
            say(f"work        {work} (settings, data dir, serve logs)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    ok = print_report(figures(floor, load, spans), spans, cold, load, opts.target_ms)
    say(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
