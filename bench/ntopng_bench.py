#!/usr/bin/env python3
"""Benchmark of the ntopng source: 1,000 host series against a local server with 5 ms latency.

    python bench/ntopng_bench.py [--hosts N] [--latency-ms MS] [--concurrency C]

A local HTTP server answers like ntopng 6.x (interfaces.lua, host/active.lua,
ts.lua) and sleeps `latency` before every answer. `rrdalarm check --quiet`
then evaluates one threshold `host:traffic` over `ifid:0,host:*`, i.e. one
ts.lua request per host. It prints the wall time, the requests served, the
peak number of requests in flight, and the ratio against a floor measured in
the same run: the same requests made one after another with one pooled
connection (what a naive client costs). Target: N = 1,000 in under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

STEP = 300
TARGET_S = 10.0


class State:
    hosts: list[str] = []  # noqa: RUF012 - set once before serving
    latency = 0.005
    served = 0
    in_flight = 0
    peak = 0
    lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body in one write: two small writes without TCP_NODELAY meet the client's
    # delayed ACK and cost ~40 ms a request, which would measure the test server, not rrdalarm.
    wbufsize = 1 << 16

    def _answer(self, rsp: Any) -> None:
        with State.lock:
            State.in_flight += 1
            State.peak = max(State.peak, State.in_flight)
        time.sleep(State.latency)
        body = json.dumps({"rc": 0, "rc_str": "OK", "rc_str_hr": "Success", "rsp": rsp}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with State.lock:
            State.in_flight -= 1
            State.served += 1

    def do_GET(self) -> None:
        if self.path.startswith("/lua/rest/v2/get/ntopng/interfaces.lua"):
            self._answer([{"ifid": 0, "ifname": "eth0", "name": "eth0"}])
        elif self.path.startswith("/lua/rest/v2/get/host/active.lua"):
            self._answer({"currentPage": 1, "perPage": len(State.hosts),
                          "data": [{"ip": h, "vlan": 0, "name": h} for h in State.hosts]})
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        req = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.startswith("/lua/rest/v2/get/timeseries/ts.lua"):
            self.send_error(404)
            return
        begin, end = int(req["epoch_begin"]), int(req["epoch_end"])
        first = begin - begin % STEP
        count = max(1, (end - first) // STEP)
        host = str(req["ts_query"]).rsplit("host:", 1)[-1]
        spike = host.endswith(".7")
        sent = [1000.0] * count
        if spike:
            sent[-3:] = [9e9] * min(3, count)
        self._answer({
            "metadata": {"epoch_begin": first, "epoch_end": first + count * STEP, "epoch_step": STEP,
                         "num_point": count, "schema": req["ts_schema"], "query": {}},
            "series": [{"id": "bytes_sent", "data": sent}, {"id": "bytes_rcvd", "data": [500.0] * count}],
        })

    def log_message(self, *args: Any) -> None:
        pass


def floor(url: str, now: int) -> float:
    """The same ts.lua requests made one by one with one pooled connection."""
    session = requests.Session()
    started = time.monotonic()
    for host in State.hosts:
        session.post(url + "/lua/rest/v2/get/timeseries/ts.lua", timeout=10, json={
            "ts_schema": "host:traffic", "ts_query": f"ifid:0,host:{host}",
            "epoch_begin": now - 3600, "epoch_end": now, "limit": 20,
        }).raise_for_status()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    State.hosts = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(args.hosts)]
    State.latency = args.latency_ms / 1000
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    now = int(time.time())
    with tempfile.TemporaryDirectory(prefix="ntopng_bench-") as tmp:
        base = Path(tmp)
        (base / "thresholds.toml").write_text(
            '[[threshold]]\nid = 1\nsource = "ntopng"\nschema = "host:traffic"\nquery = "ifid:0,host:*"\n'
            'label = "bytes_sent"\ntype = "above"\nvalue = 1e9\nrepetitions = 2\nstart = "now-1h"\n'
        )
        (base / "rrdalarm.toml").write_text(
            f'thresholds = "thresholds.toml"\ndata_dir = "{base / "data"}"\n\n[ntopng]\nurl = "{url}"\n'
            f'token = "bench-token"\nconcurrency = {args.concurrency}\ntimeout = 10\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
        env["RRDALARM_SETTINGS"] = str(base / "rrdalarm.toml")
        cli = [str(Path(sys.executable).with_name("rrdalarm")), "check", "--json"]
        started = time.monotonic()
        proc = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=300)
        wall = time.monotonic() - started
        if proc.returncode not in (0, 1):
            print(proc.stderr, file=sys.stderr)
            return 2
        doc = json.loads(proc.stdout)
        served, peak = State.served, State.peak
        fired = sum(1 for r in doc["results"] if r["status"] == "ALARM FIRED")
        base_s = floor(url, now)
    server.shutdown()
    expected = sum(1 for h in State.hosts if h.endswith(".7"))
    print(f"cores (os.cpu_count())          {os.cpu_count()}")
    print(f"host series                     {args.hosts} (latency {args.latency_ms:g} ms per request)")
    print(f"requests served by the check    {served} (peak in flight {peak}, concurrency {args.concurrency})")
    print(f"series checked / fired          {doc['series_checked']} / {fired} (expected {expected})")
    print(f"floor: sequential requests       {base_s:.2f} s")
    print(f"rrdalarm check (wall)            {wall:.2f} s ({wall / base_s:.2f}x floor)")
    ok = wall < TARGET_S and fired == expected
    print(f"{'PASS' if ok else 'MISS'}  {args.hosts} host series in < {TARGET_S:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
