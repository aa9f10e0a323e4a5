"""Tests for rrdalarm.config.legacy: the original RRDAlarm's tab-separated rrdAlarmConfig.txt."""

from __future__ import annotations

from pathlib import Path

import pytest

from rrdalarm.config.legacy import FIELDS, legacy_action, parse_legacy, split_fields
from rrdalarm.config.thresholds import is_legacy_text, load_thresholds
from rrdalarm.config.writing import save_thresholds, thresholds_to_toml
from rrdalarm.model.definitions import ActionSpec, Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.model.states import Direction

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "rrdAlarmConfig.txt"

# The example row of the original's documentation.
EXAMPLE = "1\tinterfaces/eth0/*Bytes.rrd\tabove\t0.0\t0\tnow-3h\tnow\tsavelog\tAslog.txt\t60"

# The original acted on firing checks (after "time before next"), never on recovery.
LEGACY_ON = ["fire", "repeat"]


def row(**changes: str) -> str:
    """The example row with some fields replaced (by their legacy names)."""
    values = dict(zip(FIELDS, EXAMPLE.split("\t"), strict=True))
    values.update(changes)
    return "\t".join(values[f] for f in FIELDS)


def test_the_original_example_row() -> None:
    [t] = parse_legacy(EXAMPLE + "\n", "rrdAlarmConfig.txt")
    assert t.id == 1
    assert t.glob == "interfaces/eth0/*Bytes.rrd"
    assert t.type is Direction.ABOVE
    assert t.value == 0.0
    assert t.repetitions == 0
    assert t.start == "now-3h"
    assert t.end == "now"
    assert t.actions == (ActionSpec("log", {"file": "Aslog.txt", "on": LEGACY_ON}),)
    assert t.rearm == 60
    # what the legacy format cannot say takes the defaults
    assert t.source == "rrd"
    assert t.cf == "AVERAGE"
    assert t.ds == ()
    assert t.enabled is True
    assert t.name
    assert t.location is not None
    assert (t.location.path, t.location.line) == ("rrdAlarmConfig.txt", 1)


def test_sendmail_becomes_an_email_action_with_to() -> None:
    [t] = parse_legacy(row(action="sendmail", parameter="ops@example.org"), "x")
    assert t.actions == (ActionSpec("email", {"to": "ops@example.org", "on": LEGACY_ON}),)


@pytest.mark.parametrize(("action", "parameter"), [("None", "None"), ("none", "Aslog.txt"), ("NONE", "x")])
def test_none_means_no_action(action: str, parameter: str) -> None:
    [t] = parse_legacy(row(action=action, parameter=parameter), "x")
    assert t.actions == ()


def test_a_none_parameter_is_no_parameter() -> None:
    [t] = parse_legacy(row(action="savelog", parameter="None"), "x")
    assert t.actions == (ActionSpec("log", {"on": LEGACY_ON}),)
    assert legacy_action("sendmail", "None") == (ActionSpec("email", {"on": LEGACY_ON}),)


def test_below_and_other_numbers() -> None:
    [t] = parse_legacy(row(type="below", value="1e3", repetitions="5", start="now-1d", end="now-1h", rearm="0"), "x")
    assert t.type is Direction.BELOW
    assert t.value == 1000.0
    assert t.repetitions == 5
    assert (t.start, t.end) == ("now-1d", "now-1h")
    assert t.rearm == 0


def test_comment_and_blank_lines_are_skipped_and_lines_counted() -> None:
    text = (
        "# RRDAlarm configuration\n"
        "# ID\tFile\tType\tValue\tRepetitions\tStart\tEnd\tAction\tParameter\tTimeBeforeNext\n"
        "\n"
        "   \n"
        f"{EXAMPLE}\n"
        "\t# an indented comment\n"
        f"{row(id='2', glob='hosts/*.rrd')}\n"
    )
    thresholds = parse_legacy(text, "cfg.txt")
    assert [t.id for t in thresholds] == [1, 2]
    assert [t.location.line if t.location else None for t in thresholds] == [5, 7]


def test_empty_and_comment_only_files() -> None:
    assert parse_legacy("", "x") == []
    assert parse_legacy("# nothing\n\n", "x") == []


def test_space_separated_rows_are_accepted() -> None:
    assert parse_legacy(EXAMPLE.replace("\t", "   "), "x") == parse_legacy(EXAMPLE, "x")


def test_split_fields() -> None:
    assert split_fields(EXAMPLE) == EXAMPLE.split("\t")
    assert split_fields(" a  b\tc d \t e") == ["a  b", "c d", "e"]  # tabs win over spaces
    assert split_fields("a  b   c") == ["a", "b", "c"]


@pytest.mark.parametrize(
    "bad",
    [
        "\t".join(EXAMPLE.split("\t")[:9]),
        EXAMPLE + "\textra",
        "1",
        "1\tinterfaces/eth0/*Bytes.rrd",
    ],
)
def test_wrong_field_count_names_the_line(bad: str) -> None:
    text = f"# header\n{EXAMPLE}\n\n{bad}\n"
    with pytest.raises(ConfigError) as info:
        parse_legacy(text, "/etc/rrdAlarmConfig.txt")
    err = info.value
    assert err.line == 4
    assert "/etc/rrdAlarmConfig.txt:4:" in str(err)
    assert "10" in str(err)


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("id", "one"),
        ("id", "1.5"),
        ("value", "lots"),
        ("value", "nan"),
        ("value", "inf"),
        ("repetitions", "three"),
        ("repetitions", "1.5"),
        ("repetitions", "-1"),
        ("rearm", "1m"),
        ("rearm", "-60"),
        ("type", "sideways"),
        ("start", "yesterday"),
        ("end", "now+x"),
        ("glob", "/var/lib/rrd/*.rrd"),
        ("glob", "../secret/*.rrd"),
    ],
)
def test_bad_field_names_line_and_field(field: str, text: str) -> None:
    source = f"# header\n\n{EXAMPLE}\n{row(**{'id': '2', field: text})}\n"
    with pytest.raises(ConfigError) as info:
        parse_legacy(source, "/etc/rrdAlarmConfig.txt")
    err = info.value
    assert err.line == 4
    assert err.field == field
    assert "/etc/rrdAlarmConfig.txt:4:" in str(err)
    assert field in str(err)


def test_start_after_end_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_legacy(row(start="now", end="now-3h"), "cfg")
    assert info.value.line == 1
    assert info.value.field in ("start", "end")


def test_duplicate_ids_name_both_lines() -> None:
    with pytest.raises(ConfigError) as info:
        parse_legacy(f"{EXAMPLE}\n# c\n{row(glob='other/*.rrd')}\n", "cfg.txt")
    err = info.value
    assert err.line == 3
    assert err.field == "id"
    assert "cfg.txt:3:" in str(err)
    assert "cfg.txt:1" in str(err)


def test_the_sample_file_parses() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    assert is_legacy_text(text)
    thresholds = parse_legacy(text, str(SAMPLE))
    assert [t.id for t in thresholds] == [1, 2]
    first, second = thresholds
    assert first.glob == "interfaces/eth0/*Bytes.rrd"
    assert (first.type, first.value, first.repetitions, first.rearm) == (Direction.ABOVE, 0.0, 0, 60)
    assert first.actions == (ActionSpec("log", {"file": "Aslog.txt", "on": LEGACY_ON}),)
    assert second.glob == "interfaces/eth1/*Packets.rrd"
    assert second.type is Direction.BELOW
    assert second.value == 10.0
    assert second.repetitions == 3
    assert (second.start, second.end) == ("now-1h", "now")
    assert second.actions == (ActionSpec("email", {"to": "ops@example.org", "on": LEGACY_ON}),)
    assert second.rearm == 600
    assert load_thresholds(SAMPLE) == thresholds


def test_imported_toml_loads_back_to_the_same_thresholds(tmp_path: Path) -> None:
    legacy = parse_legacy(SAMPLE.read_text(encoding="utf-8"), str(SAMPLE))
    target = tmp_path / "thresholds.toml"
    save_thresholds(target, legacy, header=[f" Converted from {SAMPLE}"])
    text = target.read_text(encoding="utf-8")
    assert not is_legacy_text(text)
    assert load_thresholds(target) == legacy


def test_every_legacy_field_survives_the_conversion(tmp_path: Path) -> None:
    text = "\n".join(
        [
            EXAMPLE,
            row(
                id="2",
                type="below",
                value="-12.75",
                repetitions="4",
                start="end-2h",
                end="now-5min",
                action="sendmail",
                parameter="a@example.org",
                rearm="3600",
            ),
            row(id="3", glob="hosts/h?/*.rrd", action="None", parameter="None", rearm="0"),
            row(id="4", action="customscript", parameter="arg"),
        ]
    )
    legacy = parse_legacy(text, "cfg.txt")
    converted = thresholds_to_toml(legacy)
    target = tmp_path / "out.toml"
    target.write_text(converted, encoding="utf-8")
    assert load_thresholds(target) == legacy
    assert [len(t.actions) for t in legacy] == [1, 1, 0, 1]


def test_legacy_thresholds_compare_like_toml_ones() -> None:
    [t] = parse_legacy(EXAMPLE, "x")
    assert t == Threshold(
        id=1,
        name=t.name,
        type=Direction.ABOVE,
        value=0.0,
        glob="interfaces/eth0/*Bytes.rrd",
        repetitions=0,
        start="now-3h",
        end="now",
        actions=(ActionSpec("log", {"file": "Aslog.txt", "on": LEGACY_ON}),),
        rearm=60,
    )


def test_legacy_row_with_equals_in_the_parameter_is_still_legacy(tmp_path: Path) -> None:
    text = f"# legacy\n{row(action='webhook', parameter='http://example.org/hook?team=ops')}\n"
    assert is_legacy_text(text)
    path = tmp_path / "rrdAlarmConfig.txt"
    path.write_text(text, encoding="utf-8")
    [t] = load_thresholds(path)
    assert t.actions[0].type == "webhook"


def test_an_empty_field_between_two_tabs_is_a_field() -> None:
    # As in the original's `line.rstrip().split('\t')`: action None without a parameter.
    [t] = parse_legacy(row(action="None", parameter=""), "x")
    assert t.actions == ()
    assert t.rearm == 60
    [t] = parse_legacy(row(action="savelog", parameter=""), "x")
    assert t.actions == (ActionSpec("log", {"on": LEGACY_ON}),)
    assert split_fields("a\t\tb\t") == ["a", "", "b"]


def test_two_tabs_are_two_separators_not_one() -> None:
    # An empty field is a field, so a doubled tab no longer hides a missing one.
    with pytest.raises(ConfigError, match="found 11"):
        parse_legacy(EXAMPLE.replace("\tnow\t", "\t\tnow\t"), "x")


def test_a_file_of_rows_with_empty_parameters_is_detected_as_legacy(tmp_path: Path) -> None:
    path = tmp_path / "rrdAlarmConfig.txt"
    path.write_text(f"{row(action='None', parameter='')}\n{row(id='2', action='None', parameter='')}\n")
    assert is_legacy_text(path.read_text())
    assert [t.id for t in load_thresholds(path)] == [1, 2]


@pytest.mark.parametrize("breaker", ["\u2028", "\x85", "\x0c"])
def test_rows_end_at_newlines_only(breaker: str) -> None:
    # The original read the file line by line: only \n ends a row.
    text = f"# a{breaker}comment\n{row(parameter=f'As{breaker}log.txt')}\n"
    [t] = parse_legacy(text, "x")
    assert t.actions[0].params["file"] == f"As{breaker}log.txt"
    assert t.location is not None and t.location.line == 2
    assert is_legacy_text(text)
