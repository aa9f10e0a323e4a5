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
    assert any(line.startswith("ntopng:host:traffic{ifid:0,host:192.168.1.10} bytes_sent  5e+07") for line in lines)
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
