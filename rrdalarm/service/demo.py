"""A demo RRD tree shaped like ntopng's RRD data dir, with spikes that demo thresholds catch.

Layout under the root (every file: step 60 s, heartbeat 120 s, RRAs AVERAGE and
MAX at 1 step for ``days`` plus one hour, and at 5 steps for a week)::

    interfaces/eth{N}/bytes.rrd       DERIVE sent, rcvd    (bytes/s)
    interfaces/eth{N}/packets.rrd     DERIVE sent, rcvd    (packets/s)
    interfaces/eth{N}/drops.rrd       GAUGE  drops
    interfaces/eth{N}/num_hosts.rrd   GAUGE  num_hosts
    hosts/<a>/<b>/<c>/<d>/bytes.rrd   DERIVE sent, rcvd    (bytes/s; one folder per IPv4 octet)
    hosts/<a>/<b>/<c>/<d>/ndpi/{HTTP,TLS,DNS}.rrd   DERIVE sent, rcvd

Host k (from 0) is 192.168.1.10 + k/2 for even k and 10.0.0.2 + (k-1)/2 for odd
k, so host 0 is 192.168.1.10. There are ``4 * interfaces + 4 * hosts`` files.

Data: one point per minute, the last one at ``now`` floored to a multiple of 60,
``round(days * 1440)`` points in all. A point at time t covers (t-60, t]; rrdtool
fetch labels that row t-60. The baseline follows a daily sine with noise from
``random.Random`` seeded by ``seed`` and the series name, so it is reproducible.

Spikes (points are named by the end of the minute they cover):

* ``interfaces/eth0/bytes.rrd`` rcvd: 120e6 to 140e6 bytes/s for the last 5
  points (now-240 .. now), above 100e6.
* ``hosts/192/168/1/10/bytes.rrd`` sent: 30e6 to 35e6 bytes/s for the last 3
  points (now-120 .. now), above 20e6.
* ``interfaces/eth1/drops.rrd`` drops: 60 to 90 for the last 10 points
  (now-540 .. now), above 50.

Everything else stays well below: interface bytes under 50e6 bytes/s, host and
nDPI bytes under 5e6 bytes/s, drops under 5, packets under 100e3 packets/s;
num_hosts is always 1 or more.

Gap: eth2 (all four files) gets no updates for 10 minutes half-way through the
window, so exactly 10 points are unknown: those ending at ``gap_end - 540`` ..
``gap_end`` where ``gap_end`` is what :func:`eth2_gap` returns.
"""

from __future__ import annotations

import ipaddress
import math
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import rrdtool

from rrdalarm.access.tokens import ensure_token_file
from rrdalarm.common.fileutil import atomic_write_text

STEP = 60
HEARTBEAT = 2 * STEP
NDPI_PROTOCOLS = ("HTTP", "TLS", "DNS")
# Written at the root so a later call knows it may delete the old demo folders.
MARKER = ".rrdalarm-demo"
_TOP_FOLDERS = ("interfaces", "hosts")
_UPDATE_CHUNK = 500
_DAY = 86_400
_GAP_POINTS = 10

ETH0_RCVD_SPIKE = (120e6, 140e6)
ETH0_SPIKE_POINTS = 5
HOST_SPIKE_IP = "192.168.1.10"
HOST_SENT_SPIKE = (30e6, 35e6)
HOST_SPIKE_POINTS = 3
ETH1_DROPS_SPIKE = (60, 90)
ETH1_SPIKE_POINTS = 10

DEMO_THRESHOLDS_TOML = """\
# rrdalarm demo thresholds, written for the tree of `rrdalarm.service.demo.generate_demo`.
# Thresholds 1-3 fire on the demo's spikes; 4 and 5 stay quiet.

[[threshold]]
id = 1
name = "eth0 traffic above 100 MB/s"
glob = "interfaces/eth0/bytes.rrd"
type = "above"
value = 100e6
repetitions = 3
start = "now-1h"
end = "now"
rearm = 600

[[threshold.action]]
type = "log"
file = "alarms.log"

[[threshold]]
id = 2
name = "a host sends above 20 MB/s"
glob = "hosts/**/bytes.rrd"
ds = ["sent"]
type = "above"
value = 20e6
repetitions = 2
start = "now-30min"
end = "now"

[[threshold.action]]
type = "log"
file = "alarms.log"

[[threshold]]
id = 3
name = "interface drops above 50"
glob = "interfaces/*/drops.rrd"
type = "above"
value = 50
repetitions = 5

[[threshold]]
id = 4
name = "interface without hosts"
glob = "interfaces/*/num_hosts.rrd"
type = "below"
value = 1

[[threshold]]
id = 5
name = "nDPI protocol above 1 GB/s"
glob = "hosts/**/ndpi/*.rrd"
type = "above"
value = 1e9
"""


@dataclass(frozen=True)
class DemoTree:
    """What generate_demo wrote."""

    root: Path
    files: list[Path]
    now: int


@dataclass(frozen=True)
class _Series:
    """One file to write: its data sources and the value of each at point k (1..n)."""

    path: Path
    kind: str
    names: tuple[str, ...]
    values: tuple[Callable[[int], float], ...]
    gap: bool = False


def host_ips(hosts: int) -> list[str]:
    """The demo's host addresses, in order (the first is 192.168.1.10)."""
    lan = ipaddress.IPv4Address("192.168.1.10")
    dmz = ipaddress.IPv4Address("10.0.0.2")
    return [str(lan + k // 2) if k % 2 == 0 else str(dmz + k // 2) for k in range(hosts)]


def host_dir(ip: str) -> Path:
    """ntopng's folder of an IPv4 host, relative to the RRD root: one folder per octet."""
    return Path("hosts", *ip.split("."))


def point_count(days: float) -> int:
    return round(days * _DAY / STEP)


def eth2_gap(now: int, days: float) -> int:
    """Time of the last unknown point of eth2's 10-minute gap (see the module docstring)."""
    now -= now % STEP
    return now - (point_count(days) // 2) * STEP


def generate_demo(
    root: Path, now: int, *, days: float = 1.0, hosts: int = 12, interfaces: int = 3, seed: int = 1
) -> DemoTree:
    """Write a fresh demo RRD tree under root (files are replaced), with data up to `now`."""
    n = point_count(days)
    # The spikes take the last 10 points and the gap sits half-way: an hour keeps them apart.
    if n < 60:
        raise ValueError(f"days must cover at least one hour, not {days!r}")
    if interfaces < 3:
        raise ValueError(f"the demo needs at least 3 interfaces (eth0-eth2), not {interfaces}")
    if hosts < 1:
        raise ValueError(f"the demo needs at least 1 host, not {hosts}")
    now -= now % STEP
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    marker = root / MARKER
    if not marker.exists():
        # Never delete folders of a real ntopng tree that happens to be given as root.
        taken = [name for name in _TOP_FOLDERS if (root / name).exists()]
        if taken:
            raise FileExistsError(
                f"{root} already has {', '.join(taken)} but is not a demo tree (no {MARKER}); "
                "choose an empty folder"
            )
    marker.write_text("Written by rrdalarm.service.demo; the folders beside it are replaced on the next run.\n",
                      encoding="utf-8")

    series = _demo_series(n, hosts, interfaces, seed)
    # Build beside the old tree, then swap folder by folder, so a reader sees old or new files.
    staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=root))
    try:
        for s in series:
            _write_rrd(staging, s, now, n, days)
        for name in _TOP_FOLDERS:
            target = root / name
            old = staging / f"{name}.old"
            if target.exists():
                os.replace(target, old)
            os.replace(staging / name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return DemoTree(root=root, files=sorted(s.path for s in series), now=now)


def _demo_series(n: int, hosts: int, interfaces: int, seed: int) -> list[_Series]:
    out: list[_Series] = []
    for i in range(interfaces):
        base = Path("interfaces", f"eth{i}")
        sent = _daily(n, _rng(seed, base / "bytes.rrd", "sent"), 15e6, 30e6)
        rcvd = _daily(n, _rng(seed, base / "bytes.rrd", "rcvd"), 15e6, 30e6)
        if i == 0:
            rcvd = _spike(rcvd, n, ETH0_SPIKE_POINTS, ETH0_RCVD_SPIKE, _rng(seed, base, "spike"))
        # Packets follow bytes, so the eth0 spike shows there too, as it would on a real link.
        size = _rng(seed, base, "packet size").uniform(600.0, 1200.0)
        gap = i == 2
        out.append(_Series(base / "bytes.rrd", "DERIVE", ("sent", "rcvd"), (sent, rcvd), gap))
        out.append(_Series(base / "packets.rrd", "DERIVE", ("sent", "rcvd"),
                           (_scaled(sent, 1 / size), _scaled(rcvd, 1 / size)), gap))
        drops = _drops(n, _rng(seed, base / "drops.rrd", "drops"))
        if i == 1:
            drops = _spike(drops, n, ETH1_SPIKE_POINTS, ETH1_DROPS_SPIKE, _rng(seed, base, "spike"), whole=True)
        out.append(_Series(base / "drops.rrd", "GAUGE", ("drops",), (drops,), gap))
        out.append(_Series(base / "num_hosts.rrd", "GAUGE", ("num_hosts",),
                           (_num_hosts(n, _rng(seed, base / "num_hosts.rrd", ""), hosts, interfaces),), gap))
    for ip in host_ips(hosts):
        base = host_dir(ip)
        sent = _daily(n, _rng(seed, base / "bytes.rrd", "sent"), 0.3e6, 2.5e6)
        rcvd = _daily(n, _rng(seed, base / "bytes.rrd", "rcvd"), 0.3e6, 2.5e6)
        if ip == HOST_SPIKE_IP:
            sent = _spike(sent, n, HOST_SPIKE_POINTS, HOST_SENT_SPIKE, _rng(seed, base, "spike"))
        out.append(_Series(base / "bytes.rrd", "DERIVE", ("sent", "rcvd"), (sent, rcvd)))
        for proto in NDPI_PROTOCOLS:
            path = base / "ndpi" / f"{proto}.rrd"
            out.append(_Series(path, "DERIVE", ("sent", "rcvd"), (
                _daily(n, _rng(seed, path, "sent"), 0.05e6, 1e6),
                _daily(n, _rng(seed, path, "rcvd"), 0.05e6, 1e6),
            )))
    return out


def _rng(seed: int, path: Path, what: str) -> random.Random:
    # One generator per series: a series does not change when others are added or removed.
    return random.Random(f"{seed}:{path.as_posix()}:{what}")


def _daily(n: int, rng: random.Random, low: float, high: float) -> Callable[[int], float]:
    """A rate of base*(1 ± 0.4) over a day, times noise of ± 10 %: at most 1.54 * high."""
    base = rng.uniform(low, high)
    phase = rng.uniform(0.0, 2 * math.pi)
    noise = [rng.uniform(0.9, 1.1) for _ in range(n + 1)]

    def value(k: int) -> float:
        return base * (1 + 0.4 * math.sin(2 * math.pi * k * STEP / _DAY + phase)) * noise[k]

    return value


def _drops(n: int, rng: random.Random) -> Callable[[int], float]:
    """Rare, small drops: 1 to 4 on a fifth of the points, else 0."""
    values = [float(rng.randint(1, 4)) if rng.random() < 0.2 else 0.0 for _ in range(n + 1)]
    return lambda k: values[k]


def _num_hosts(n: int, rng: random.Random, hosts: int, interfaces: int) -> Callable[[int], float]:
    base = max(1, hosts // interfaces) + rng.randint(0, 5)
    phase = rng.uniform(0.0, 2 * math.pi)

    def value(k: int) -> float:
        return float(max(1, round(base * (1 + 0.3 * math.sin(2 * math.pi * k * STEP / _DAY + phase)))))

    return value


def _scaled(f: Callable[[int], float], factor: float) -> Callable[[int], float]:
    return lambda k: f(k) * factor


def _spike(
    f: Callable[[int], float], n: int, points: int, bounds: tuple[float, float], rng: random.Random,
    whole: bool = False,
) -> Callable[[int], float]:
    """f, except for the last `points` points, which are drawn between bounds."""
    lo, hi = bounds
    top = {k: float(rng.randint(int(lo), int(hi))) if whole else rng.uniform(lo, hi)
           for k in range(n - points + 1, n + 1)}
    return lambda k: top.get(k, f(k))


def _write_rrd(root: Path, s: _Series, now: int, n: int, days: float) -> None:
    path = root / s.path
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = now - n * STEP
    fine_rows = math.ceil(days * _DAY / STEP) + 3600 // STEP
    coarse_rows = max(7 * _DAY // (5 * STEP), math.ceil(days * _DAY / (5 * STEP)) + 12)
    rrdtool.create(
        str(path), "--start", str(t0 - STEP), "--step", str(STEP),
        *[f"DS:{name}:{s.kind}:{HEARTBEAT}:0:U" for name in s.names],
        f"RRA:AVERAGE:0.5:1:{fine_rows}", f"RRA:MAX:0.5:1:{fine_rows}",
        f"RRA:AVERAGE:0.5:5:{coarse_rows}", f"RRA:MAX:0.5:5:{coarse_rows}",
    )
    derive = s.kind == "DERIVE"
    # A DERIVE rate needs a previous counter, hence the extra update at t0; counters
    # start high like a long-running interface's, and must be whole numbers for rrdtool.
    # Counter origins do not change any rate, so they need no seed.
    counters = [_rng(0, s.path, f"{name} counter").randrange(10**9, 10**12) for name in s.names]
    gap_end = (eth2_gap(now, days) - t0) // STEP
    gap = range(gap_end - _GAP_POINTS + 1, gap_end) if s.gap else range(0)
    lines = [f"{t0}:" + ":".join(str(c) if derive else "0" for c in counters)]
    for k in range(1, n + 1):
        if derive:
            for j, f in enumerate(s.values):
                counters[j] += round(f(k) * STEP)
            fields = [str(c) for c in counters]
        else:
            fields = [_gauge(f(k)) for f in s.values]
        # Skipping 9 updates leaves 600 s without data, over the heartbeat: 10 unknown points.
        if k in gap:
            continue
        lines.append(f"{t0 + k * STEP}:" + ":".join(fields))
    _update(path, lines)


def _gauge(v: float) -> str:
    return str(int(v)) if v.is_integer() else repr(v)


def _update(path: Path, lines: Sequence[str]) -> None:
    for i in range(0, len(lines), _UPDATE_CHUNK):
        rrdtool.update(str(path), list(lines[i:i + _UPDATE_CHUNK]))


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _settings_path(path: Path, base: Path) -> str:
    # Inside the config folder a relative path keeps the demo folder movable.
    path = Path(os.path.abspath(path))
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def write_demo_config(dir: Path, rrd_root: Path, data_dir: Path) -> Path:
    """Write rrdalarm.toml and thresholds.toml for the demo into dir; return the settings path."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    base = Path(os.path.abspath(dir))
    data = Path(os.path.abspath(data_dir))
    thresholds = dir / "thresholds.toml"
    settings = dir / "rrdalarm.toml"
    # Thresholds first: the settings file must never name a file that is not there yet.
    atomic_write_text(thresholds, DEMO_THRESHOLDS_TOML)
    atomic_write_text(settings, (
        "# rrdalarm demo settings, written by rrdalarm.service.demo.\n"
        "# Relative paths are taken from this file's folder.\n"
        f"rrd_root = {_toml_string(_settings_path(rrd_root, base))}\n"
        f"thresholds = {_toml_string(thresholds.name)}\n"
        f"data_dir = {_toml_string(_settings_path(data, base))}\n"
        f"log_dir = {_toml_string(_settings_path(data / 'log', base))}\n"
        'database_url = ""\n'
        "workers = 0\n"
        "lock_wait = 30\n"
        "\n[service]\n"
        'listen = "127.0.0.1:8080"\n'
        "check_interval = 60\n"
        f"api_token = {{ file = {_toml_string(_settings_path(data / 'api_token', base))} }}\n"
    ))
    ensure_token_file(data / "api_token")
    return settings
