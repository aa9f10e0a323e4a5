"""import-munin and import-collectd: other tools' own limits as thresholds, through the real command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import T0, Env, assert_one_clear_line, stderr_lines

from rrdalarm.config.thresholds import load_thresholds
from rrdalarm.model.definitions import Threshold

# A munin master's datafile: two groups, three hosts, ranges of every shape, a multigraph plugin.
DATAFILE = """\
version 2.0.69
example.com;web1.example.com:address 192.0.2.10
example.com;web1.example.com:cpu.graph_title CPU usage
example.com;web1.example.com:cpu.user.label user
example.com;web1.example.com:cpu.user.type GAUGE
example.com;web1.example.com:cpu.user.warning 80
example.com;web1.example.com:cpu.user.critical 95
example.com;web1.example.com:df.graph_title Disk usage in percent
example.com;web1.example.com:df._dev_sda1.label /
example.com;web1.example.com:df._dev_sda1.warning :92
example.com;web1.example.com:df._dev_sda1.critical 5:98
example.com;db1.example.com:diskstats_latency.sda.graph_title Average latency for /dev/sda
example.com;db1.example.com:diskstats_latency.sda.avgwait.label IO Wait time
example.com;db1.example.com:diskstats_latency.sda.avgwait.warning 0:0.5
lab;pi:load.graph_title Load average
lab;pi:load.load.label load
lab;pi:load.load.critical 4
"""

# collectd's threshold plugin configuration, as in collectd-threshold(5).
THRESHOLD_CONF = """\
LoadPlugin "threshold"
<Plugin "threshold">
  <Type "load">          # every host
    DataSource "midterm"
    FailureMax 4
    Hits 3
    Hysteresis 0.5
  </Type>
  <Host "web1.example.com">
    <Plugin "interface">
      Instance "eth0"
      <Type "if_octets">
        DataSource "rx"
        WarningMax 1000000
        FailureMax 10000000
        Persist true
      </Type>
    </Plugin>
    <Plugin "df">
      <Type "percent_bytes">
        Instance "free"
        WarningMin 10
        FailureMin 5
        Hysteresis 1
      </Type>
      <Type "df_complex">
        Percentage true
        WarningMin 5
      </Type>
    </Plugin>
  </Host>
</Plugin>
"""


def summary(t: Threshold) -> tuple[Any, ...]:
    return (t.id, t.glob, t.ds, t.type.value, t.value, str(t.tuning.severity))


def imported(env: Env, command: str, text: str, *args: str) -> tuple[list[Threshold], Path]:
    source = env.base / ("datafile" if command == "import-munin" else "threshold.conf")
    source.write_text(text, encoding="utf-8")
    target = env.base / "imported.toml"
    proc = env.run(command, str(source), str(target), *args)
    assert proc.returncode == 0, proc.stderr
    return load_thresholds(target), target


def fired(env: Env, target: Path) -> list[tuple[int, str, str, str]]:
    """(threshold, file, ds, its severity) of every series a check at T0 over `target` fires."""
    env.settings_path.write_text(env.settings_path.read_text().replace('"thresholds.toml"', f'"{target}"'))
    severity = {t.id: str(t.tuning.severity) for t in load_thresholds(target)}
    proc = env.run("check", "--json", "--at", str(T0))
    assert proc.returncode in (0, 1), proc.stderr
    rows = json.loads(proc.stdout)["results"]
    assert not [r for r in rows if r["status"] in ("ERROR", "NO DATA")], rows
    return sorted((r["threshold"], r["file"], r["ds"], severity[r["threshold"]]) for r in rows
                  if r["status"] == "ALARM FIRED")


# ---------------------------------------------------------------- munin


def test_munin_levels_become_thresholds_with_their_severities(env: Env) -> None:
    proc_target = env.base / "imported.toml"
    thresholds, target = imported(env, "import-munin", DATAFILE)
    assert target == proc_target
    assert [summary(t) for t in thresholds] == [
        # sorted by group, host, plugin, field; critical before warning; below before above
        (1, "example.com/db1.example.com-diskstats_latency-sda-avgwait-*.rrd", ("42",), "below", 0.0, "warning"),
        (2, "example.com/db1.example.com-diskstats_latency-sda-avgwait-*.rrd", ("42",), "above", 0.5, "warning"),
        (3, "example.com/web1.example.com-cpu-user-g.rrd", ("42",), "above", 95.0, "critical"),
        (4, "example.com/web1.example.com-cpu-user-g.rrd", ("42",), "above", 80.0, "warning"),
        (5, "example.com/web1.example.com-df-_dev_sda1-*.rrd", ("42",), "below", 5.0, "critical"),
        (6, "example.com/web1.example.com-df-_dev_sda1-*.rrd", ("42",), "above", 98.0, "critical"),
        (7, "example.com/web1.example.com-df-_dev_sda1-*.rrd", ("42",), "above", 92.0, "warning"),
        (8, "lab/pi-load-load-*.rrd", ("42",), "above", 4.0, "critical"),
    ]
    cpu = thresholds[2]
    assert cpu.name == "web1.example.com cpu.user critical: above 95"
    assert cpu.tuning.description == "CPU usage: user"
    assert dict(cpu.tuning.labels) == {"group": "example.com", "host": "web1.example.com", "plugin": "cpu",
                                       "field": "user"}
    assert (cpu.repetitions, cpu.rearm) == (0, 0)  # munin-limits judges the newest value, on every run


def test_munin_check_over_munin_files_fires_the_levels_crossed(env: Env) -> None:
    _, target = imported(env, "import-munin", DATAFILE)
    env.rrd("example.com/web1.example.com-cpu-user-g.rrd", {"42": [10, 85]})  # warning, not critical
    env.rrd("example.com/web1.example.com-df-_dev_sda1-g.rrd", {"42": [50, 99]})  # above both
    env.rrd("example.com/db1.example.com-diskstats_latency-sda-avgwait-g.rrd", {"42": [0.2, 0.3]})  # inside
    env.rrd("lab/pi-load-load-g.rrd", {"42": [1, 3.5]})  # below 4
    cpu, df = "example.com/web1.example.com-cpu-user-g.rrd", "example.com/web1.example.com-df-_dev_sda1-g.rrd"
    assert fired(env, target) == [(4, cpu, "42", "warning"), (6, df, "42", "critical"), (7, df, "42", "warning")]


def test_munin_start_id_and_force(env: Env) -> None:
    thresholds, target = imported(env, "import-munin", DATAFILE, "--start-id", "100")
    assert [t.id for t in thresholds] == list(range(100, 108))
    source = env.base / "datafile"
    proc = env.run("import-munin", str(source), str(target))
    assert_one_clear_line(proc, str(target), "--force")
    assert env.run("import-munin", "--force", str(source), str(target)).returncode == 0
    assert [t.id for t in load_thresholds(target)] == list(range(1, 9))


@pytest.mark.parametrize(("line", "fragments"), [
    ("example.com;web1.example.com:cpu.user.warning eighty", ("field 'warning'", "'eighty'")),
    ("example.com;web1.example.com:cpu.user.critical 90:10", ("field 'critical'", "min 90 is above max 10")),
    ("example.com;web1.example.com:cpu.user.warning :", ("field 'warning'",)),
    ("web1.example.com:cpu.user.warning 80", ("group;host:plugin.field.attribute",)),
])
def test_munin_bad_line_names_file_and_line(env: Env, line: str, fragments: tuple[str, ...]) -> None:
    source = env.base / "datafile"
    source.write_text(DATAFILE + line + "\n", encoding="utf-8")
    target = env.base / "out.toml"
    bad_line = DATAFILE.count("\n") + 1
    assert_one_clear_line(env.run("import-munin", str(source), str(target)), f"{source}:{bad_line}:", *fragments)
    assert not target.exists()


def test_munin_datafile_without_levels_is_refused(env: Env) -> None:
    source = env.base / "datafile"
    source.write_text("version 2.0.69\nlab;pi:load.load.label load\n", encoding="utf-8")
    assert_one_clear_line(env.run("import-munin", str(source), str(env.base / "out.toml")), str(source), "no limits")


# ---------------------------------------------------------------- collectd


def test_collectd_thresholds_carry_severity_hysteresis_hits_and_persist(env: Env) -> None:
    source = env.base / "threshold.conf"
    source.write_text(THRESHOLD_CONF, encoding="utf-8")
    target = env.base / "imported.toml"
    proc = env.run("import-collectd", str(source), str(target))
    assert proc.returncode == 0, proc.stderr
    assert "wrote 5 thresholds (1 warning)" in proc.stdout
    assert stderr_lines(proc) == [f'warning: {source}:27: Percentage true is not supported; '
                                  '<Type "df_complex"> skipped']
    thresholds = load_thresholds(target)
    assert [summary(t) for t in thresholds] == [
        (1, "*/*/load[-.]*rrd", ("midterm",), "above", 4.0, "critical"),
        (2, "web1.example.com/interface-eth0/if_octets[-.]*rrd", ("rx",), "above", 10_000_000.0, "critical"),
        (3, "web1.example.com/interface-eth0/if_octets[-.]*rrd", ("rx",), "above", 1_000_000.0, "warning"),
        (4, "web1.example.com/df*/percent_bytes-free.rrd", (), "below", 5.0, "critical"),
        (5, "web1.example.com/df*/percent_bytes-free.rrd", (), "below", 10.0, "warning"),
    ]
    load, rx_critical, _, free_critical, free_warning = thresholds
    assert (load.repetitions, load.tuning.clear_value, load.rearm) == (3, 3.5, 86400)
    assert (rx_critical.repetitions, rx_critical.tuning.clear_value, rx_critical.rearm) == (0, None, 0)
    assert (free_critical.tuning.clear_value, free_warning.tuning.clear_value) == (6.0, 11.0)
    assert dict(free_warning.tuning.labels) == {"host": "web1.example.com", "plugin": "df",
                                                "type": "percent_bytes", "type_instance": "free"}


def test_collectd_check_over_collectd_files_fires_the_limits_crossed(env: Env) -> None:
    _, target = imported(env, "import-collectd", THRESHOLD_CONF)
    web, db = "web1.example.com", "db1.example.com"
    # load: midterm above 4 three points running on web1, only twice on db1; shortterm is not watched
    env.rrd(f"{web}/load/load.rrd", {"shortterm": [9, 9, 9, 9], "midterm": [1, 5, 6, 7], "longterm": [1] * 4})
    env.rrd(f"{db}/load/load.rrd", {"shortterm": [9] * 4, "midterm": [1, 1, 5, 6], "longterm": [1] * 4})
    env.rrd(f"{web}/interface-eth0/if_octets.rrd", {"rx": [0, 2_000_000], "tx": [0, 50_000_000]})
    env.rrd(f"{web}/interface-eth1/if_octets.rrd", {"rx": [0, 50_000_000], "tx": [0, 0]})  # not eth0
    env.rrd(f"{web}/df-root/percent_bytes-free.rrd", {"value": [50, 7]})  # warning, not critical
    env.rrd(f"{web}/df-root/percent_bytes-used.rrd", {"value": [50, 93]})  # another type instance
    assert fired(env, target) == [
        (1, f"{web}/load/load.rrd", "midterm", "critical"),
        (3, f"{web}/interface-eth0/if_octets.rrd", "rx", "warning"),
        (5, f"{web}/df-root/percent_bytes-free.rrd", "value", "warning"),
    ]


def test_collectd_invert_is_skipped_with_a_warning_naming_the_line(env: Env) -> None:
    conf = ('<Type "cpu">\n  Instance "idle"\n  Invert true\n  WarningMin 10\n</Type>\n'
            '<Type "memory">\n  FailureMax 9\n</Type>\n')
    source = env.base / "threshold.conf"
    source.write_text(conf, encoding="utf-8")
    target = env.base / "out.toml"
    proc = env.run("import-collectd", str(source), str(target), "--start-id", "40")
    assert proc.returncode == 0, proc.stderr
    assert stderr_lines(proc) == [f'warning: {source}:3: Invert true is not supported; <Type "cpu"> skipped']
    assert [summary(t) for t in load_thresholds(target)] == [
        (40, "*/*/memory[-.]*rrd", (), "above", 9.0, "critical"),
    ]


@pytest.mark.parametrize(("conf", "line", "fragments"), [
    ('<Plugin "threshold">\n  <Type "load">\n    FailureMax 4\n  </Type>\n', 1, ("never closed",)),
    ('<Type "load">\n  FailureMax four\n</Type>\n', 2, ("field 'FailureMax'", "'four'")),
    ('<Type "load">\n  FailureMax 4\n  Hits -1\n</Type>\n', 3, ("repetitions",)),
    ('<Type "load">\n  FailureMax 4\n  Persist maybe\n</Type>\n', 3, ("field 'Persist'",)),
    ('<Type "load">\n  FailureMax 4\n</Plugin>\n', 3, ("</Plugin> closes <Type> opened at line 1",)),
    ('<Type "load">\n  WarningMax 4\n  Hysteresis -1\n</Type>\n', 3, ("field 'Hysteresis'",)),
])
def test_collectd_bad_input_names_file_and_line(env: Env, conf: str, line: int, fragments: tuple[str, ...]) -> None:
    source = env.base / "threshold.conf"
    source.write_text(conf, encoding="utf-8")
    target = env.base / "out.toml"
    assert_one_clear_line(env.run("import-collectd", str(source), str(target)), f"{source}:{line}:", *fragments)
    assert not target.exists()


def test_collectd_whole_collectd_conf_reads_only_the_threshold_plugin(env: Env) -> None:
    conf = ('LoadPlugin rrdtool\n<Plugin rrdtool>\n  DataDir "/var/lib/collectd/rrd"\n</Plugin>\n'
            '<Plugin "threshold">\n  <Host "pi">\n    <Type "memory">\n      Instance "free"\n'
            '      WarningMin 100000000\n    </Type>\n    <Plugin "swap">\n      <Type "load">\n'
            '      </Type>\n    </Plugin>\n  </Host>\n</Plugin>\n')
    source = env.base / "collectd.conf"
    source.write_text(conf, encoding="utf-8")
    target = env.base / "out.toml"
    proc = env.run("import-collectd", str(source), str(target))
    assert proc.returncode == 0, proc.stderr
    assert stderr_lines(proc) == [f'warning: {source}:12: <Type "load"> sets no WarningMin/Max or '
                                  'FailureMin/Max; skipped']
    [t] = load_thresholds(target)
    assert summary(t) == (1, "pi/*/memory-free.rrd", (), "below", 100_000_000.0, "warning")
    assert target.read_text(encoding="utf-8").startswith(f"# Converted from {source} by rrdalarm import-collectd")
