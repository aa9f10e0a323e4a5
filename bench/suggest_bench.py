#!/usr/bin/env python3
"""Benchmark of the glob autocomplete (/api/suggest, /api/matches) over a 100,000-file RRD tree.

    python bench/suggest_bench.py [--files N] [--dir DIR] [--keep]

Steps (see bench/README.md):

1. Tree: N files shaped like an ntopng host tree, ``hosts/<ip>/<20 names>.rrd``
   and ``hosts/<ip>/ndpi/<80 protocols>.rrd`` (100 files per host), plus
   ``interfaces/eth0..3/<25 names>.rrd``. Each distinct name is one small real
   RRD, and every file is a hard link to its name's template, so building
   100,000 files takes seconds. Made once under --dir and reused when its
   marker (written last) matches the parameters.
2. The cost of an index refresh (a stat of every folder) in this process.
3. ``rrdalarm serve --no-scheduler`` as a subprocess (waitress, the real app,
   a fresh data dir, an API token); the first request builds the index.
4. Requests one after another on one keep-alive connection, as a browser
   sends them: /api/suggest for every prefix of a few typed paths (one request
   per keystroke, no debounce) and /api/matches for globs being typed.
   Then 3 rounds of: add a file to a host folder, wait until the index is due
   for a refresh, type again; these requests run while the background refresh
   re-lists the folder and rewrites the index cache, and they show how many
   requests it takes before the new file is offered.
5. The floor, in this process, no HTTP: for each suggest request the same
   folders listed with os.scandir() and filtered with startswith; for each
   matches request glob.glob() of the same pattern. Run twice, the second
   (warm) run counts.

Prints p50/p95/max per endpoint in ms, the floor and the ratio against it,
and PASS/MISS for the target: p95 < 50 ms for both endpoints.
Exit status: 0 when the target is met, 1 when it is missed, 2 when the tree
cannot be made or the server does not start.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
import rrdtool  # type: ignore[import-untyped, unused-ignore]

DEFAULT_FILES = 100_000
TARGET_P95_MS = 50.0
TOKEN = "suggest-bench-token"
MARKER = ".suggest_bench.json"
INCOMPLETE = ".suggest_bench-incomplete"
TREE_VERSION = 1
REFRESH_ROUNDS = 3
NEW_FILE = "zz_suggest_bench_new.rrd"
HOST_NAMES = (
    "bytes", "packets", "active_flows", "total_flows", "num_contacts", "score", "alerts", "dns_qry_sent",
    "dns_qry_rcvd", "tcp_rx_stats", "tcp_tx_stats", "udp_rx", "udp_tx", "icmp", "arp_rqst", "engaged_alerts",
    "host_unreachable_flows", "tcp_retransmissions", "tcp_out_of_order", "tcp_lost",
)
NDPI = (
    "HTTP", "DNS", "TLS", "QUIC", "SSH", "NTP", "ICMP", "DHCP", "Google", "YouTube", "Facebook", "Netflix",
    "Amazon", "Microsoft", "Apple", "Cloudflare", "WhatsApp", "Telegram", "Zoom", "Teams", "Skype", "Spotify",
    "Dropbox", "GitHub", "Slack", "Twitter", "Instagram", "TikTok", "LinkedIn", "Office365", "OneDrive",
    "Outlook", "IMAPS", "POP3", "SMTP", "SMTPS", "FTP_CONTROL", "FTP_DATA", "SNMP", "Syslog", "LDAP", "Kerberos",
    "SMBv1", "SMBv23", "NetBIOS", "mDNS", "LLMNR", "SSDP", "UPnP", "RDP", "VNC", "Telnet", "MySQL", "PostgreSQL",
    "Redis", "MongoDB", "Elasticsearch", "Memcached", "RTP", "RTCP", "SIP", "STUN", "BitTorrent", "OpenVPN",
    "WireGuard", "IPsec", "GRE", "IGMP", "VRRP", "BGP", "OSPF", "Unknown", "IPv6_ICMP", "DoH_DoT", "AmazonAWS",
    "AzureLink", "GoogleCloud", "Steam", "Xbox", "PlayStation",
)
IF_NAMES = tuple(f"{n}{s}" for n in ("bytes", "packets", "drops", "flows", "hosts") for s in ("", "_in", "_out",
                                                                                              "_tcp", "_udp"))
INTERFACES = ("eth0", "eth1", "eth2", "eth3")
FILES_PER_HOST = len(HOST_NAMES) + len(NDPI)
INTERFACE_FILES = len(INTERFACES) * len(IF_NAMES)
assert FILES_PER_HOST == 100 and INTERFACE_FILES == 100


# ---------------------------------------------------------------------- tree


def host_ip(i: int) -> str:
    return f"192.168.{i // 254 + 1}.{i % 254 + 1}"


def tree_params(n: int) -> dict[str, object]:
    return {"version": TREE_VERSION, "files": n, "hosts": hosts_for(n)}


def hosts_for(n: int) -> int:
    return (n - INTERFACE_FILES) // FILES_PER_HOST


def write_template(path: Path, ds: Sequence[str]) -> None:
    rrdtool.create(str(path), "--start", "1700000000", "--step", "300",
                   *(f"DS:{d}:DERIVE:600:0:U" for d in ds), "RRA:AVERAGE:0.5:1:288")


def link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or no hard links: copies cost disk, not correctness
        shutil.copyfile(src, dst)


def ensure_tree(root: Path, n: int) -> tuple[float, bool]:
    """Make (or reuse) the tree; returns (seconds spent, reused)."""
    params = tree_params(n)
    marker = root / MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == params:
                return 0.0, True
        except ValueError:
            pass
    if root.exists():
        entries = {p.name for p in root.iterdir()}
        if entries and not entries & {MARKER, INCOMPLETE}:
            raise SystemExit(f"suggest_bench: {root} exists and is not a benchmark tree; choose another --dir")
        shutil.rmtree(root)
    started = time.perf_counter()
    root.mkdir(parents=True)
    (root / INCOMPLETE).write_text("being generated by bench/suggest_bench.py\n", encoding="utf-8")
    templates = root.parent / (root.name + "-templates")
    shutil.rmtree(templates, ignore_errors=True)
    templates.mkdir()
    for name in HOST_NAMES:
        write_template(templates / f"{name}.rrd", (f"{name[:12]}_sent", f"{name[:12]}_rcvd"))
    for name in NDPI:
        write_template(templates / f"ndpi-{name}.rrd", ("bytes_sent", "bytes_rcvd"))
    for name in IF_NAMES:
        write_template(templates / f"if-{name}.rrd", (name[:19],))
    for ifname in INTERFACES:
        folder = root / "interfaces" / ifname
        folder.mkdir(parents=True)
        for name in IF_NAMES:
            link(templates / f"if-{name}.rrd", folder / f"{name}.rrd")
    for i in range(hosts_for(n)):
        folder = root / "hosts" / host_ip(i)
        (folder / "ndpi").mkdir(parents=True)
        for name in HOST_NAMES:
            link(templates / f"{name}.rrd", folder / f"{name}.rrd")
        for name in NDPI:
            link(templates / f"ndpi-{name}.rrd", folder / "ndpi" / f"{name}.rrd")
    marker.write_text(json.dumps(params) + "\n", encoding="utf-8")
    (root / INCOMPLETE).unlink()
    return time.perf_counter() - started, False


def count_files(root: Path) -> tuple[int, int]:
    files = folders = 0
    for _, _, names in os.walk(root):
        folders += 1
        files += sum(1 for f in names if f.endswith(".rrd"))
    return files, folders


# ---------------------------------------------------------------------- requests


def typed(path: str) -> list[str]:
    """Every prefix of `path`, as the field holds it after each keystroke."""
    return [path[:i] for i in range(len(path) + 1)]


def workload(hosts: int, seed: int = 7) -> tuple[list[str], list[str]]:
    """(suggest texts, match globs): someone typing paths and globs into the field, every keystroke."""
    rnd = random.Random(seed)
    texts: list[str] = []
    for _ in range(8):
        h = host_ip(rnd.randrange(hosts))
        if rnd.random() < 0.5:
            texts += typed(f"hosts/{h}/{rnd.choice(HOST_NAMES)}.rrd")
        else:
            texts += typed(f"hosts/{h}/ndpi/{rnd.choice(NDPI)}.rrd")
    texts += typed(f"interfaces/{rnd.choice(INTERFACES)}/{rnd.choice(IF_NAMES)}.rrd")
    # Globs in the folder part merge every matching folder: the expensive kind of suggestion.
    for text in ("hosts/*/", "hosts/*/by", "hosts/*/ndpi/", "hosts/*/ndpi/Go", "hosts/192.168.1.*/t",
                 "hosts/**/", "hosts/**/Net", "interfaces/*/", "interfaces/eth[01]/dr", "HOSTS", "hosts/192.168.1.1"):
        texts.append(text)
    globs: list[str] = []
    for target in ("hosts/*/bytes.rrd", "hosts/*/ndpi/*.rrd", "hosts/192.168.1.*/ndpi/HTTP.rrd",
                   "interfaces/*/bytes*.rrd"):
        globs += [g for g in typed(target) if g]
    h = host_ip(rnd.randrange(hosts))
    globs += [f"hosts/{h}/bytes.rrd", f"hosts/{h}/*.rrd", f"hosts/{h}/ndpi/*.rrd", "hosts/**/*.rrd", "**/*.rrd",
              "hosts/**/bytes.rrd", "**", "hosts/*/*", "hosts/*/ndpi/[A-H]*.rrd", "hosts/192.168.?.1?/score.rrd"]
    return texts, globs


@dataclass
class Timings:
    samples_ms: list[float]

    def pct(self, q: float) -> float:
        s = sorted(self.samples_ms)
        return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]  # nearest-rank percentile

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        return self.pct(95)

    @property
    def max(self) -> float:
        return max(self.samples_ms)


def timed(fn: Callable[[str], object], args: Sequence[str]) -> Timings:
    out = []
    for a in args:
        started = time.perf_counter()
        fn(a)
        out.append((time.perf_counter() - started) * 1000)
    return Timings(out)


# ---------------------------------------------------------------------- floor


def floor_suggest(root: Path, text: str) -> list[str]:
    """The folders the text names (a glob in it expands with glob.glob), scandir'ed and filtered."""
    head, _, partial = text.rpartition("/")
    folders = glob.glob(os.path.join(root, head), recursive=True) if any(c in head for c in "*?[") \
        else [os.path.join(root, head)]
    found: set[str] = set()
    for folder in folders:
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.name.startswith(partial) and not entry.name.startswith("."):
                        found.add(entry.name + "/" if entry.is_dir() else entry.name)
        except OSError:
            continue
    return sorted(found)


def floor_matches(root: Path, pattern: str) -> int:
    return len(glob.glob(os.path.join(root, pattern), recursive=True))


def refresh_cost(root: Path) -> float:
    """Median seconds of a FileIndex refresh that finds nothing changed (what the server pays every interval)."""
    from rrdalarm.sources.rrd_index import FileIndex

    index = FileIndex(root)
    index.refresh()
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        index.refresh()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


# ---------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(work: Path, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    data = work / "data"
    (work / "token").write_text(TOKEN + "\n", encoding="utf-8")
    (work / "thresholds.toml").write_text("", encoding="utf-8")
    settings = work / "rrdalarm.toml"
    settings.write_text(
        f"rrd_root = {json.dumps(str(root))}\nthresholds = \"thresholds.toml\"\ndata_dir = {json.dumps(str(data))}\n"
        f"log_dir = {json.dumps(str(data / 'log'))}\n\n[service]\nlisten = \"127.0.0.1:{port}\"\n"
        'api_token = { file = "token" }\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RRDALARM_")}
    env["RRDALARM_SETTINGS"] = str(settings)
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "rrdalarm", "serve", "--no-scheduler", "--log-level", "warning"],
                            env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/healthz", timeout=1)
            return proc, url
        except requests.ConnectionError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"suggest_bench: the server did not start:\n{(work / 'serve.log').read_text()}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def refresh_rounds(root: Path, get: Callable[..., requests.Response], interval: float,
                   hosts: int) -> tuple[Timings, list[int]]:
    """Suggestions typed just when the index is due for a refresh, after a file appeared.

    Returns the timings and, per round, the 1-based request from which the new file was offered
    (0: never within the round).
    """
    rnd = random.Random(11)
    samples: list[float] = []
    lags: list[int] = []
    for _ in range(REFRESH_ROUNDS):
        folder = f"hosts/{host_ip(rnd.randrange(hosts))}/"
        new = root / folder / NEW_FILE
        shutil.copyfile(root / folder / "bytes.rrd", new)
        try:
            time.sleep(interval + 0.3)
            seen = 0
            texts = [folder + "zz"] * 10 + typed(folder + "ndpi/Go")[-20:]
            for i, text in enumerate(texts, 1):
                started = time.perf_counter()
                items = get("/api/suggest", q=text).json()["items"]
                samples.append((time.perf_counter() - started) * 1000)
                if not seen and any(item["value"].endswith(NEW_FILE) for item in items):
                    seen = i
            lags.append(seen)
        finally:
            new.unlink()
    return Timings(samples), lags


# ---------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=DEFAULT_FILES, help="files in the tree (default 100,000)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "rrdalarm-suggest-bench",
                        help="where the tree is built and kept for the next run (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the server's settings and data dir")
    args = parser.parse_args(argv)
    if hosts_for(args.files) < 1:
        parser.error(f"--files must be at least {INTERFACE_FILES + FILES_PER_HOST}")
    root = (args.dir / f"tree-{args.files}").resolve()
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        built_s, reused = ensure_tree(root, args.files)
    except OSError as exc:
        print(f"suggest_bench: cannot make the tree: {exc}", file=sys.stderr)
        return 2
    files, folders = count_files(root)
    print(f"tree        {root}: {files:,} files in {folders:,} folders "
          f"({'reused' if reused else f'built in {built_s:.1f} s'})")
    refresh_s = refresh_cost(root)
    from rrdalarm.editor.suggest import MAX_REFRESH_S, MIN_REFRESH_S, REFRESH_COST_FACTOR

    interval = max(MIN_REFRESH_S, min(REFRESH_COST_FACTOR * refresh_s, MAX_REFRESH_S))
    print(f"refresh     {refresh_s * 1000:.1f} ms per index refresh (nothing changed; median of 5) "
          f"-> the server refreshes at most every {interval:g} s, in a background thread")
    texts, globs = workload(hosts_for(args.files))

    work = Path(tempfile.mkdtemp(prefix="suggest_bench-"))
    proc, url = start_server(work, root)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"

    def get(path: str, **params: str) -> requests.Response:
        r = session.get(url + path, params=params, timeout=60)
        r.raise_for_status()
        return r

    try:
        started = time.perf_counter()
        get("/api/suggest", q="")
        first_ms = (time.perf_counter() - started) * 1000
        for text in texts[:50]:  # warm-up: connections, imports, caches of the interpreter
            get("/api/suggest", q=text)
        for pattern in globs[:10]:
            get("/api/matches", glob=pattern)
        bench_started = time.perf_counter()
        suggest = timed(lambda t: get("/api/suggest", q=t), texts)
        matches = timed(lambda g: get("/api/matches", glob=g), globs)
        bench_s = time.perf_counter() - bench_started
        # The same answers as the plain listing, or the numbers would compare different work.
        for pattern in ("hosts/*/bytes.rrd", "hosts/**/*.rrd"):
            counted = get("/api/matches", glob=pattern).json()["count"]
            assert counted == floor_matches(root, pattern), (pattern, counted, floor_matches(root, pattern))
        during, lags = refresh_rounds(root, get, interval, hosts_for(args.files))
    finally:
        stop_server(proc)
        if args.keep:
            print(f"work        {work} (settings, data dir, serve.log)")
        else:
            shutil.rmtree(work, ignore_errors=True)

    for _ in range(2):  # the second run, with a warm page cache, is the floor
        floor_s = timed(lambda t: floor_suggest(root, t), texts)
        floor_m = timed(lambda g: floor_matches(root, g), globs)

    print(f"server      rrdalarm serve (waitress, 8 threads), {os.cpu_count()} cores; first request "
          f"{first_ms:.0f} ms (builds the index: no cache yet); measured part took {bench_s:.1f} s")
    print()
    print(f"{'endpoint':<16}{'requests':>7}{'p50':>9}{'p95':>9}{'max':>9}   "
          f"{'floor p50':>10}{'floor p95':>10}{'p95 / floor p95':>17}")
    ok = True
    rows = (("/api/suggest", suggest, floor_s), ("/api/matches", matches, floor_m),
            ("suggest+refresh", during, None))
    for name, t, f in rows:
        line = f"{name:<16}{len(t.samples_ms):>7}{t.p50:>7.2f}ms{t.p95:>7.2f}ms{t.max:>7.2f}ms   "
        if f is not None:
            ratio = t.p95 / f.p95 if f.p95 > 0 else float("inf")
            line += f"{f.p50:>8.2f}ms{f.p95:>8.2f}ms{ratio:>16.2f}x"
        print(line)
        ok = ok and t.p95 < TARGET_P95_MS
    print(f"(suggest+refresh: {REFRESH_ROUNDS} rounds of {len(during.samples_ms) // REFRESH_ROUNDS} requests "
          f"sent once a refresh was due, after a file was added; the new file was offered from request "
          f"{', '.join(str(n) for n in lags)} of its round on)")
    print()
    for name, t in (("/api/suggest", suggest), ("/api/matches", matches), ("suggest+refresh", during)):
        good = t.p95 < TARGET_P95_MS
        print(f"{'PASS' if good else 'MISS'}  {name} p95 {t.p95:.2f} ms < {TARGET_P95_MS:g} ms at {files:,} files")
        if not good:
            print(f"TARGET MISSED: {name} p95 {t.p95:.2f} ms >= {TARGET_P95_MS:g} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
