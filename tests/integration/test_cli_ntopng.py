"""`rrdalarm ntopng schemas|series` and `check` with an ntopng threshold, against the fake ntopng."""

from __future__ import annotations

import json
import time

import pytest
from conftest import Env
from fake_ntopng import FakeNtopng
from pytest_httpserver import HTTPServer


@pytest.fixture
def ntop(env: Env, httpserver: HTTPServer) -> FakeNtopng:
    fake = FakeNtopng(httpserver, version="6.2", tokens={"tok-cli"})
    end = int(time.time()) // 300 * 300
    for ip, sent in (("192.168.1.10", 5e7), ("192.168.1.11", 1e3)):
        fake.add_host(0, ip)
        fake.add_series("host:traffic", f"ifid:0,host:{ip}", {"bytes_sent": [sent] * 13, "bytes_rcvd": [1e3] * 13},
                        end=end)
    with env.settings_path.open("a") as fh:
        fh.write(f'\n[ntopng]\nurl = "{fake.url}"\ntoken = "tok-cli"\ntimeout = 5\n')
    return fake


def test_series_lists_the_expansion_with_newest_values(env: Env, ntop: FakeNtopng) -> None:
    p = env.run("ntopng", "series", "host:traffic", "ifid:0,host:*", "--since", "now-1h")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert any(line.startswith("ntopng:host:traffic{ifid:0,host:192.168.1.10} bytes_sent  50 M ") for line in lines)
    assert sum("192.168.1.11" in line for line in lines) == 2


def test_bad_query_and_unreachable_ntopng_are_one_line(env: Env, ntop: FakeNtopng) -> None:
    bad = env.run("ntopng", "series", "host:traffic", "host:*")
    assert bad.returncode == 2 and "ifid" in bad.stderr and "Traceback" not in bad.stderr
    env.settings_path.write_text(env.settings_path.read_text().replace("tok-cli", "wrong"))
    denied = env.run("ntopng", "series", "host:traffic", "ifid:0,host:*")
    assert denied.returncode == 3 and "authentication failed" in denied.stderr
    assert "wrong" not in denied.stderr and len(denied.stderr.strip().splitlines()) == 1


def test_check_with_an_ntopng_threshold(env: Env, ntop: FakeNtopng) -> None:
    env.write_thresholds(
        '[[threshold]]\nid = 7\nsource = "ntopng"\nschema = "host:traffic"\nquery = "ifid:0,host:*"\n'
        'label = "bytes_sent"\ntype = "above"\nvalue = 1e7\nrepetitions = 2\nstart = "now-30min"\n'
    )
    p = env.run("check", "--json")
    assert p.returncode == 1, p.stderr
    rows = {(r["file"], r["ds"]): r["status"] for r in json.loads(p.stdout)["results"]}
    assert rows == {
        ("ntopng:host:traffic{ifid:0,host:192.168.1.10}", "bytes_sent"): "ALARM FIRED",
        ("ntopng:host:traffic{ifid:0,host:192.168.1.11}", "bytes_sent"): "OK",
    }


def test_series_not_found_is_a_line_not_a_crash(env: Env, ntop: FakeNtopng) -> None:
    # A host before its first 5-minute dump, and a schema of the catalog with no data: ntopng says "not found".
    ntop.add_host(0, "192.168.1.12")
    p = env.run("ntopng", "series", "host:traffic", "ifid:0,host:*")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    [line] = [line for line in p.stdout.splitlines() if "192.168.1.12" in line]
    assert line.startswith("ntopng:host:traffic{ifid:0,host:192.168.1.12}  no data: ntopng has no host:traffic data")
    score = env.run("ntopng", "series", "host:score", "ifid:0,host:192.168.1.10")
    assert score.returncode == 0 and "Traceback" not in score.stderr, score.stderr
    assert score.stdout.startswith("ntopng:host:score{ifid:0,host:192.168.1.10}  no data: ntopng has no host:score")


def test_schemas_of_hosts_and_interfaces(env: Env, ntop: FakeNtopng) -> None:
    iface = env.run("ntopng", "schemas", "--entity", "iface")
    assert iface.returncode == 0, iface.stderr
    names = iface.stdout.split()
    assert names[:2] == ["iface:traffic_rxtx", "iface:traffic_ip"] and "iface:traffic" in names and len(names) == 32
    host = env.run("ntopng", "schemas")
    assert host.returncode == 0, host.stderr
    assert host.stdout.split()[:3] == ["host:traffic", "host:score", "host:active_flows"]
    consts = [params for _m, path, params in ntop.log if path.endswith("/consts.lua")]
    assert all({"epoch_begin", "epoch_end"} <= params.keys() for params in consts)
