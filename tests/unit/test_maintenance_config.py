"""[[maintenance]] tables: what they read to, and every mistake named by file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from rrdalarm.config.thresholds import load_thresholds, load_thresholds_file, parse_thresholds_file
from rrdalarm.model.control import MaintenanceWindow, Matchers
from rrdalarm.model.errors import ConfigError

# Lines 1-5; the window's header is line 7.
THRESHOLD = '[[threshold]]\nid = 3\nglob = "a.rrd"\ntype = "above"\nvalue = 5\n\n'


def parse(window: str) -> tuple[MaintenanceWindow, ...]:
    return parse_thresholds_file(THRESHOLD + window, "t.toml").windows


def error(window: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(window)
    return info.value


def test_a_full_window() -> None:
    [w] = parse('[[maintenance]]\nname = "backup"\nschedule = "30 2 * * sat,sun"\nduration = "2h"\n'
                'comment = " weekly backup "\nthreshold = 3\nseries = "web/*.rrd"\nds = "in"\nseverity = "Info"\n'
                '[maintenance.labels]\nteam = "net"\n')
    assert w == MaintenanceWindow("backup", "30 2 * * sat,sun", 7200, "weekly backup",
                                  Matchers(3, "web/*.rrd", "in", {"team": "net"}, "info"), line=7)
    assert w.ref == "maintenance:backup"


def test_no_matcher_covers_everything_and_duration_in_seconds() -> None:
    [w] = parse('[[maintenance]]\nname = "all"\nschedule = "0 0 1 * *"\nduration = 900\n')
    assert w.matchers == Matchers() and w.matchers.describe() == "everything" and w.duration == 900


def test_the_file_with_windows_still_gives_its_thresholds_to_load_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(THRESHOLD + '[[maintenance]]\nname = "n"\nschedule = "0 3 * * *"\nduration = "30min"\n')
    assert [t.id for t in load_thresholds(path)] == [3]
    assert [w.name for w in load_thresholds_file(path).windows] == ["n"]


def test_a_legacy_file_has_no_windows(tmp_path: Path) -> None:
    path = tmp_path / "rrdAlarmConfig.txt"
    path.write_text("1\ta.rrd\tabove\t5\t0\tnow-1h\tnow\tNone\t\t60\n")
    loaded = load_thresholds_file(path)
    assert [t.id for t in loaded.thresholds] == [1] and loaded.windows == ()


OK = 'name = "n"\nschedule = "0 3 * * *"\nduration = 60\n'


@pytest.mark.parametrize(("body", "line", "field", "words"), [
    ('schedule = "0 3 * * *"\nduration = 60\n', 7, "name", "needs a 'name'"),
    ('name = "  "\nschedule = "0 3 * * *"\nduration = 60\n', 8, "name", "must not be empty"),
    ('name = 4\nschedule = "0 3 * * *"\nduration = 60\n', 8, "name", "must be text"),
    ('name = "a,b"\nschedule = "0 3 * * *"\nduration = 60\n', 8, "name", "comma"),
    ('name = "n"\nduration = 60\n', 7, "schedule", "needs a 'schedule'"),
    ('name = "n"\nschedule = "0 3 * *"\nduration = 60\n', 9, "schedule", "five cron fields"),
    ('name = "n"\nschedule = "61 3 * * *"\nduration = 60\n', 9, "schedule", "higher than the maximum"),
    ('name = "n"\nschedule = "0 3 * * 0"\nduration = 60\n', 9, "schedule", "mon, tue"),
    ('name = "n"\nschedule = "0 3 * * 1-5"\nduration = 60\n', 9, "schedule", "0 is Sunday"),
    ('name = "n"\nschedule = "0 3 * * */2"\nduration = 60\n', 9, "schedule", "names"),
    ('name = "n"\nschedule = "0 3 * * mon,7"\nduration = 60\n', 9, "schedule", "'7'"),
    ('name = "n"\nschedule = "0 3 * * *"\n', 7, "duration", "needs a 'duration'"),
    ('name = "n"\nschedule = "0 3 * * *"\nduration = 0\n', 10, "duration", "more than 0"),
    ('name = "n"\nschedule = "0 3 * * *"\nduration = "soon"\n', 10, "duration", "not a duration"),
    (OK + "threshold = 9\n", 11, "threshold", "no threshold 9"),
    (OK + 'threshold = "3"\n', 11, "threshold", "threshold id"),
    (OK + 'series = ""\n', 11, "series", "must not be empty"),
    (OK + "ds = 1\n", 11, "ds", "must be text"),
    (OK + 'labels = "team=net"\n', 11, "labels", "table"),
    (OK + "[maintenance.labels]\nteam = 1\n", 11, "labels", "'team' must be text"),
    (OK + 'severity = "major"\n', 11, "severity", "'critical', 'warning', 'info'"),
    (OK + 'comment = ["x"]\n', 11, "comment", "must be text"),
    (OK + 'duraton = 60\n', 11, "duraton", "unknown field (known: comment, ds, duration, labels, name,"),
])
def test_each_mistake_names_file_line_and_field(body: str, line: int, field: str, words: str) -> None:
    err = error("[[maintenance]]\n" + body)
    assert (err.path, err.line, err.field) == ("t.toml", line, field)
    assert str(err).startswith(f"t.toml:{line}: field '{field}': maintenance") and words in str(err)


def test_names_are_unique() -> None:
    err = error(f"[[maintenance]]\n{OK}\n[[maintenance]]\n{OK}")
    assert err.line == 13 and err.field == "name" and "taken by the window at line 7" in str(err)


def test_maintenance_must_be_an_array_of_tables() -> None:
    with pytest.raises(ConfigError) as info:
        parse_thresholds_file(THRESHOLD + f"[maintenance]\n{OK}", "t.toml")
    assert info.value.line == 7 and "write [[maintenance]]" in str(info.value)


def test_other_top_level_keys_are_still_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_thresholds_file(THRESHOLD + "[[maintenace]]\nname = 1\n", "t.toml")
    assert info.value.line == 7 and "'maintenace'" in str(info.value) and "[[maintenance]]" in str(info.value)


def test_a_label_key_is_not_taken_for_the_windows_own() -> None:
    # name is missing; the label called name further down must not be named as its line.
    err = error('[[maintenance]]\nschedule = "0 3 * * *"\nduration = 60\n[maintenance.labels]\nname = "x"\n')
    assert err.line == 7 and err.field == "name"


def test_written_windows_read_back_the_same() -> None:
    from rrdalarm.config.writing import thresholds_to_toml

    loaded = parse_thresholds_file(
        THRESHOLD + '[[maintenance]]\nname = "a"\nschedule = "0 3 * * *"\nduration = "1h"\ncomment = "x"\n'
        'threshold = 3\nseries = "w/*"\nds = "in"\nseverity = "critical"\nlabels = { team = "net" }\n'
        '[[maintenance]]\nname = "b"\nschedule = "*/5 * * * mon-fri"\nduration = 60\n', "t.toml")
    text = thresholds_to_toml(loaded.thresholds, windows=loaded.windows)
    again = parse_thresholds_file(text, "t.toml")
    assert again.thresholds == loaded.thresholds
    assert [(w.name, w.schedule, w.duration, w.comment, w.matchers) for w in again.windows] == [
        (w.name, w.schedule, w.duration, w.comment, w.matchers) for w in loaded.windows]


def test_the_example_file_has_a_window() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "thresholds.toml"
    [w] = load_thresholds_file(example).windows
    assert (w.name, w.schedule, w.duration, w.matchers.threshold) == ("weekly uplink work", "0 4 * * sun", 5400, 1)


@pytest.mark.parametrize("key", ['"\\n"', '"a\\u2028b"', '"\\u0000"'])
def test_a_field_name_with_a_line_break_stays_on_one_line(key: str) -> None:
    # Found by fuzzing: an unknown key holding a line break split the one-line error (and a CLI's stderr).
    with pytest.raises(ConfigError) as caught:
        parse_thresholds_file(f"[[maintenance]]\n{key} = 1\n", "t.toml")
    text = str(caught.value)
    assert text.isprintable() and "unknown field" in text, text
