"""Shared fixtures: RRD files written with rrdtool at known timestamps, settings, a CLI runner."""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import rrdtool
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from rrdalarm.model.definitions import Settings
from rrdalarm.model.events import Event
from rrdalarm.model.states import EventKind

# Property tests check what holds, not how fast: a busy CI machine must not fail them on time.
hypothesis_settings.register_profile("rrdalarm", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("rrdalarm")

if TYPE_CHECKING:
    from rrdalarm.model.results import CheckResult
    from rrdalarm.store.database import Store



@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Real argon2id, at its cheapest cost, in this process: a login costs 0.1 ms instead of 0.1 s.

    Processes a test starts (serve, the CLI) hash at the product's own cost.
    """
    from argon2 import PasswordHasher, profiles

    from rrdalarm.access import users

    monkeypatch.setattr(users, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    users._dummy_hash.cache_clear()
    yield
    users._dummy_hash.cache_clear()


# fake_ntopng's `server` fixture (a quick-stopping HTTP server) serves every ntopng test;
# pg's fixtures start a throwaway PostgreSQL cluster for the tests that ask for one; redis_server a redis-server.
pytest_plugins = ["fake_ntopng", "pg", "redis_server"]

# A fixed "now" on a minute boundary; every test point sits at T0 - k*60.
T0 = 1_700_000_040
STEP = 60


def make_rrd(
    path: Path,
    series: dict[str, Sequence[float | None]],
    *,
    end: int = T0,
    step: int = STEP,
    kind: str = "GAUGE",
    rows: int = 600,
) -> Path:
    """An RRD whose DS `name` has values[i] at `end - (len-1-i)*step` (None: no update for that DS).

    Values are written with one update per point so that each 60 s average equals
    the value given (GAUGE); a None leaves the point unknown.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(series)
    length = max(len(v) for v in series.values())
    first = end - (length - 1) * step
    rrdtool.create(
        str(path), "--start", str(first - step), "--step", str(step),
        *(f"DS:{n}:{kind}:{step * 2}:U:U" for n in names),
        f"RRA:AVERAGE:0.5:1:{rows}", f"RRA:MAX:0.5:1:{rows}", f"RRA:MIN:0.5:1:{rows}",
        f"RRA:LAST:0.5:1:{rows}",
    )
    updates = []
    for i in range(length):
        vals = []
        for n in names:
            v = series[n][i] if i < len(series[n]) else None
            vals.append("U" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(float(v)))
        updates.append(f"{first + i * step}:" + ":".join(vals))
    for i in range(0, len(updates), 500):
        rrdtool.update(str(path), *updates[i : i + 500])
    return path


@dataclass
class Env:
    """A temporary installation: RRD root, data dir, settings file, thresholds file."""

    base: Path
    root: Path
    data: Path
    settings_path: Path
    thresholds_path: Path

    def settings(self) -> Settings:
        from rrdalarm.config.settings import load_settings

        return load_settings(self.settings_path)

    def write_thresholds(self, text: str) -> Path:
        self.thresholds_path.write_text(text, encoding="utf-8")
        return self.thresholds_path

    def rrd(self, rel: str, series: dict[str, Sequence[float | None]], **kw: object) -> Path:
        return make_rrd(self.root / rel, series, **kw)  # type: ignore[arg-type]

    def run(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `rrdalarm` in this process, through the command's own entry point, with this settings file.

        click's CliRunner gives it its own stdin, stdout, stderr and environment; the entry point's exit
        status, its one-line errors and its separate stderr are the command's own. `timeout` is for
        `run_process`'s signature: nothing here runs longer than the test.
        """
        from click.testing import CliRunner

        from rrdalarm.cli.main import main

        gone: dict[str, str | None] = {k: None for k in os.environ if k.startswith("RRDALARM_")}
        runner = CliRunner()
        code: int | str | None = 0
        with runner.isolation(env=gone | {"RRDALARM_SETTINGS": str(self.settings_path)}) as (out, err, _), \
                contextlib.chdir(self.base), _argv(["rrdalarm", *args]):
            try:
                main()
            except SystemExit as exc:
                code = exc.code
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
        if isinstance(code, str):  # sys.exit("text") prints the text and exits 1, as Python does
            err.write(code.encode() + b"\n")
            code = 1
        proc = subprocess.CompletedProcess(
            ["rrdalarm", *args], code or 0, out.getvalue().decode(), err.getvalue().decode()
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def run_process(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the installed `rrdalarm` command in a real subprocess with this settings file."""
        proc = subprocess.run(
            [sys.executable, "-m", "rrdalarm", *args], capture_output=True, text=True, env=self.process_env(),
            timeout=timeout, cwd=self.base,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def process_env(self) -> dict[str, str]:
        """The environment for a real `rrdalarm` process: this settings file, no other RRDALARM_ variable."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
        env["RRDALARM_SETTINGS"] = str(self.settings_path)
        return env


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


@pytest.fixture
def env(tmp_path: Path, request: pytest.FixtureRequest) -> Env:
    """A temporary installation; with the `any_database` fixture in use, on that database."""
    database = request.getfixturevalue("any_database") if "any_database" in request.fixturenames else None
    return make_env(tmp_path, database)


def make_env(tmp_path: Path, database_url: str | None = None) -> Env:
    """An Env in `tmp_path` (a module-scoped fixture passes a folder of tmp_path_factory)."""
    root = tmp_path / "rrd"
    data = tmp_path / "data"
    root.mkdir()
    settings = tmp_path / "rrdalarm.toml"
    thresholds = tmp_path / "thresholds.toml"
    database = f"database_url = {json.dumps(database_url)}\n" if database_url else ""
    settings.write_text(
        f'rrd_root = "{root}"\nthresholds = "thresholds.toml"\ndata_dir = "{data}"\n'
        f'log_dir = "{data / "log"}"\nworkers = 1\nlock_wait = 5\n{database}',
        encoding="utf-8",
    )
    thresholds.write_text("", encoding="utf-8")
    return Env(tmp_path, root, data, settings, thresholds)


def another_installation(env: Env, name: str) -> Env:
    """A second installation beside `env`: its own data dir (so its own lock file), the same RRD root,
    thresholds and database."""
    base = env.base / name
    data = base / "data"
    base.mkdir()
    settings = base / "rrdalarm.toml"
    text = env.settings_path.read_text(encoding="utf-8")
    text = text.replace(f'data_dir = "{env.data}"', f'data_dir = "{data}"')
    settings.write_text(text.replace('"thresholds.toml"', f'"{env.thresholds_path}"'), encoding="utf-8")
    return Env(base, env.root, data, settings, env.thresholds_path)


WebApp = Callable[..., Any]
"""make(env, users=((name, password, role), ...), **flask_config) -> a Flask app over a CheckService."""


@pytest.fixture
def make_app() -> Iterator[WebApp]:
    """The web app as the service builds it, over an env's settings; its services close after the test."""
    from rrdalarm.access.users import add_user
    from rrdalarm.service.service import CheckService
    from rrdalarm.web import create_app

    services: list[CheckService] = []

    def make(env: Env, users: Sequence[tuple[str, str, str]] = (), **config: Any) -> Any:
        service = CheckService(env.settings_path)
        services.append(service)
        for name, password, role in users:
            add_user(service.store, name, password, role)
        return create_app(service, config or None)

    yield make
    for service in services:
        service.close()


def threshold(ident: int = 1, glob: str = "a.rrd", **fields: Any) -> str:
    """A [[threshold]] table in TOML: above 5 over the last hour unless `fields` say otherwise."""
    body: dict[str, Any] = {"type": "above", "value": 5, "start": "now-1h", "end": "now"} | fields
    lines = [f"id = {ident}", f'glob = "{glob}"']
    actions = body.pop("actions", [])
    for key, value in body.items():
        if isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        elif isinstance(value, bool):
            lines.append(f"{key} = {str(value).lower()}")
        elif isinstance(value, list):
            lines.append(f"{key} = [" + ", ".join(f'"{v}"' for v in value) + "]")
        else:
            lines.append(f"{key} = {value}")
    text = "[[threshold]]\n" + "\n".join(lines) + "\n"
    for action in actions:
        text += "[[threshold.action]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in action.items())
    return text


def check(env: Env, store: Store, at: int = T0, **kw: Any) -> CheckResult:
    """One check through the engine, over the env's settings and thresholds."""
    from rrdalarm.check.engine import run_check
    from rrdalarm.config.thresholds import load_thresholds_file

    settings = env.settings()
    assert settings.thresholds is not None
    loaded = load_thresholds_file(settings.thresholds)
    return run_check(settings, loaded.thresholds, store, at=at, **({"windows": loaded.windows} | kw))


@pytest.fixture
def store(env: Env) -> Iterator[Store]:
    """The store of the env's settings, closed after the test."""
    from rrdalarm.store.database import open_store

    s = open_store(env.settings().db_url)
    yield s
    s.close()


def make_event(i: int = 1, **kw: Any) -> Event:
    """An alarm event as actions receive it; fields given in `kw` replace the defaults."""
    base: dict[str, Any] = {
        "id": i, "at": T0, "threshold_id": 3, "threshold_name": "uplink busy", "source": "rrd",
        "series": "hosts/1/bytes.rrd", "ds": "sent", "status": "ALARM FIRED", "kind": EventKind.FIRED,
        "type": "above", "limit": 5.0, "value": 9.5, "time": T0 - 60, "message": "9.5 above 5",
    }
    return Event(**(base | kw))


# The alarm-tuning fields (DESIGN 2b) an event carries to the actions, all set.
TUNED: dict[str, Any] = {
    "severity": "critical", "unit": "B/s", "labels": {"team": "net", "site": "lab"},
    "description": "uplink saturated", "runbook": "https://wiki.example.org/uplink?x=1&y=2",
    "value": 31_600_000.0, "limit": 30_000_000.0, "message": "31600000 above 30000000",
}


def tuned_event(i: int = 1, **kw: Any) -> Event:
    """An event of a threshold with every tuning field set (critical, B/s, labels, description, runbook)."""
    return make_event(i, **(TUNED | kw))


E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is marked e2e, so `pytest -m e2e` (or `-m "not e2e"`) picks them."""
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every receiver in the tests is local; a proxy from the environment must not get in the way.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _own_data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # A settings file without data_dir uses $XDG_DATA_HOME/rrdalarm: never the machine's own, which other
    # runs (and other checkouts' tests) share.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.fixture(autouse=True)
def _no_rrdcached_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # librrd and rrdalarm both read it: a daemon of the machine must not answer for the tests' files.
    monkeypatch.delenv("RRDCACHED_ADDRESS", raising=False)


@dataclass
class Rrdcached:
    """A real rrdcached over `base` (-b base -B), on a unix socket and a TCP port; writes wait an hour."""

    base: Path
    folder: Path
    tcp: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.folder / "sock"

    @property
    def unix(self) -> str:
        return f"unix:{self.socket}"

    def update(self, path: Path, *points: str) -> None:
        """Points that stay in the daemon's cache (the file on disk does not have them)."""
        rrdtool.update(str(path), "--daemon", self.unix, *points)

    def start(self) -> None:
        import socket
        import time

        log = (self.folder / "log").open("ab")
        # -w 3600 -f 7200: nothing is written to the files unless a read (or FLUSH) asks for it.
        self.proc = subprocess.Popen(
            ["rrdcached", "-g", "-l", self.unix, "-l", self.tcp, "-b", str(self.base), "-B",
             "-w", "3600", "-f", "7200", "-p", str(self.folder / "pid"), "-j", str(self.folder / "journal")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("rrdcached exited:\n" + (self.folder / "log").read_text())
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.socket))
                    s.sendall(b"PING\n")
                    if s.recv(64).startswith(b"0 PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("rrdcached did not answer PING:\n" + (self.folder / "log").read_text())

    def stop(self, *, graceful: bool = True) -> None:
        """SIGTERM, after which the daemon removes its socket (about 1 s); or SIGKILL, at once."""
        if self.proc is not None and self.proc.poll() is None:
            if graceful:
                self.proc.terminate()
            else:
                self.proc.kill()
            self.proc.wait(timeout=20)
        self.proc = None


@pytest.fixture
def rrdcached(env: Env) -> Any:
    """rrdcached over the env's RRD root; skipped where it is not installed, unless CI is set."""
    import shutil
    import tempfile

    if shutil.which("rrdcached") is None:
        if os.environ.get("CI"):
            pytest.fail("rrdcached is not installed (Debian package rrdcached; scripts/test.sh installs it)")
        pytest.skip("rrdcached is not installed (Debian package rrdcached)")
    # A short folder: a unix socket path must fit in 108 bytes, and pytest's tmp_path may not.
    folder = Path(tempfile.mkdtemp(prefix="rrdc-", dir="/tmp"))
    (folder / "journal").mkdir()
    daemon = Rrdcached(Path(os.path.realpath(env.root)), folder, f"127.0.0.1:{free_port()}")
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop(graceful=False)  # its folder goes too: nothing needs its clean exit
        shutil.rmtree(folder, ignore_errors=True)


def stderr_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.strip()]


def assert_one_clear_line(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, exactly one non-empty line on stderr containing every fragment, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


class Inbox:
    """aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content, policy=email_policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server (aiosmtpd) on a free port of 127.0.0.1: its inbox and its port."""
    from aiosmtpd.controller import Controller

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def wait_until_up(url: str, proc: subprocess.Popen[str], log: Path) -> None:
    """Wait (30 s at most) until a started `rrdalarm serve` answers /healthz; its log if it exited instead."""
    import requests

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/healthz", timeout=1)
            return
        except requests.ConnectionError:
            if proc.poll() is not None:
                raise AssertionError(f"rrdalarm serve exited:\n{log.read_text(errors='replace')}") from None
            time.sleep(0.1)
    raise AssertionError("rrdalarm serve did not answer in 30 s")
