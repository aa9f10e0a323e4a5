"""The configuration side of the real `rrdalarm` command: validate, import-legacy, init, check --config."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import T0, Env, assert_one_clear_line, make_rrd, stderr_lines
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rrdalarm.config.legacy import parse_legacy
from rrdalarm.config.settings import load_settings
from rrdalarm.config.thresholds import load_thresholds

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "rrdAlarmConfig.txt"

GOOD = """\
# two thresholds, one disabled
[[threshold]]
id = 1
name = "eth0 bytes"
glob = "interfaces/eth0/*Bytes.rrd"
type = "above"
value = 100

[[threshold.action]]
type = "log"
file = "alarms.log"

[[threshold]]
id = 2
glob = "hosts/**/bytes.rrd"
type = "below"
value = 1
enabled = false
"""

LEGACY_ROW = "7\tinterfaces/eth0/*Bytes.rrd\tabove\t100\t0\tnow-1h\tnow\tsavelog\tAslog.txt\t0"


# ---------------------------------------------------------------- validate


def test_validate_good_file_prints_counts(env: Env) -> None:
    path = env.write_thresholds(GOOD)
    env.rrd("interfaces/eth0/ifInBytes.rrd", {"bytes": [1.0, 2.0]})
    env.rrd("interfaces/eth0/ifOutBytes.rrd", {"bytes": [1.0, 2.0]})
    proc = env.run("validate")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stdout.strip()
    assert str(path) in out
    assert "2 thresholds" in out
    assert "1 enabled" in out
    assert "OK" in out
    assert "1: 2" in out  # files matched by threshold 1


def test_validate_says_how_many_non_rrd_files_it_skipped(env: Env) -> None:
    env.write_thresholds(GOOD.replace("hosts/**/bytes.rrd", "**"))
    env.rrd("interfaces/eth0/ifInBytes.rrd", {"bytes": [1.0, 2.0]})
    env.rrd("munin/host-load-load-g.rrd", {"42": [1.0, 2.0]})
    for rel in ("munin/datafile", "munin/x.storable", "munin/munin-update.stats", "interfaces/eth0/README"):
        (env.root / rel).write_text("not an RRD\n")
    proc = env.run("validate")
    assert proc.returncode == 0, proc.stderr
    assert "files matched: 1: 1, 2: 2 (4 not *.rrd, skipped)" in proc.stdout


def test_validate_with_explicit_config(env: Env) -> None:
    other = env.base / "elsewhere" / "rules.toml"
    other.parent.mkdir()
    other.write_text(GOOD, encoding="utf-8")
    proc = env.run("validate", "--config", str(other))
    assert proc.returncode == 0, proc.stderr
    assert str(other) in proc.stdout
    assert "2 thresholds" in proc.stdout


def test_validate_warns_about_globs_matching_nothing(env: Env) -> None:
    env.write_thresholds(GOOD)
    proc = env.run("validate")
    assert proc.returncode == 0, proc.stderr
    assert "matches no file" in proc.stderr


@pytest.mark.parametrize(
    ("line", "replacement", "field"),
    [
        (4, "name = 5", "name"),
        (5, 'glob = "../../etc/*.rrd"', "glob"),
        (6, 'type = "sideways"', "type"),
        (7, "value = nan", "value"),
        (7, "value = true", "value"),
        (16, "value = -", None),  # not TOML: the parser's line
    ],
)
def test_validate_bad_file_exits_2_with_one_line(env: Env, line: int, replacement: str, field: str | None) -> None:
    lines = GOOD.splitlines()
    lines[line - 1] = replacement
    path = env.write_thresholds("\n".join(lines) + "\n")
    proc = env.run("validate")
    msg = assert_one_clear_line(proc, f"{path}:{line}:")
    if field is not None:
        assert field in msg


def test_validate_unknown_field_and_duplicate_id(env: Env) -> None:
    path = env.write_thresholds(GOOD.replace("enabled = false", "colour = 'red'"))
    assert_one_clear_line(env.run("validate"), f"{path}:18:", "colour")
    path = env.write_thresholds(GOOD.replace("id = 2", "id = 1"))
    assert_one_clear_line(env.run("validate"), f"{path}:14:", f"{path}:3", "id")


def test_validate_refuses_a_glob_the_matcher_cannot_compile(env: Env) -> None:
    # A reversed range used to pass validation, then crash every check (exit 70).
    env.rrd("interfaces/eth0/inBytes.rrd", {"bytes": [1.0, 2.0]})
    path = env.write_thresholds(GOOD.replace("interfaces/eth0/*Bytes.rrd", "interfaces/eth[z-a]/*Bytes.rrd"))
    msg = assert_one_clear_line(env.run("validate"), f"{path}:5:", "glob", "z-a")
    assert "range" in msg
    assert_one_clear_line(env.run("validate", "--rrd-root", str(env.root)), f"{path}:5:", "z-a")


def test_validate_bad_action_parameter_exits_2(env: Env) -> None:
    path = env.write_thresholds(GOOD.replace('file = "alarms.log"', 'file = "alarms.log"\ncolour = "red"'))
    msg = assert_one_clear_line(env.run("validate"), str(path), "colour")
    assert "action" in msg


def test_validate_warns_about_actions_that_are_not_installed(env: Env) -> None:
    legacy = env.base / "rrdAlarmConfig.txt"
    # The original's scripts folder could hold any action; "sendsms" has no plugin here.
    text = SAMPLE.read_text(encoding="utf-8").replace("sendmail", "sendsms")
    legacy.write_text(text, encoding="utf-8")
    proc = env.run("validate", "--config", str(legacy))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "2 thresholds" in proc.stdout
    warnings = [ln for ln in stderr_lines(proc) if "not installed" in ln]
    assert len(warnings) == 1, proc.stderr
    assert "'sendsms'" in warnings[0]
    assert "threshold 2" in warnings[0]
    assert str(legacy) in warnings[0]


def test_validate_missing_file(env: Env) -> None:
    missing = env.base / "nope.toml"
    assert_one_clear_line(env.run("validate", "--config", str(missing)), str(missing), "not found")


def test_validate_bad_settings_file(env: Env) -> None:
    env.settings_path.write_text("rrd_root = 'rrd'\nworkers = -2\n", encoding="utf-8")
    assert_one_clear_line(env.run("validate"), f"{env.settings_path}:2:", "workers")


# ---------------------------------------------------------------- import-legacy


def test_import_legacy_writes_a_file_validate_accepts(env: Env) -> None:
    source = env.base / "rrdAlarmConfig.txt"
    source.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    target = env.base / "converted" / "thresholds.toml"
    proc = env.run("import-legacy", str(source), str(target))
    assert proc.returncode == 0, proc.stderr
    assert "2 thresholds" in proc.stdout
    assert target.is_file()
    assert load_thresholds(target) == parse_legacy(source.read_text(encoding="utf-8"), str(source))
    assert sorted(p.name for p in target.parent.iterdir()) == ["thresholds.toml"]

    check = env.run("validate", "--config", str(target))
    assert check.returncode == 0, check.stderr
    assert "2 thresholds (2 enabled) OK" in check.stdout


def test_import_legacy_refuses_to_overwrite_without_force(env: Env) -> None:
    source = env.base / "legacy.txt"
    source.write_text(LEGACY_ROW + "\n", encoding="utf-8")
    target = env.base / "out.toml"
    target.write_text("# precious\n", encoding="utf-8")

    proc = env.run("import-legacy", str(source), str(target))
    assert_one_clear_line(proc, str(target), "--force")
    assert target.read_text(encoding="utf-8") == "# precious\n"

    proc = env.run("import-legacy", "--force", str(source), str(target))
    assert proc.returncode == 0, proc.stderr
    [t] = load_thresholds(target)
    assert t.id == 7


def test_import_legacy_refuses_a_toml_source(env: Env) -> None:
    source = env.write_thresholds(GOOD)
    target = env.base / "out.toml"
    assert_one_clear_line(env.run("import-legacy", str(source), str(target)), str(source))
    assert not target.exists()


def test_import_legacy_bad_row_names_the_line(env: Env) -> None:
    source = env.base / "legacy.txt"
    source.write_text(
        f"# c\n{LEGACY_ROW}\n{LEGACY_ROW.replace('7', '8', 1).replace('100', 'lots')}\n", encoding="utf-8"
    )
    target = env.base / "out.toml"
    assert_one_clear_line(env.run("import-legacy", str(source), str(target)), f"{source}:3:", "value")
    assert not target.exists()


# ---------------------------------------------------------------- init


def test_init_writes_settings_that_load(env: Env) -> None:
    root = env.base / "rrd tree with 'quotes'"
    root.mkdir()
    target = env.base / "site" / "rrdalarm.toml"
    proc = env.run("init", str(target), "--rrd-root", str(root))
    assert proc.returncode == 0, proc.stderr
    assert target.is_file()
    settings = load_settings(target)
    assert settings.rrd_root == root.resolve()
    assert settings.thresholds == target.parent.resolve() / "thresholds.toml"
    assert settings.data_dir == target.parent.resolve() / "data"
    assert settings.workers == 0
    assert settings.thresholds is not None
    assert settings.thresholds.is_file()
    assert load_thresholds(settings.thresholds) == []

    # the new installation validates as it is
    proc = env.run("--settings", str(target), "validate")
    assert proc.returncode == 0, proc.stderr
    assert "0 thresholds" in proc.stdout


def test_init_with_data_dir(env: Env) -> None:
    target = env.base / "site.toml"
    proc = env.run("init", str(target), "--rrd-root", str(env.root), "--data-dir", str(env.base / "state"))
    assert proc.returncode == 0, proc.stderr
    settings = load_settings(target)
    assert settings.data_dir == (env.base / "state").resolve()


def test_init_refuses_to_overwrite(env: Env) -> None:
    target = env.base / "site.toml"
    target.write_text("# mine\n", encoding="utf-8")
    proc = env.run("init", str(target), "--rrd-root", str(env.root))
    assert_one_clear_line(proc, str(target), "--force")
    assert target.read_text(encoding="utf-8") == "# mine\n"

    proc = env.run("init", str(target), "--rrd-root", str(env.root), "--force")
    assert proc.returncode == 0, proc.stderr
    assert load_settings(target).rrd_root == env.root.resolve()


def test_init_keeps_an_existing_thresholds_file(env: Env) -> None:
    env.write_thresholds(GOOD)
    target = env.base / "second.toml"
    proc = env.run("init", str(target), "--rrd-root", str(env.root))
    assert proc.returncode == 0, proc.stderr
    assert env.thresholds_path.read_text(encoding="utf-8") == GOOD


# ---------------------------------------------------------------- check --config


@pytest.mark.parametrize("name", ["rrdAlarmConfig.txt", "rules.toml", "alarms"])
def test_check_reads_a_legacy_file_whatever_its_name(env: Env, name: str) -> None:
    env.rrd("interfaces/eth0/ifInBytes.rrd", {"bytes": [50.0, 150.0, 250.0]})
    legacy = env.base / name
    legacy.write_text(f"# RRDAlarm configuration\n{LEGACY_ROW}\n", encoding="utf-8")
    proc = env.run("check", "--config", str(legacy), "--json", "--at", str(T0))
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    report = json.loads(proc.stdout)
    assert report["alarms_fired"] == 1
    assert report["files_checked"] == 1
    [result] = report["results"]
    assert result["threshold"] == 7
    assert result["file"] == "interfaces/eth0/ifInBytes.rrd"
    assert result["status"] == "ALARM FIRED"
    assert result["value"] == 250.0
    assert result["type"] == "above"
    assert result["limit"] == 100.0
    # the legacy savelog action became the log action, writing into the log dir
    log = env.data / "log" / "Aslog.txt"
    assert log.is_file()
    assert "threshold=7" in log.read_text(encoding="utf-8")


def test_check_legacy_file_with_nothing_crossing(env: Env) -> None:
    env.rrd("interfaces/eth0/ifInBytes.rrd", {"bytes": [50.0, 60.0, 70.0]})
    legacy = env.base / "rrdAlarmConfig.txt"
    legacy.write_text(LEGACY_ROW + "\n", encoding="utf-8")
    proc = env.run("check", "--config", str(legacy), "--json", "--at", str(T0))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    [result] = json.loads(proc.stdout)["results"]
    assert result["threshold"] == 7
    assert result["status"] == "OK"


def test_check_missing_config_file(env: Env) -> None:
    missing = env.base / "missing.toml"
    assert_one_clear_line(env.run("check", "--config", str(missing)), str(missing), "not found")


def test_check_missing_thresholds_file_from_settings(env: Env) -> None:
    env.thresholds_path.unlink()
    assert_one_clear_line(env.run("check"), str(env.thresholds_path), "not found")


def test_check_bad_config_file(env: Env) -> None:
    path = env.write_thresholds(GOOD.replace("value = 100", "value = 'high'"))
    assert_one_clear_line(env.run("check", "--json"), f"{path}:7:", "value")


def test_check_missing_rrd_root(env: Env) -> None:
    env.write_thresholds(GOOD)
    missing = env.base / "no-such-root"
    assert_one_clear_line(env.run("check", "--rrd-root", str(missing)), str(missing), "rrd_root")


def test_check_rrd_root_that_is_a_file(env: Env) -> None:
    env.write_thresholds(GOOD)
    afile = env.base / "afile"
    afile.write_text("x", encoding="utf-8")
    # on the command line click refuses it (its usual usage message, exit 2)
    proc = env.run("check", "--rrd-root", str(afile))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(afile) in proc.stderr
    # from the settings file: one line naming the setting
    env.settings_path.write_text(
        f"rrd_root = 'afile'\nthresholds = 'thresholds.toml'\ndata_dir = '{env.data}'\n", encoding="utf-8"
    )
    assert_one_clear_line(env.run("check"), str(afile), "rrd_root")


def test_check_missing_rrd_root_from_settings(env: Env) -> None:
    env.write_thresholds(GOOD)
    env.settings_path.write_text(
        f"rrd_root = 'gone'\nthresholds = 'thresholds.toml'\ndata_dir = '{env.data}'\n", encoding="utf-8"
    )
    assert_one_clear_line(env.run("check"), str(env.base / "gone"), str(env.settings_path), "rrd_root")


@pytest.mark.parametrize("url", ["notaurl", "nosuchdialect://somewhere/db", "sqlite+nosuchdriver:///x.db"])
def test_check_bad_db_url(env: Env, url: str) -> None:
    env.write_thresholds(GOOD)
    line = assert_one_clear_line(env.run("check", "--db", url), "database")
    assert "rrdalarm" in line


def test_check_sqlite_url_under_a_file(env: Env) -> None:
    env.write_thresholds(GOOD)
    blocker = env.base / "blocker"
    blocker.write_text("x", encoding="utf-8")
    assert_one_clear_line(env.run("check", "--db", f"sqlite:///{blocker}/state/x.db"), "database")


@pytest.mark.parametrize("at", ["notanumber", "now-1h", "1.5"])
def test_check_at_must_be_an_epoch(env: Env, at: str) -> None:
    env.write_thresholds(GOOD)
    proc = env.run("check", "--at", at)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "--at" in proc.stderr
    assert proc.stdout == ""


# ---------------------------------------------------------------- what validate accepts, check handles

FUZZ_SETTINGS = {
    "rrd_root": '"rrd"', "thresholds": '"thresholds.toml"', "data_dir": '"data"', "log_dir": '"log"',
    "database_url": '""', "workers": "1", "lock_wait": "1",
}
FUZZ_THRESHOLD = {
    "id": "1", "name": '"t"', "glob": '"interfaces/*/*.rrd"', "ds": '["rx"]', "cf": '"AVERAGE"', "type": '"above"',
    "value": "5", "repetitions": "0", "start": '"now-1h"', "end": '"now"', "rearm": "0", "enabled": "true",
}
LONG = f'"{"r" * 3000}"'
# Per key, what a careless edit or a fuzzer puts there; any key may also get one of GENERIC. Only text:
# a data dir that is a file or a database that is down are the host's state, found when the check opens them.
NASTY = {
    "rrd_root": [LONG, '"rrd\\u0000x"', '"nosuchdir"', '"rrd/interfaces/eth0/bytes.rrd"'],
    "data_dir": [LONG, '"da\\u0000ta"'],
    "log_dir": [LONG, '"lo\\u0000g"'],
    "thresholds": [LONG, '"t\\u0000.toml"', '"rrd"'],
    "database_url": ['"sqlite:////x\\u0000y"'],
    "workers": ["0", "64", str(2**63)],
    "lock_wait": ["0", "1e308", "inf"],
    "id": [str(2**31), str(2**63), str(2**64), "0"],
    "name": ['"a\\u0000b"', '"a\\u2028b"', '"a\\u0085b"', LONG],
    "glob": ['"../x"', '"**"', '"a/**b"', '"interfaces/eth0/bytes.rrd"', LONG, '"x\\u0000"'],
    "ds": ['["rx", "rx"]', '["rx", "tx", "rx"]', '["nope"]', "[]", '[""]', f"[{LONG}]"],
    "cf": ['"MAX"', '"LAST"', '"max"', '"SUM"'],
    "value": ["1e308", "-1e308", "nan", str(2**64)],
    "repetitions": [str(2**63), str(2**64), "1000000"],
    "rearm": [str(2**63), str(2**64)],
    "start": ['"now-10y"', '"now-1000000000000s"', '"0"', '"end-1h"', '"-1"', '"99999999999999"'],
    "end": ['"now+1h"', '"start+1h"', '"1700000000"', '"99999999999999"', '"now-10y"'],
}
GENERIC = ["0", "-1", "1.5", "true", '""', "[]", "{}", '"x"']
KEYS = sorted(FUZZ_SETTINGS) + sorted(FUZZ_THRESHOLD)
mutation = st.sampled_from(KEYS).flatmap(lambda k: st.tuples(st.just(k), st.sampled_from(NASTY.get(k, []) + GENERIC)))


def _fuzz_text(table: dict[str, str], header: str = "") -> str:
    return header + "".join(f"{k} = {v}\n" for k, v in table.items())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mutation, min_size=1, max_size=3), st.booleans())
@example([("ds", '["rx", "rx"]')], True)
@example([("id", str(2**63))], False)
@example([("rrd_root", LONG)], False)
@example([("data_dir", '"da\\u0000ta"')], False)
@example([("rrd_root", '""')], False)
@example([("database_url", '"x"')], False)
def test_what_validate_accepts_check_handles(env: Env, mutations: list[tuple[str, str]], twice: bool) -> None:
    """Whatever `validate` accepts, `check` runs: never an internal error, never a failed recording."""
    from click.testing import CliRunner

    from rrdalarm.cli.main import cli

    base = Path(tempfile.mkdtemp(dir=env.base))
    make_rrd(base / "rrd" / "interfaces" / "eth0" / "bytes.rrd", {"rx": [1.0, 9.0], "tx": [1.0, 2.0]})
    setting, threshold = dict(FUZZ_SETTINGS), dict(FUZZ_THRESHOLD)
    for key, value in mutations:
        (setting if key in setting else threshold)[key] = value
    (base / "rrdalarm.toml").write_text(_fuzz_text(setting), encoding="utf-8")
    second = _fuzz_text(dict(threshold, id="2"), "[[threshold]]\n") if twice else ""
    (base / "thresholds.toml").write_text(_fuzz_text(threshold, "[[threshold]]\n") + second, encoding="utf-8")
    runner = CliRunner()
    environ = {"RRDALARM_SETTINGS": str(base / "rrdalarm.toml"), "RRDALARM_DEBUG": ""}
    validated = runner.invoke(cli, ["validate"], env=environ)
    assert validated.exit_code in (0, 2), validated.output
    if validated.exit_code:
        assert len(validated.output.strip().splitlines()) == 1 and len(validated.output) < 500, validated.output
        return
    checked = runner.invoke(cli, ["check", "--json", "--at", str(T0)], env=environ)
    assert checked.exit_code in (0, 1, 3), (mutations, checked.output)
    assert "could not be recorded" not in checked.output, (mutations, checked.output)


def test_the_command_line_imports_the_database_layer_only_when_a_command_needs_it() -> None:
    # `rrdalarm --help`, `validate` and `init` do not pay for SQLAlchemy (a third of a second).
    code = ("import sys, rrdalarm.cli.main; "
            "print(sorted(m for m in ('sqlalchemy', 'flask', 'alembic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_validate_needs_no_database_layer(env: Env) -> None:
    env.rrd("a.rrd", {"x": [1.0]})
    env.write_thresholds('[[threshold]]\nid = 1\nglob = "*.rrd"\ntype = "above"\nvalue = 1\n')
    code = ("import sys; from click.testing import CliRunner; from rrdalarm.cli.main import cli; "
            f"r = CliRunner().invoke(cli, ['--settings', {str(env.settings_path)!r}, 'validate']); "
            "print(r.exit_code, 'sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["0", "False"], out.stdout + out.stderr


def test_validate_names_only_the_first_of_several_mistakes_in_one_line(env: Env) -> None:
    # The editor collects every field's mistake; the CLI still stops at the first, in field order.
    bad = GOOD.replace('glob = "interfaces/eth0/*Bytes.rrd"', 'glob = "../x/*.rrd"') \
              .replace("value = 100\n", 'value = "lots"\nstart = "yesterday-ish"\n')
    path = env.write_thresholds(bad)
    msg = assert_one_clear_line(env.run("validate"), f"{path}:5:", "glob")
    assert "value" not in msg and "start" not in msg
