"""The demo RRD tree: layout, the documented spikes, the quiet series, the gap and the demo config."""

from __future__ import annotations

import math
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import rrdtool

from rrdalarm.service.demo import (
    DEMO_THRESHOLDS_TOML,
    MARKER,
    DemoTree,
    eth2_gap,
    generate_demo,
    host_ips,
    write_demo_config,
)

# Not a multiple of 60 on purpose: the demo floors it.
RAW_NOW = 1_700_000_033
NOW = RAW_NOW - RAW_NOW % 60
DAYS = 0.2
POINTS = round(DAYS * 1440)
SPIKE_HOST = "hosts/192/168/1/10/bytes.rrd"


def fetch(root: Path, rel: str, start: int | str, end: int, cf: str = "AVERAGE") -> dict[str, dict[int, float | None]]:
    """Each DS's values by the end time of the minute they cover (rrdtool labels a row by its start)."""
    (first, _last, step), names, rows = rrdtool.fetch(str(root / rel), cf, "-s", str(start), "-e", str(end))
    out: dict[str, dict[int, float | None]] = {name: {} for name in names}
    for i, row in enumerate(rows):
        t = first + (i + 1) * step
        if t > end:
            continue
        for name, value in zip(names, row, strict=True):
            out[name][t] = value
    return out


def whole(root: Path, rel: str) -> dict[str, dict[int, float | None]]:
    return fetch(root, rel, NOW - POINTS * 60, NOW)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> DemoTree:
    return generate_demo(tmp_path_factory.mktemp("demo") / "rrd", RAW_NOW, days=DAYS)


def test_now_is_floored_and_every_file_is_listed(tree: DemoTree) -> None:
    assert tree.now == NOW
    on_disk = sorted(p.relative_to(tree.root) for p in tree.root.rglob("*.rrd"))
    assert tree.files == on_disk
    assert len(tree.files) == 4 * 3 + 4 * 12
    assert all(not p.is_absolute() for p in tree.files)
    # Only the tree, the marker and nothing left over from building it.
    assert sorted(p.name for p in tree.root.iterdir()) == sorted([MARKER, "hosts", "interfaces"])


def test_ntopng_layout(tree: DemoTree) -> None:
    files = {p.as_posix() for p in tree.files}
    for n in range(3):
        for name in ("bytes", "packets", "drops", "num_hosts"):
            assert f"interfaces/eth{n}/{name}.rrd" in files
    ips = host_ips(12)
    assert ips[0] == "192.168.1.10"
    assert len(set(ips)) == 12
    for ip in ips:
        folder = "hosts/" + ip.replace(".", "/")
        assert f"{folder}/bytes.rrd" in files
        for proto in ("HTTP", "TLS", "DNS"):
            assert f"{folder}/ndpi/{proto}.rrd" in files
    assert SPIKE_HOST in files
    assert "hosts/10/0/0/2/bytes.rrd" in files


@pytest.mark.parametrize(
    ("rel", "kind", "names"),
    [
        ("interfaces/eth0/bytes.rrd", "DERIVE", ["sent", "rcvd"]),
        ("interfaces/eth1/packets.rrd", "DERIVE", ["sent", "rcvd"]),
        ("interfaces/eth2/drops.rrd", "GAUGE", ["drops"]),
        ("interfaces/eth0/num_hosts.rrd", "GAUGE", ["num_hosts"]),
        (SPIKE_HOST, "DERIVE", ["sent", "rcvd"]),
        ("hosts/10/0/0/2/ndpi/TLS.rrd", "DERIVE", ["sent", "rcvd"]),
    ],
)
def test_file_definition(tree: DemoTree, rel: str, kind: str, names: list[str]) -> None:
    info = rrdtool.info(str(tree.root / rel))
    assert info["step"] == 60
    assert info["last_update"] == NOW
    assert sorted(k[3:-6] for k in info if k.startswith("ds[") and k.endswith("].type")) == sorted(names)
    for name in names:
        assert info[f"ds[{name}].type"] == kind
        assert info[f"ds[{name}].minimal_heartbeat"] == 120
        assert info[f"ds[{name}].min"] == 0.0
    rras = {(info[f"rra[{i}].cf"], info[f"rra[{i}].pdp_per_row"]): info[f"rra[{i}].rows"]
            for i in range(4)}
    assert set(rras) == {("AVERAGE", 1), ("MAX", 1), ("AVERAGE", 5), ("MAX", 5)}
    assert rras["AVERAGE", 1] >= POINTS + 60
    assert rras["AVERAGE", 5] >= 7 * 288


def test_eth0_rcvd_spike(tree: DemoTree) -> None:
    data = fetch(tree.root, "interfaces/eth0/bytes.rrd", NOW - 600, NOW)
    rcvd = data["rcvd"]
    assert sorted(rcvd) == [NOW - 540 + 60 * i for i in range(10)]
    for t, v in rcvd.items():
        assert v is not None
        if t > NOW - 300:
            assert 120e6 - 1 <= v <= 140e6 + 1, t
        else:
            assert v < 50e6, t
    assert all(v is not None and v < 50e6 for v in data["sent"].values())
    # MAX at one step is the same point, so a MAX threshold sees the same spike.
    peak = fetch(tree.root, "interfaces/eth0/bytes.rrd", NOW - 300, NOW, cf="MAX")["rcvd"]
    assert peak == {t: v for t, v in rcvd.items() if t > NOW - 300}


def test_host_sent_spike(tree: DemoTree) -> None:
    data = fetch(tree.root, SPIKE_HOST, NOW - 600, NOW)
    for t, v in data["sent"].items():
        assert v is not None
        if t > NOW - 180:
            assert 30e6 - 1 <= v <= 35e6 + 1, t
        else:
            assert v < 5e6, t
    assert all(v is not None and v < 5e6 for v in data["rcvd"].values())


def test_eth1_drops_spike(tree: DemoTree) -> None:
    drops = fetch(tree.root, "interfaces/eth1/drops.rrd", NOW - 1200, NOW)["drops"]
    assert len(drops) == 20
    for t, v in drops.items():
        assert v is not None
        if t > NOW - 600:
            assert 60 <= v <= 90, t
        else:
            assert v < 5, t


def _limit(rel: str, ds: str) -> tuple[float, float]:
    """The documented range of a quiet series (rates of DERIVE files, values of gauges)."""
    name = rel.rsplit("/", 1)[1]
    if name == "drops.rrd":
        return 0, 5
    if name == "num_hosts.rrd":
        return 1, math.inf
    if rel.startswith("interfaces/"):
        return 0, 100e3 if name == "packets.rrd" else 50e6
    return 0, 5e6


def test_everything_else_is_quiet_and_complete(tree: DemoTree) -> None:
    spikes = {
        ("interfaces/eth0/bytes.rrd", "rcvd"): 5,
        (SPIKE_HOST, "sent"): 3,
        ("interfaces/eth1/drops.rrd", "drops"): 10,
        # Packets follow bytes, so eth0's spike shows there too; no threshold watches it.
        ("interfaces/eth0/packets.rrd", "rcvd"): 5,
    }
    for path in tree.files:
        rel = path.as_posix()
        for ds, values in whole(tree.root, rel).items():
            assert len(values) == POINTS
            skip = spikes.get((rel, ds), 0)
            known = [v for t, v in sorted(values.items()) if v is not None and t <= NOW - 60 * skip]
            expected = POINTS - skip - (10 if rel.startswith("interfaces/eth2/") else 0)
            assert len(known) == expected, (rel, ds)
            low, high = _limit(rel, ds)
            assert all(low <= v < high for v in known), (rel, ds, min(known), max(known))


def test_eth2_gap_is_ten_unknown_minutes(tree: DemoTree) -> None:
    gap_end = eth2_gap(RAW_NOW, DAYS)
    assert gap_end % 60 == 0
    assert NOW - POINTS * 60 + 3600 < gap_end < NOW - 3600
    unknown = {gap_end - 60 * i for i in range(10)}
    for name in ("bytes", "packets", "drops", "num_hosts"):
        for ds, values in whole(tree.root, f"interfaces/eth2/{name}.rrd").items():
            assert {t for t, v in values.items() if v is None} == unknown, (name, ds)
    for n in (0, 1):
        values = whole(tree.root, f"interfaces/eth{n}/bytes.rrd")["sent"]
        assert None not in values.values()


def test_full_day_fetch_gives_minute_points(tmp_path: Path) -> None:
    started = time.perf_counter()
    tree = generate_demo(tmp_path / "rrd", RAW_NOW)
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"the default tree took {elapsed:.1f} s"
    assert len(tree.files) == 60
    (first, _last, step), _names, rows = rrdtool.fetch(
        str(tree.root / "interfaces/eth0/bytes.rrd"), "AVERAGE", "-s", str(NOW - 86400), "-e", str(NOW)
    )
    assert step == 60
    assert first == NOW - 86400
    points = rows[:1440]
    assert all(v is not None for row in points for v in row)
    assert rrdtool.info(str(tree.root / "interfaces/eth0/bytes.rrd"))["rra[0].rows"] == 1500
    assert points[-1][1] > 100e6


def test_second_call_replaces_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "rrd"
    first = generate_demo(root, RAW_NOW, days=0.05, hosts=4, seed=7)
    stale = root / "hosts" / "stale" / "old.rrd"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    before = {p.as_posix(): whole_short(root, p.as_posix()) for p in first.files}

    again = generate_demo(root, RAW_NOW, days=0.05, hosts=4, seed=7)
    assert again == first
    assert not stale.exists()
    assert {p.as_posix(): whole_short(root, p.as_posix()) for p in again.files} == before

    fewer = generate_demo(root, RAW_NOW, days=0.05, hosts=2, seed=7)
    assert len(fewer.files) == 4 * 3 + 4 * 2
    assert sorted(p.relative_to(root) for p in root.rglob("*.rrd")) == fewer.files
    assert sorted(p.name for p in root.iterdir()) == sorted([MARKER, "hosts", "interfaces"])


def whole_short(root: Path, rel: str) -> dict[str, dict[int, float | None]]:
    return fetch(root, rel, NOW - 3600, NOW)


def test_refuses_a_tree_it_did_not_write(tmp_path: Path) -> None:
    real = tmp_path / "interfaces" / "eth0" / "bytes.rrd"
    real.parent.mkdir(parents=True)
    real.write_bytes(b"ntopng data")
    with pytest.raises(FileExistsError, match="not a demo tree"):
        generate_demo(tmp_path, RAW_NOW, days=0.05)
    assert real.read_bytes() == b"ntopng data"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"days": 0.01}, "one hour"), ({"interfaces": 2}, "3 interfaces"), ({"hosts": 0}, "1 host")],
)
def test_rejects_a_tree_without_room_for_the_spikes(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        generate_demo(tmp_path, RAW_NOW, **kwargs)


# ---------------------------------------------------------------- demo thresholds


def thresholds() -> list[dict[str, Any]]:
    tables = tomllib.loads(DEMO_THRESHOLDS_TOML)["threshold"]
    assert isinstance(tables, list)
    return tables


def test_demo_thresholds_content() -> None:
    by_id = {t["id"]: t for t in thresholds()}
    assert sorted(by_id) == [1, 2, 3, 4, 5]
    one, two, three, four, five = (by_id[i] for i in range(1, 6))
    assert (one["glob"], one["type"], one["value"], one["repetitions"], one["start"], one["rearm"]) == (
        "interfaces/eth0/bytes.rrd", "above", 100e6, 3, "now-1h", 600)
    assert one["action"] == [{"type": "log", "file": "alarms.log"}]
    assert (two["glob"], two["ds"], two["value"], two["repetitions"], two["start"]) == (
        "hosts/**/bytes.rrd", ["sent"], 20e6, 2, "now-30min")
    assert two["action"][0]["type"] == "log"
    assert (three["glob"], three["type"], three["value"], three["repetitions"]) == (
        "interfaces/*/drops.rrd", "above", 50, 5)
    assert (four["glob"], four["type"], four["value"]) == ("interfaces/*/num_hosts.rrd", "below", 1)
    assert (five["glob"], five["type"], five["value"]) == ("hosts/**/ndpi/*.rrd", "above", 1e9)


def test_demo_thresholds_fire_on_exactly_the_spikes(tree: DemoTree) -> None:
    """A plain re-implementation of 'N consecutive crossings in the window' over the demo tree."""
    fired = set()
    for t in thresholds():
        start = str(t.get("start", "now-1h")).replace("now", "end", 1)
        cf = str(t.get("cf", "AVERAGE"))
        limit = float(t["value"])
        needed = max(1, int(t.get("repetitions", 0)))
        paths = sorted(tree.root.glob(str(t["glob"])))
        assert paths, t["glob"]
        for path in paths:
            rel = path.relative_to(tree.root).as_posix()
            data = fetch(tree.root, rel, start, NOW, cf)
            for ds in t.get("ds", list(data)):
                run = best = 0
                for _t, v in sorted(data[ds].items()):
                    crossed = v is not None and (v > limit if t["type"] == "above" else v < limit)
                    run = run + 1 if crossed else 0
                    best = max(best, run)
                if best >= needed:
                    fired.add((t["id"], rel, ds))
    assert fired == {
        (1, "interfaces/eth0/bytes.rrd", "rcvd"),
        (2, SPIKE_HOST, "sent"),
        (3, "interfaces/eth1/drops.rrd", "drops"),
    }


def test_demo_thresholds_load_with_the_real_parser() -> None:
    from rrdalarm.config.thresholds import parse_thresholds_toml

    parsed = parse_thresholds_toml(DEMO_THRESHOLDS_TOML, "thresholds.toml")
    assert [t.id for t in parsed] == [1, 2, 3, 4, 5]
    assert parsed[0].actions[0].params == {"file": "alarms.log"}
    assert parsed[1].ds == ("sent",)


# ---------------------------------------------------------------- demo config


def test_write_demo_config(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    settings = write_demo_config(folder, folder / "rrd", tmp_path / "state")
    assert settings == folder / "rrdalarm.toml"
    assert (folder / "thresholds.toml").read_text(encoding="utf-8") == DEMO_THRESHOLDS_TOML
    data = tomllib.loads(settings.read_text(encoding="utf-8"))
    assert data == {
        "rrd_root": "rrd",
        "thresholds": "thresholds.toml",
        "data_dir": str(tmp_path / "state"),
        "log_dir": str(tmp_path / "state" / "log"),
        "database_url": "",
        "workers": 0,
        "lock_wait": 30,
        "service": {
            "listen": "127.0.0.1:8080",
            "check_interval": 60,
            "api_token": {"file": str(tmp_path / "state" / "api_token")},
        },
    }
    assert sorted(p.name for p in folder.iterdir()) == ["rrdalarm.toml", "thresholds.toml"]
    token = (tmp_path / "state" / "api_token")
    assert len(token.read_text().strip()) >= 40 and token.stat().st_mode & 0o777 == 0o600

    # A second write replaces both files in place.
    write_demo_config(folder, tmp_path / "elsewhere", folder / "data")
    data = tomllib.loads(settings.read_text(encoding="utf-8"))
    assert (data["rrd_root"], data["data_dir"], data["log_dir"]) == (
        str(tmp_path / "elsewhere"), "data", "data/log")
    # The data dir holds the API token file the settings point at.
    assert sorted(p.name for p in folder.iterdir()) == ["data", "rrdalarm.toml", "thresholds.toml"]


def test_demo_config_loads_with_the_real_loader(tmp_path: Path) -> None:
    from rrdalarm.config.settings import load_settings
    from rrdalarm.config.thresholds import load_thresholds

    folder = tmp_path / "demo"
    settings = load_settings(write_demo_config(folder, folder / "rrd", tmp_path / "state"))
    assert settings.rrd_root == (folder / "rrd").resolve()
    assert settings.thresholds == (folder / "thresholds.toml").resolve()
    assert settings.data_dir == tmp_path / "state"
    assert settings.log_dir == tmp_path / "state" / "log"
    assert [t.id for t in load_thresholds(settings.thresholds)] == [1, 2, 3, 4, 5]
