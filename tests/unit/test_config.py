"""Tests for rrdalarm.config: the TOML threshold model, validation with locations, settings, saving."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from rrdalarm.config.settings import load_settings
from rrdalarm.config.thresholds import is_legacy_text, load_thresholds, parse_thresholds_toml
from rrdalarm.config.writing import save_thresholds, thresholds_to_toml
from rrdalarm.model.definitions import ActionSpec, Settings, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.states import Direction

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

# One valid threshold; its lines are 1..5 so that an extra key lands on line 6.
MINIMAL = '[[threshold]]\nid = 1\nglob = "interfaces/eth0/*.rrd"\ntype = "above"\nvalue = 100\n'


def write(tmp_path: Path, text: str, name: str = "thresholds.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> tuple[Path, ConfigError]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_thresholds(path)
    return path, info.value


def assert_located(err: ConfigError, path: Path, line: int, field: str | None) -> None:
    """The message names the file, the line and (if given) the field."""
    text = str(err)
    assert str(path) in text, text
    assert f"{path}:{line}:" in text, text
    assert err.line == line
    if field is not None:
        assert field in text, text
        assert err.field == field
    assert "\n" not in text


# ---------------------------------------------------------------- the model and its defaults


def test_minimal_threshold_gets_the_documented_defaults(tmp_path: Path) -> None:
    [t] = load_thresholds(write(tmp_path, MINIMAL))
    assert t.id == 1
    assert t.glob == "interfaces/eth0/*.rrd"
    assert t.type is Direction.ABOVE
    assert t.value == 100.0
    assert isinstance(t.value, float)
    assert t.source == "rrd"
    assert t.cf == "AVERAGE"
    assert t.start == "now-1h"
    assert t.end == "now"
    assert t.repetitions == 0
    assert t.rearm == 0
    assert t.enabled is True
    assert t.ds == ()  # every data source of the file
    assert t.actions == ()
    assert t.action_names == "None"
    assert t.name  # a human name even when none is given
    assert t.location is not None
    assert t.location.path == str(tmp_path / "thresholds.toml")
    assert t.location.line == 2


def test_every_field_is_read(tmp_path: Path) -> None:
    text = """\
[[threshold]]
id = 42
name = "  hosts sending too much  "
source = "rrd"
glob = "hosts/**/bytes.rrd"
ds = ["sent", "rcvd"]
cf = "max"
type = "BELOW"
value = -2.5e3
repetitions = 3
start = "now-3h"
end = "now-5min"
rearm = 600
enabled = false

[[threshold.action]]
type = "log"
file = "hosts.log"

[[threshold.action]]
type = "webhook"
url = "http://example.org/hook"
retries = 2
"""
    [t] = load_thresholds(write(tmp_path, text))
    assert t == Threshold(
        id=42,
        name="hosts sending too much",
        source="rrd",
        glob="hosts/**/bytes.rrd",
        ds=("sent", "rcvd"),
        cf="MAX",
        type=Direction.BELOW,
        value=-2500.0,
        repetitions=3,
        start="now-3h",
        end="now-5min",
        rearm=600,
        enabled=False,
        actions=(
            ActionSpec("log", {"file": "hosts.log"}),
            ActionSpec("webhook", {"url": "http://example.org/hook", "retries": 2}),
        ),
    )
    assert t.action_names == "log, webhook"


def test_a_single_ds_may_be_a_string_and_epochs_may_be_numbers(tmp_path: Path) -> None:
    text = MINIMAL + 'ds = "sent"\nstart = 1700000000\nend = 1700003600\n'
    [t] = load_thresholds(write(tmp_path, text))
    assert t.ds == ("sent",)
    assert (t.start, t.end) == ("1700000000", "1700003600")


def test_all_cfs_are_accepted(tmp_path: Path) -> None:
    for cf in ("AVERAGE", "MIN", "MAX", "LAST", "last"):
        [t] = load_thresholds(write(tmp_path, MINIMAL + f'cf = "{cf}"\n'))
        assert t.cf == cf.upper()


def test_empty_and_comment_only_files_have_no_thresholds(tmp_path: Path) -> None:
    assert load_thresholds(write(tmp_path, "")) == []
    assert load_thresholds(write(tmp_path, "# nothing yet\n\n# really\n")) == []


def test_example_thresholds_file_loads() -> None:
    thresholds = load_thresholds(CONFIG_DIR / "thresholds.toml")
    assert [t.id for t in thresholds] == [1, 2]
    assert thresholds[0].actions == (ActionSpec("log", {"file": "alarms.log"}),)
    assert thresholds[1].ds == ("sent", "rcvd")
    assert thresholds[1].end == "now"  # default


def test_other_sources_only_when_installed(tmp_path: Path) -> None:
    text = ('[[threshold]]\nid = 3\nsource = "ntopng"\nschema = "host:traffic"\nquery = "ifid:0, host:*"\n'
            'label = "bytes_sent"\ntype = "above"\nvalue = 1\n')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_thresholds(path, sources=("rrd",))  # as on an installation without the ntopng source
    assert_located(info.value, path, 3, "source")
    [t] = load_thresholds(path, sources=("rrd", "ntopng"))
    assert (t.source, t.glob, t.schema, t.query) == ("ntopng", "", "host:traffic", "ifid:0,host:*")
    assert t.ds == ("bytes_sent",)


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ('schema = "host traffic"\nquery = "ifid:0"', "schema", "schema such as"),
        ('schema = "host:traffic"\nquery = "host:*"', "query", "needs an 'ifid' tag"),
        ('schema = "host:traffic"\nquery = "ifid:0,host:19*"', "query", "exactly '*'"),
        ('schema = "host:traffic"\nquery = "ifid:0,host"', "query", "not tag:value"),
        ('schema = "host:traffic"\nquery = "ifid:0"\nglob = "x"', "glob", "not a glob"),
    ],
)
def test_ntopng_fields_are_validated(tmp_path: Path, body: str, field: str, fragment: str) -> None:
    path = write(tmp_path, f'[[threshold]]\nid = 4\nsource = "ntopng"\ntype = "above"\nvalue = 1\n{body}\n')
    with pytest.raises(ConfigError) as info:
        load_thresholds(path, sources=("rrd", "ntopng"))
    assert info.value.field == field and fragment in str(info.value)


def test_ntopng_threshold_round_trips_through_toml(tmp_path: Path) -> None:
    from rrdalarm.config.thresholds import parse_thresholds_toml
    from rrdalarm.config.writing import thresholds_to_toml

    text = ('[[threshold]]\nid = 5\nsource = "ntopng"\nschema = "iface:traffic"\nquery = "ifid:*"\n'
            'label = ["bytes"]\ntype = "below"\nvalue = 10\n')
    [t] = parse_thresholds_toml(text, "x", sources=("rrd", "ntopng"))
    assert parse_thresholds_toml(thresholds_to_toml([t]), "x", sources=("rrd", "ntopng")) == [t]


def test_rrd_thresholds_refuse_ntopng_fields(tmp_path: Path) -> None:
    text = '[[threshold]]\nid = 6\nglob = "a.rrd"\nschema = "host:traffic"\ntype = "above"\nvalue = 1\n'
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="belongs to ntopng thresholds"):
        load_thresholds(path)


# ---------------------------------------------------------------- validation errors with locations


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('colour = "red"', "colour"),
        ('cf = "MEDIAN"', "cf"),
        ("cf = 1", "cf"),
        ("repetitions = -1", "repetitions"),
        ("repetitions = 1.5", "repetitions"),
        ('repetitions = "3"', "repetitions"),
        ("repetitions = true", "repetitions"),
        ("rearm = -60", "rearm"),
        ('rearm = "1h"', "rearm"),
        ('start = "yesterday"', "start"),
        ('start = "now-3x"', "start"),
        ('end = "now+"', "end"),
        ("end = true", "end"),
        ('enabled = "yes"', "enabled"),
        ("name = 5", "name"),
        ("ds = [1, 2]", "ds"),
        ('ds = [""]', "ds"),
    ],
)
def test_bad_field_names_file_line_and_field(tmp_path: Path, extra: str, field: str) -> None:
    path, err = load_error(tmp_path, MINIMAL + extra + "\n")
    assert_located(err, path, 6, field)


@pytest.mark.parametrize(
    ("line", "replacement", "field"),
    [
        (2, 'id = "one"', "id"),
        (2, "id = -1", "id"),
        (2, "id = 1.5", "id"),
        (3, 'glob = "/var/lib/rrd/*.rrd"', "glob"),
        (3, 'glob = "interfaces/../../../etc/*.rrd"', "glob"),
        (3, 'glob = "../*.rrd"', "glob"),
        (3, 'glob = "hosts/a**/bytes.rrd"', "glob"),
        (3, 'glob = "hosts/**b/bytes.rrd"', "glob"),
        (3, 'glob = ""', "glob"),
        (3, "glob = 5", "glob"),
        (4, 'type = "sideways"', "type"),
        (4, "type = 1", "type"),
        (5, 'value = "100 apples"', "value"),
        (5, "value = nan", "value"),
        (5, 'value = "NaN"', "value"),
        (5, "value = inf", "value"),
        (5, "value = -inf", "value"),
        (5, "value = true", "value"),
        (5, "value = [1]", "value"),
    ],
)
def test_bad_value_names_file_line_and_field(tmp_path: Path, line: int, replacement: str, field: str) -> None:
    lines = MINIMAL.splitlines()
    lines[line - 1] = replacement
    path, err = load_error(tmp_path, "\n".join(lines) + "\n")
    assert_located(err, path, line, field)


def test_windows_glob_forms_are_refused(tmp_path: Path) -> None:
    for glob in ("C:/rrd/*.rrd", "\\\\server\\share\\*.rrd"):
        lines = MINIMAL.splitlines()
        lines[2] = f"glob = '{glob}'"
        path, err = load_error(tmp_path, "\n".join(lines) + "\n")
        assert_located(err, path, 3, "glob")


def test_double_star_as_a_whole_component_is_fine(tmp_path: Path) -> None:
    for glob in ("**/bytes.rrd", "hosts/**/bytes.rrd", "hosts/**", "a/**/b/**/c.rrd"):
        [t] = load_thresholds(write(tmp_path, MINIMAL.replace("interfaces/eth0/*.rrd", glob)))
        assert t.glob == glob


def test_missing_value_and_type_are_errors(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, '[[threshold]]\nid = 1\nglob = "a/*.rrd"\ntype = "above"\n')
    assert err.field == "value"
    assert str(path) in str(err)
    path, err = load_error(tmp_path, '[[threshold]]\nid = 1\nglob = "a/*.rrd"\nvalue = 1\n')
    assert err.field == "type"
    assert str(path) in str(err)


def test_missing_glob_is_an_error(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, '[[threshold]]\nid = 1\ntype = "above"\nvalue = 1\n')
    assert err.field == "glob"
    assert f"{path}:" in str(err)


def test_missing_id_points_at_the_table(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[threshold]]\nglob = "b/*.rrd"\ntype = "below"\nvalue = 1\n'
    path, err = load_error(tmp_path, text)
    assert_located(err, path, 7, "id")


def test_duplicate_id_names_both_places(tmp_path: Path) -> None:
    text = MINIMAL + "\n" + MINIMAL.replace("above", "below")
    path, err = load_error(tmp_path, text)
    assert_located(err, path, 8, "id")
    assert f"{path}:2" in str(err)
    assert "duplicate" in str(err)


def test_start_after_end_is_an_error(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, MINIMAL + 'start = "now"\nend = "now-1h"\n')
    assert err.field in ("start", "end")
    assert err.line in (6, 7)
    assert f"{path}:{err.line}:" in str(err)
    assert err.field in str(err)


def test_start_equal_to_end_is_an_error(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, MINIMAL + 'start = "now-1h"\nend = "now-60min"\n')
    assert err.field in ("start", "end")
    assert str(path) in str(err)


def test_error_in_second_threshold_points_into_it(tmp_path: Path) -> None:
    second = MINIMAL.replace("id = 1", "id = 2").replace("value = 100", "value = 100\nrepetitions = -3")
    path, err = load_error(tmp_path, MINIMAL + "\n" + second)
    assert_located(err, path, 12, "repetitions")
    assert "threshold 2" in str(err)


def test_action_without_type(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[threshold.action]]\nfile = "a.log"\n'
    path, err = load_error(tmp_path, text)
    assert_located(err, path, 7, "action.type")


def test_second_action_without_type_points_at_its_table(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[threshold.action]]\ntype = "log"\n\n[[threshold.action]]\ntype = ""\nfile = "b.log"\n'
    path, err = load_error(tmp_path, text)
    assert err.field == "action.type"
    assert err.line in (10, 11)
    assert f"{path}:{err.line}:" in str(err)
    assert "action 2" in str(err)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (MINIMAL + "value = = 3\n", 6),
        ('[[threshold]]\nid = 1\nglob = "a/*.rrd\ntype = "above"\n', 3),
        (MINIMAL + "id = 2\n", 6),  # a key given twice
        ("# header\n\n[[threshold]\nid = 1\n", 3),
    ],
)
def test_invalid_toml_names_the_parser_line(tmp_path: Path, text: str, line: int) -> None:
    path, err = load_error(tmp_path, text)
    assert_located(err, path, line, None)
    assert "TOML" in str(err)


def test_unknown_top_level_key_names_file_and_field(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, "# c\nthreshold_count = 1\n" + MINIMAL)
    assert str(path) in str(err)
    assert err.field == "threshold_count"
    assert "threshold_count" in str(err)


def test_unknown_top_level_key_names_the_line(tmp_path: Path) -> None:
    path, err = load_error(tmp_path, "# c\nthreshold_count = 1\n" + MINIMAL)
    assert_located(err, path, 2, "threshold_count")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found") as info:
        load_thresholds(tmp_path / "nope.toml")
    assert str(tmp_path / "nope.toml") in str(info.value)
    with pytest.raises(ConfigError, match="directory"):
        load_thresholds(tmp_path)
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[[threshold]]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="UTF-8") as info:
        load_thresholds(latin1)
    assert str(latin1) in str(info.value)


# ---------------------------------------------------------------- settings


def test_settings_defaults_without_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    s = load_settings(None)
    assert s == Settings(path=None, data_dir=tmp_path / "xdg" / "rrdalarm")
    assert s.rrd_root is None
    assert s.thresholds is None
    assert s.workers == 0
    assert s.lock_wait == 30.0
    assert s.database_url == ""
    assert s.db_url == f"sqlite:///{tmp_path / 'xdg' / 'rrdalarm' / 'rrdalarm.db'}"
    assert s.logs == tmp_path / "xdg" / "rrdalarm" / "log"


def test_settings_relative_paths_are_taken_from_the_settings_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the current folder must not matter
    path = write(
        folder,
        'rrd_root = "rrd"\nthresholds = "conf/thresholds.toml"\ndata_dir = "state"\nlog_dir = "/var/log/x"\n'
        'database_url = "sqlite:////tmp/x.db"\nworkers = 4\nlock_wait = 2.5\n',
        "rrdalarm.toml",
    )
    s = load_settings(path)
    assert s.path == path
    assert s.rrd_root == folder / "rrd"
    assert s.thresholds == folder / "conf" / "thresholds.toml"
    assert s.data_dir == folder / "state"
    assert s.log_dir == Path("/var/log/x")
    assert s.logs == Path("/var/log/x")
    assert s.database_url == "sqlite:////tmp/x.db"
    assert s.db_url == "sqlite:////tmp/x.db"
    assert s.workers == 4
    assert s.lock_wait == 2.5


def test_settings_file_with_only_comments_gives_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    s = load_settings(write(tmp_path, "# nothing\n", "rrdalarm.toml"))
    assert s.rrd_root is None
    assert s.data_dir == tmp_path / "xdg" / "rrdalarm"
    assert s.db_url.endswith("rrdalarm.db")


def test_example_settings_file_loads() -> None:
    s = load_settings(CONFIG_DIR / "rrdalarm.toml")
    assert s.rrd_root == Path("/var/lib/ntopng/rrd")
    assert s.thresholds == CONFIG_DIR / "thresholds.toml"
    assert s.data_dir == Path("/var/lib/rrdalarm")
    assert s.workers == 0
    assert s.lock_wait == 30.0


@pytest.mark.parametrize(
    "address", ["unix:/run/rrdcached.sock", "/run/rrdcached.sock", "localhost", "10.0.0.5:42217", "[::1]:42217", ""]
)
def test_settings_rrdcached_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    monkeypatch.setenv("RRDCACHED_ADDRESS", "unix:/from/the/environment")
    assert load_settings(None).rrdcached_address == "unix:/from/the/environment"
    s = load_settings(write(tmp_path, f'rrdcached = "{address}"\n', "rrdalarm.toml"))
    # The setting (even empty: no daemon) wins over $RRDCACHED_ADDRESS.
    assert (s.rrdcached, s.rrdcached_address) == (address, address)


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("# settings\nworkers = 2\nbogus = 1\n", 3, "bogus"),
        ("workers = -1\n", 1, "workers"),
        ("workers = true\n", 1, "workers"),
        ("workers = 1.5\n", 1, "workers"),
        ('workers = "4"\n', 1, "workers"),
        ('\nlock_wait = "soon"\n', 2, "lock_wait"),
        ("lock_wait = -1\n", 1, "lock_wait"),
        ("lock_wait = false\n", 1, "lock_wait"),
        ("rrd_root = 3\n", 1, "rrd_root"),
        ("thresholds = [1]\n", 1, "thresholds"),
        ("database_url = 5\n", 1, "database_url"),
        ('workers = 1\nrrdcached = "unix:run/rrdcached.sock"\n', 2, "rrdcached"),
        ('rrdcached = "localhost:99999"\n', 1, "rrdcached"),
        ('rrdcached = "local host"\n', 1, "rrdcached"),
        ("rrdcached = 42217\n", 1, "rrdcached"),
    ],
)
def test_settings_errors_name_file_line_and_field(tmp_path: Path, text: str, line: int, field: str) -> None:
    path = write(tmp_path, text, "rrdalarm.toml")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert_located(info.value, path, line, field)


def test_settings_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "workers = 1\nlock_wait = = 3\n", "rrdalarm.toml")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert_located(info.value, path, 2, None)


def test_settings_unknown_table_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "workers = 1\n\n[web]\nport = 8080\n", "rrdalarm.toml")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert_located(info.value, path, 3, "web")


def test_missing_settings_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found") as info:
        load_settings(tmp_path / "missing.toml")
    assert str(tmp_path / "missing.toml") in str(info.value)


# ---------------------------------------------------------------- writing TOML

FULL = """\
# a comment that will not survive
[[threshold]]
id = 1
glob = "interfaces/eth0/*Bytes.rrd"
type = "above"
value = 80e6
repetitions = 3

[[threshold.action]]
type = "log"
file = "alarms.log"

[[threshold]]
id = 7
name = 'quotes " and \\ backslash, ünïcödé'
glob = "hosts/**/b[ab]?.rrd"
ds = ["sent", "rcvd"]
cf = "min"
type = "below"
value = 1e-300
repetitions = 0
start = 1700000000
end = "now"
rearm = 3600
enabled = false

[[threshold.action]]
type = "log"

[[threshold.action]]
type = "custom"
count = 3
ratio = 0.5
flag = true
items = [1, "two"]
nested = { key = "value" }

[[threshold]]
id = 8
glob = "x.rrd"
type = "above"
value = -0.0
"""


def test_round_trip_load_save_load(tmp_path: Path) -> None:
    first = load_thresholds(write(tmp_path, FULL))
    target = tmp_path / "saved.toml"
    save_thresholds(target, first)
    second = load_thresholds(target)
    assert second == first
    saved_lines = target.read_text(encoding="utf-8").splitlines()
    for t in second:  # locations point at each threshold's id in the saved file
        assert t.location is not None
        assert t.location.line is not None
        assert saved_lines[t.location.line - 1] == f"id = {t.id}"
    # and once more: saving is stable
    assert thresholds_to_toml(second) == thresholds_to_toml(first)


def test_round_trip_of_the_example_file(tmp_path: Path) -> None:
    original = load_thresholds(CONFIG_DIR / "thresholds.toml")
    target = tmp_path / "copy.toml"
    save_thresholds(target, original)
    assert load_thresholds(target) == original


def test_toml_output_parses_with_tomllib(tmp_path: Path) -> None:
    thresholds = load_thresholds(write(tmp_path, FULL))
    text = thresholds_to_toml(thresholds, header=[" first header line", " second"])
    head = text.splitlines()[:2]
    assert all(ln.startswith("#") for ln in head)
    assert "first header line" in head[0]
    assert "second" in head[1]
    data = tomllib.loads(text)
    assert [t["id"] for t in data["threshold"]] == [1, 7, 8]
    assert data["threshold"][1]["action"][1]["nested"] == {"key": "value"}
    assert data["threshold"][1]["enabled"] is False
    assert data["threshold"][0]["value"] == 80e6
    assert parse_thresholds_toml(text, "mem") == thresholds


def test_empty_list_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "empty.toml"
    save_thresholds(target, [])
    assert load_thresholds(target) == []


def test_built_thresholds_round_trip(tmp_path: Path) -> None:
    built = [
        Threshold(id=5, name="five", type=Direction.ABOVE, value=1.0, glob="a/*.rrd"),
        Threshold(
            id=6,
            name="six",
            type=Direction.BELOW,
            value=2.0,
            glob="b/**/c.rrd",
            ds=("x",),
            cf="LAST",
            repetitions=4,
            start="end-2h",
            end="now-1min",
            rearm=10,
            enabled=False,
            actions=(ActionSpec("log", {"file": "six.log"}),),
        ),
    ]
    target = tmp_path / "built.toml"
    save_thresholds(target, built)
    assert load_thresholds(target) == built


def test_save_is_atomic_and_replaces_the_target(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    target = folder / "thresholds.toml"
    target.write_text("# old contents\n", encoding="utf-8")
    os.chmod(target, 0o640)
    old_inode = target.stat().st_ino
    thresholds = load_thresholds(write(tmp_path, FULL))

    save_thresholds(target, thresholds, header=[" saved"])

    assert sorted(p.name for p in folder.iterdir()) == ["thresholds.toml"]  # no temp file left
    assert target.stat().st_ino != old_inode  # a new file renamed over the old one
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # permissions kept
    assert "old contents" not in target.read_text(encoding="utf-8")
    assert load_thresholds(target) == thresholds


def test_save_creates_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "thresholds.toml"
    thresholds = load_thresholds(write(tmp_path, MINIMAL))
    save_thresholds(target, thresholds)
    assert load_thresholds(target) == thresholds
    assert [p.name for p in target.parent.iterdir()] == ["thresholds.toml"]


def test_failed_save_leaves_the_old_file(tmp_path: Path) -> None:
    target = write(tmp_path, MINIMAL, "keep.toml")
    bad = [
        Threshold(
            id=1,
            name="x",
            type=Direction.ABOVE,
            value=1.0,
            glob="a.rrd",
            actions=(ActionSpec("log", {"file": object()}),),
        )
    ]
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever tomlkit raises for an unsupported value
        save_thresholds(target, bad)
    assert target.read_text(encoding="utf-8") == MINIMAL
    assert [p.name for p in tmp_path.iterdir()] == ["keep.toml"]


# ---------------------------------------------------------------- legacy detection


LEGACY_ROW = "1\tinterfaces/eth0/*Bytes.rrd\tabove\t0.0\t0\tnow-3h\tnow\tsavelog\tAslog.txt\t60\n"


@pytest.mark.parametrize(
    ("text", "legacy"),
    [
        ("", False),
        ("\n\n   \n", False),
        ("# only a comment\n# and another\n", False),
        ("  # indented comment\n\n", False),
        (MINIMAL, False),
        ("# comment\n" + MINIMAL, False),
        ("title = 'x'\n", False),
        ("key\t=\t'value with\ttabs'\n", False),
        ("[[threshold]] # with a comment\nid = 1\n", False),
        (LEGACY_ROW, True),
        ("# RRDAlarm configuration\n# ID\tFile\tType\n\n" + LEGACY_ROW, True),
        ("1 interfaces/eth0/*Bytes.rrd above 0.0 0 now-3h now savelog Aslog.txt 60\n", True),
    ],
)
def test_is_legacy_text(text: str, legacy: bool) -> None:
    assert is_legacy_text(text) is legacy


def test_is_legacy_text_on_the_shipped_files() -> None:
    assert is_legacy_text((CONFIG_DIR / "rrdAlarmConfig.txt").read_text(encoding="utf-8")) is True
    assert is_legacy_text((CONFIG_DIR / "thresholds.toml").read_text(encoding="utf-8")) is False
    assert is_legacy_text((CONFIG_DIR / "rrdalarm.toml").read_text(encoding="utf-8")) is False


def test_load_thresholds_detects_legacy_by_content_not_name(tmp_path: Path) -> None:
    legacy = load_thresholds(write(tmp_path, LEGACY_ROW, "thresholds.toml"))
    assert [(t.id, t.glob, t.rearm) for t in legacy] == [(1, "interfaces/eth0/*Bytes.rrd", 60)]
    toml = load_thresholds(write(tmp_path, MINIMAL, "rrdAlarmConfig.txt"))
    assert [t.id for t in toml] == [1]


@pytest.mark.parametrize("breaker", ["\u2028", "\u2029", "\x85"])
def test_lines_are_counted_at_newlines_only(tmp_path: Path, breaker: str) -> None:
    # TOML (and tomllib's own line numbers) end a line at \n only.
    text = f'[[threshold]]\nid = 1\nname = "a{breaker}b"\nglob = "x/*.rrd"\ntype = "sideways"\nvalue = 1\n'
    path, err = load_error(tmp_path, text)
    assert_located(err, path, 5, "type")
    settings = write(tmp_path, f'# a{breaker}b\nworkers = 1\nlock_wait = "soon"\n', "rrdalarm.toml")
    with pytest.raises(ConfigError) as info:
        load_settings(settings)
    assert_located(info.value, settings, 3, "lock_wait")


# ---------------------------------------------------------------- what validate accepts, check must handle


@pytest.mark.parametrize(
    ("extra", "field"),
    [('ds = ["v", "v"]', "ds"), ('ds = ["in", "out", "in"]', "ds")],
)
def test_a_data_source_listed_twice_is_refused(tmp_path: Path, extra: str, field: str) -> None:
    # Both would be one series: its state row was written twice and the check's recording failed.
    path, err = load_error(tmp_path, MINIMAL + extra + "\n")
    assert_located(err, path, 6, field)
    assert "twice" in str(err)


def test_an_ntopng_label_listed_twice_is_refused(tmp_path: Path) -> None:
    text = ('[[threshold]]\nid = 1\nsource = "ntopng"\nschema = "host:traffic"\nquery = "ifid:0,host:*"\n'
            'label = ["bytes_sent", "bytes_sent"]\ntype = "above"\nvalue = 1\n')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        parse_thresholds_toml(text, str(path), ["rrd", "ntopng"])
    assert_located(info.value, path, 6, "label")


@pytest.mark.parametrize("ident", [2**31, 2**63, 2**63 + 5])
def test_an_id_the_database_cannot_hold_is_refused(tmp_path: Path, ident: int) -> None:
    lines = MINIMAL.splitlines()
    lines[1] = f"id = {ident}"
    path, err = load_error(tmp_path, "\n".join(lines) + "\n")
    assert_located(err, path, 2, "id")
    assert "2147483647" in str(err)


def test_the_largest_id_is_accepted(tmp_path: Path) -> None:
    [t] = load_thresholds(write(tmp_path, MINIMAL.replace("id = 1", f"id = {2**31 - 1}")))
    assert t.id == 2**31 - 1


def test_a_name_with_a_nul_is_refused(tmp_path: Path) -> None:
    # PostgreSQL cannot store a NUL in text: every event of the threshold would fail to record.
    path, err = load_error(tmp_path, MINIMAL + 'name = "a\\u0000b"\n')
    assert_located(err, path, 6, "name")
    assert "NUL" in str(err)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("rrd_root", "r" * 3000, "too long"),
        ("rrd_root", "/var/" + "x" * 256 + "/rrd", "too long"),
        ("data_dir", "da\\u0000ta", "NUL"),
        ("log_dir", "lo\\u0000g", "NUL"),
        ("thresholds", "t\\u0000.toml", "NUL"),
        ("scripts_dir", "s" * 300, "too long"),
    ],
)
def test_settings_paths_that_cannot_name_a_file_are_refused(tmp_path: Path, key: str, value: str,
                                                            problem: str) -> None:
    path = write(tmp_path, f'workers = 1\n{key} = "{value}"\n', "rrdalarm.toml")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert_located(info.value, path, 2, key)
    assert problem in str(info.value) and len(str(info.value)) < 300


@pytest.mark.parametrize("url", ["sqlite:////tmp/a\\u0000b.db", "x", "/var/lib/rrdalarm.db"])
def test_a_database_url_that_is_no_url_is_refused(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, f'database_url = "{url}"\n', "rrdalarm.toml")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert_located(info.value, path, 1, "database_url")


def test_a_file_name_too_long_to_open_is_a_config_error(tmp_path: Path) -> None:
    long = tmp_path / ("t" * 3000)
    with pytest.raises(ConfigError, match="too long"):
        load_thresholds(long)
    with pytest.raises(ConfigError, match="too long"):
        load_settings(long)


def test_threshold_problems_collects_every_fields_mistake_with_the_loaders_messages() -> None:
    from rrdalarm.config.thresholds import threshold_from_dict, threshold_problems

    good = {"id": 3, "glob": "df/*.rrd", "type": "above", "value": 1, "within": 2, "repetitions": 1}
    threshold, problems = threshold_problems(good, "t.toml")
    assert problems == [] and threshold == threshold_from_dict(good, "t.toml")
    bad = good | {"glob": "../x/*.rrd", "value": "lots", "start": "yesterday-ish", "end": 5, "rearm": -1,
                  "scale": 0, "flap_changes": 3}
    threshold, problems = threshold_problems(bad, "t.toml")
    assert threshold is None
    assert [e.field for e in problems] == ["glob", "value", "start", "end", "scale", "flap_window", "rearm"]
    with pytest.raises(ConfigError) as first:
        threshold_from_dict(bad, "t.toml")
    assert str(first.value) == str(problems[0])  # the loader raises the first of the same mistakes


def test_threshold_problems_compares_fields_only_once_they_are_read() -> None:
    from rrdalarm.config.thresholds import threshold_problems

    # A limit that is not a number says so once: no "clear level above the limit" about a limit never read.
    raw = {"id": 3, "glob": "a.rrd", "type": "above", "value": "lots", "clear_value": 5,
           "start": "bogus", "end": "now"}
    _, problems = threshold_problems(raw, "t.toml")
    assert [e.field for e in problems] == ["value", "start"]
