"""`rrdalarm serve` as a real process on a free port: scheduler, /start, report, graphs, metrics, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import T0, Env, Rrdcached, free_port, make_rrd, threshold
from prometheus_client.parser import text_string_to_metric_families
from test_rrd_pool import RRDALARM, set_workers, tree

TOKEN = "test-token-0123456789"


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[str]
    env: Env

    def get(self, path: str, token: str | None = TOKEN, **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(self.url + path, params=params, headers=headers, timeout=30)


def start_server(env: Env, *extra: str, interval: int = 2, service_lines: str = "", cwd: Path | None = None,
                 command: Sequence[str] = (sys.executable, "-m", "rrdalarm")) -> Server:
    port = free_port()
    (env.base / "token").write_text(TOKEN + "\n")
    with env.settings_path.open("a") as fh:
        fh.write(f'\n[service]\nlisten = "127.0.0.1:{port}"\ncheck_interval = {interval}\n'
                 f'min_start_interval = 60\napi_token = {{ file = "token" }}\n{service_lines}')
    envvars = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    envvars["RRDALARM_SETTINGS"] = str(env.settings_path)
    # A file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
    log = (env.base / "serve.log").open("w")
    proc = subprocess.Popen([*command, "serve", *extra], env=envvars, text=True, stdout=log, stderr=log, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/healthz", timeout=1)
            return Server(url, proc, env)
        except requests.ConnectionError:
            if proc.poll() is not None:
                raise AssertionError((env.base / "serve.log").read_text()) from None
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")


@pytest.fixture
def server(env: Env) -> Iterator[Server]:
    now = int(time.time()) // 60 * 60
    make_rrd(env.root / "interfaces/eth0/bytes.rrd", {"rcvd": [1.0] * 20 + [9.0] * 5, "sent": [1.0] * 25}, end=now)
    make_rrd(env.root / "interfaces/eth1/bytes.rrd", {"rcvd": [1.0] * 25, "sent": [1.0] * 25}, end=now)
    env.write_thresholds(threshold(glob="interfaces/*/bytes.rrd", repetitions=2, rearm=3600))
    srv = start_server(env)
    yield srv
    if srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait(timeout=10)


def wait_for(predicate: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_scheduler_checks_on_its_own(server: Server) -> None:
    wait_for(lambda: checks_run(server) >= 2)
    health = server.get("/healthz", token=None)
    assert health.status_code == 200
    assert health.json()["scheduler"] == "running" and health.json()["database"] is True
    events = json.loads(server.env.run("history", "--json").stdout.splitlines()[0])
    assert (events["file"], events["ds"], events["status"]) == ("interfaces/eth0/bytes.rrd", "rcvd", "ALARM FIRED")


def test_start_needs_a_token(server: Server) -> None:
    assert server.get("/start", token=None, noHTML="true").status_code == 401
    assert server.get("/start", token="wrong", noHTML="true").status_code == 401
    assert server.get("/report", token=None).status_code == 401
    assert requests.get(server.url + "/start", params={"token": "nope"}, timeout=10).status_code == 401


def test_start_nohtml_then_429(server: Server) -> None:
    first = server.get("/start", noHTML="true")
    assert (first.status_code, first.text) == (200, "")
    second = server.get("/start", noHTML="true")
    assert second.status_code == 429
    assert 1 <= int(second.headers["Retry-After"]) <= 60


def checks_run(server: Server) -> float:
    fams = text_string_to_metric_families(server.get("/metrics", token=None).text)
    return sum(s.value for f in fams if f.name == "rrdalarm_checks" for s in f.samples
               if s.name == "rrdalarm_checks_total")


def test_start_json_matches_check_json(server: Server) -> None:
    wait_for(lambda: checks_run(server) >= 1)  # the scheduler's first check fires the alarm
    served = server.get("/start", format="json")
    assert served.status_code == 200
    doc = served.json()
    cli = json.loads(server.env.run("check", "--json", "--dry-run").stdout)
    assert set(doc) == set(cli)
    def rows(d: dict[str, object]) -> list[tuple[object, ...]]:
        keys = ("threshold", "file", "ds", "status", "type", "limit")
        return sorted(tuple(r[k] for k in keys) for r in d["results"])  # type: ignore[attr-defined]

    # Same series with the same statuses: the alarm fired by the scheduler is held back by re-arm in both.
    assert rows(doc) == rows(cli)
    assert all(set(r) == set(c) for r, c in zip(doc["results"], cli["results"], strict=True))
    assert (doc["files_checked"], doc["series_checked"]) == (cli["files_checked"], cli["series_checked"])


def test_html_report_links_graphs_that_are_pngs(server: Server) -> None:
    page = server.get("/start")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "Files checked" in page.text and "Alarms fired" in page.text
    import re

    links = re.findall(r'href="(/graph\?[^"]+)"', page.text)
    assert links, page.text[:2000]
    png = server.get(links[0].replace("&amp;", "&"))
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    outside = server.get("/graph", threshold="1", file="../rrdalarm.toml", ds="x")
    assert outside.status_code == 404
    stats = server.get("/stats/duration/day.png")
    assert stats.status_code == 200 and stats.content.startswith(b"\x89PNG")
    assert server.get("/stats").status_code == 200


def test_metrics_parse(server: Server) -> None:
    server.get("/start", noHTML="true")
    names = {f.name for f in text_string_to_metric_families(server.get("/metrics", token=None).text)}
    assert {"rrdalarm_checks", "rrdalarm_check_duration_seconds", "rrdalarm_series", "rrdalarm_alarms_fired",
            "rrdalarm_deliveries"} <= names


def test_config_parameter_stays_in_the_config_dir(server: Server) -> None:
    assert server.get("/start", config="../../etc/passwd", noHTML="true").status_code == 400
    alt = server.env.base / "alt.toml"
    alt.write_text(threshold(9, glob="interfaces/eth1/bytes.rrd"))
    # Without a declared thresholds_dir, config= names no file at all.
    refused = server.get("/start", config="alt.toml", format="json")
    assert refused.status_code == 400 and "thresholds_dir" in refused.text


def start_client(env: Env, service_lines: str = "") -> tuple[Any, Any]:
    """The app over a CheckService on `env` with the API token set; the caller closes the service."""
    from rrdalarm.service.service import CheckService
    from rrdalarm.web import create_app

    (env.base / "token").write_text(TOKEN)
    with env.settings_path.open("a") as fh:
        fh.write(f'\n[service]\napi_token = {{ file = "token" }}\nmin_start_interval = 0\n{service_lines}')
    service = CheckService(env.settings_path)
    return service, create_app(service).test_client()


def test_config_takes_only_thresholds_files_of_the_declared_folder(env: Env) -> None:
    now = int(time.time()) // 60 * 60
    make_rrd(env.root / "a.rrd", {"x": [1.0, 9.0]}, end=now)
    env.write_thresholds(threshold(glob="a.rrd"))
    alt = env.base / "alt"
    alt.mkdir()
    (alt / "other.toml").write_text(threshold(9, glob="a.rrd"))
    (alt / "other.toml.bak").write_text(threshold(8, glob="a.rrd"))
    (alt / "data").symlink_to(env.data)
    service, client = start_client(env, 'thresholds_dir = "alt"\n')
    try:
        def start(config: str) -> Any:
            return client.get("/start", query_string={"config": config, "format": "json", "token": TOKEN})

        got = start("other.toml")
        assert got.status_code == 200 and {r["threshold"] for r in got.json["results"]} == {9}
        db = env.data / "rrdalarm.db"
        assert db.is_file()
        for bad in ("other.toml.bak", "../rrdalarm.toml", "data/rrdalarm.db", "../data/rrdalarm.db",
                    str(db), "rrdalarm.db", "a\x00.toml", "x" * 300 + ".toml"):
            r = start(bad)
            assert r.status_code == 400, (bad, r.status_code)
            assert len(r.get_data(as_text=True).strip().splitlines()) == 1
    finally:
        service.close()


@pytest.mark.parametrize("rel", ["x" * 300 + ".rrd", "a/" + "y" * 256, "a\x00.rrd"])
def test_graph_of_an_impossible_file_name_is_a_400(env: Env, rel: str) -> None:
    env.write_thresholds(threshold(glob="a.rrd"))
    service, client = start_client(env)
    try:
        r = client.get("/graph", query_string={"threshold": 1, "file": rel, "ds": "x", "token": TOKEN})
        assert r.status_code == 400
    finally:
        service.close()


def test_healthz_is_503_while_checks_fail_and_names_no_file(env: Env) -> None:
    env.write_thresholds("[[threshold]]\nid = 1\nglob = \"*.rrd\"\n")  # no type: every check fails
    srv = start_server(env, interval=1)
    try:
        wait_for(lambda: "rrdalarm_check_failures_total{reason=\"config\"}" in srv.get("/metrics", token=None).text)
        h = srv.get("/healthz", token=None)
        assert h.status_code == 503 and h.json()["status"] == "failing"
        assert str(env.base) not in h.text and "thresholds.toml" not in h.text
        env.write_thresholds(threshold(glob="*.rrd"))
        wait_for(lambda: srv.get("/healthz", token=None).status_code == 200)
        metrics = {s.name: s.value for f in text_string_to_metric_families(srv.get("/metrics", token=None).text)
                   for s in f.samples}
        assert time.time() - metrics["rrdalarm_last_success_timestamp_seconds"] < 30
    finally:
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(timeout=10)


def test_healthz_without_scheduler_reads_the_newest_check_run(env: Env) -> None:
    env.write_thresholds(threshold(glob="*.rrd"))
    srv = start_server(env, "--no-scheduler", interval=1)
    try:
        # No check has completed: after the grace period of three intervals, unhealthy.
        wait_for(lambda: srv.get("/healthz", token=None).status_code == 503)
        assert srv.get("/healthz", token=None).json()["last_check_age_s"] is None
        assert env.run("check", "--quiet").returncode in (0, 3)  # cron's check, another process
        h = srv.get("/healthz", token=None)
        assert h.status_code == 200 and h.json()["last_check_age_s"] is not None
    finally:
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(timeout=10)


def trickle_until_closed(sock: socket.socket, within: float) -> bool:
    """Send a byte of header every half second; True once the server has closed the connection."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            sock.sendall(b"X")
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: closed
            return True
    return False


def test_half_open_connections_do_not_lock_others_out(env: Env) -> None:
    env.write_thresholds(threshold(glob="*.rrd"))
    srv = start_server(env, "--no-scheduler", interval=60, service_lines="request_timeout = 2\n")
    host, port = srv.url.removeprefix("http://").split(":")
    sockets = []
    try:
        for _ in range(150):  # more than waitress's default connection limit (100)
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the header never ends
            sockets.append(s)
        assert requests.get(srv.url + "/healthz", timeout=10).status_code in (200, 503)
        # A client that sends a byte now and then is closed as well, once its request is overdue.
        assert trickle_until_closed(sockets[0], within=15)
        closed = 1
        for s in sockets[1:]:
            s.settimeout(15)
            try:
                closed += s.recv(1024) == b""
            except ConnectionResetError:
                closed += 1
        assert closed == len(sockets)
    finally:
        for s in sockets:
            s.close()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(timeout=10)


def test_sigterm_stops_cleanly(server: Server) -> None:
    server.get("/start", noHTML="true")
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0, (server.env.base / "serve.log").read_text()
    assert time.monotonic() - started < 6
    assert "SIGTERM: stopping" in (server.env.base / "serve.log").read_text()


def test_cron_check_while_scheduler_checks_fires_once(env: Env) -> None:
    now = int(time.time()) // 60 * 60
    for i in range(200):
        make_rrd(env.root / f"h/{i // 50}/{i}.rrd", {"x": [9.0 if i % 20 == 0 else 1.0] * 5}, end=now, rows=20)
    env.write_thresholds(threshold(glob="h/**/*.rrd", rearm=3600))
    srv = start_server(env, interval=1)
    try:
        cron = [env.run("check", "--quiet", "--wait", "30") for _ in range(3)]
        assert [p.returncode for p in cron] == [1, 1, 1], [p.stderr for p in cron]
        wait_for(lambda: checks_run(srv) >= 2)  # the scheduler's checks too, over the same files
    finally:
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(timeout=15)
    events = [json.loads(line) for line in env.run("history", "--json", "--limit", "1000").stdout.splitlines()]
    fired = [(e["file"], e["ds"]) for e in events if e["status"] == "ALARM FIRED"]
    assert len(fired) == 10 and len(set(fired)) == 10


def test_no_scheduler_serves_pages_only(env: Env) -> None:
    env.write_thresholds(threshold(glob="*.rrd"))
    srv = start_server(env, "--no-scheduler")
    try:
        time.sleep(1.5)
        assert srv.get("/healthz", token=None).json()["scheduler"] == "none"
        assert "No check has run yet" in srv.get("/report").text
    finally:
        srv.proc.send_signal(signal.SIGINT)
        assert srv.proc.wait(timeout=10) == 0


def test_token_link_opens_a_browser_session(server: Server) -> None:
    server.get("/start", noHTML="true")
    browser = requests.Session()
    assert browser.get(server.url + "/report", timeout=10).status_code == 401
    assert browser.get(server.url + "/report", params={"token": TOKEN}, timeout=10).status_code == 200
    cookie = next(c for c in browser.cookies)
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert browser.get(server.url + "/stats", timeout=10).status_code == 200


def test_graph_when_the_thresholds_file_also_watches_ntopng(env: Env) -> None:
    from rrdalarm.service.service import CheckService
    from rrdalarm.web import create_app

    now = int(time.time()) // 60 * 60
    make_rrd(env.root / "a.rrd", {"x": [1.0, 9.0, 9.0]}, end=now)
    env.write_thresholds(
        threshold(glob="a.rrd")
        + '\n[[threshold]]\nid = 2\nsource = "ntopng"\nschema = "host:traffic"\nquery = "ifid:0,host:*"\n'
        'type = "above"\nvalue = 1\n'
    )
    (env.base / "token").write_text(TOKEN)
    with env.settings_path.open("a") as fh:
        fh.write('\n[service]\napi_token = { file = "token" }\n')
    service = CheckService(env.settings_path)
    try:
        client = create_app(service).test_client()
        png = client.get("/graph", query_string={"threshold": 1, "file": "a.rrd", "ds": "x", "at": now,
                                                 "token": TOKEN})
        assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    finally:
        service.close()


def test_serve_reads_through_rrdcached(env: Env, rrdcached: Rrdcached) -> None:
    now = int(time.time()) // 60 * 60
    path = make_rrd(env.root / "a.rrd", {"x": [1.0] * 5}, end=now - 600)
    rrdcached.update(path, *(f"{now - 240 + 60 * i}:9" for i in range(5)))
    env.write_thresholds(threshold(start="now-5min"))
    bad = env.run("serve", "--rrdcached", "unix:relative.sock")
    assert bad.returncode == 2 and "--rrdcached" in bad.stderr
    srv = start_server(env, "--no-scheduler", "--rrdcached", rrdcached.unix)
    try:
        doc = srv.get("/start", format="json").json()
        assert [r["status"] for r in doc["results"]] == ["ALARM FIRED"]
    finally:
        srv.proc.send_signal(signal.SIGINT)
        assert srv.proc.wait(timeout=10) == 0


def test_scheduled_checks_complete_when_run_from_a_folder_holding_rrdalarm(env: Env) -> None:
    # Started from /etc (which holds /etc/rrdalarm) with enough files for two workers from the fork server.
    cwd = env.base / "etc"
    (cwd / "rrdalarm").mkdir(parents=True)
    set_workers(env, 2)
    fired = tree(env, 400)
    env.write_thresholds(threshold(glob="h/*.rrd", start=str(T0 - 3600), end=str(T0)))
    srv = start_server(env, cwd=cwd, command=[str(RRDALARM)])
    try:
        wait_for(lambda: checks_run(srv) >= 1, timeout=60)
        doc = srv.get("/start", format="json").json()
    finally:
        srv.proc.kill()
        srv.proc.wait(timeout=10)
    assert doc["files_checked"] == 400
    assert {r["file"] for r in doc["results"] if r["status"] in ("ALARM FIRED", "FIRING")} == fired
    assert "Traceback" not in (env.base / "serve.log").read_text()
