"""Editing the thresholds file: comments and order kept, conflicts refused, backups kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrdalarm.config.thresholds import parse_thresholds_toml
from rrdalarm.editor.thresholds_edit import (
    Conflict,
    EditError,
    add_threshold,
    commit,
    delete_threshold,
    read_snapshot,
    replace_threshold,
    set_enabled,
    version_of,
)
from rrdalarm.plugins import action_plugins

FILE = """\
# house rules: keep ids stable
# (this comment is the file's header)

# the uplink
[[threshold]]
id = 1  # never reuse
name = "uplink"
glob = "interfaces/eth0/*.rrd"   # both directions
type = "above"
value = 80e6
repetitions = 3

[[threshold.action]]
type = "log"
file = "alarms.log"

# hosts, any depth
[[threshold]]
id = 2
name = "hosts"
glob = "hosts/**/bytes.rrd"
type = "above"
value = 10e6

# disk
[[threshold]]
id = 3
name = "disk"
glob = "df/*.rrd"
type = "below"
value = 1e9
"""

RRD = ["rrd"]


def ids(text: str) -> list[int]:
    return [t.id for t in parse_thresholds_toml(text, "t.toml", RRD)]


def values(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {"id": 9, "name": "new", "glob": "a/*.rrd", "type": "above", "value": 1.5,
                               "repetitions": 0, "start": "now-1h", "end": "now", "rearm": 0}
    base.update(kw)
    return base


def test_add_keeps_the_file_and_appends() -> None:
    out = add_threshold(FILE, values(action=[{"type": "log"}]))
    assert out.startswith(FILE.rstrip("\n"))
    assert ids(out) == [1, 2, 3, 9]
    new = parse_thresholds_toml(out, "t.toml", RRD)[-1]
    assert new.glob == "a/*.rrd" and new.actions[0].type == "log"
    assert "enabled" not in out.split("id = 9")[1]  # defaults left out


def test_add_to_an_empty_file() -> None:
    assert ids(add_threshold("", values(id=1))) == [1]


def test_replace_keeps_comments_order_and_other_tables() -> None:
    out = replace_threshold(FILE, 1, values(id=1, name="uplink", glob="interfaces/eth1/*.rrd", value=90e6,
                                            repetitions=3, action=[{"type": "log", "file": "alarms.log"}]))
    assert "id = 1  # never reuse" in out
    assert 'glob = "interfaces/eth1/*.rrd"   # both directions' in out
    assert out.index("# the uplink") < out.index("id = 1") < out.index("# hosts, any depth")
    assert out.split("# hosts, any depth")[1] == FILE.split("# hosts, any depth")[1]
    t = parse_thresholds_toml(out, "t.toml", RRD)[0]
    assert (t.glob, t.value, t.start, t.rearm) == ("interfaces/eth1/*.rrd", 90e6, "now-1h", 0)
    assert [a.type for a in t.actions] == ["log"]


def test_replace_changes_and_removes_actions() -> None:
    out = replace_threshold(FILE, 1, values(id=1, action=[{"type": "email", "to": ["ops@example.org"]}]))
    t = parse_thresholds_toml(out, "t.toml", RRD)[0]
    assert [(a.type, dict(a.params)) for a in t.actions] == [("email", {"to": ["ops@example.org"]})]
    assert "# hosts, any depth" in out and "# the uplink" in out
    out = replace_threshold(out, 1, values(id=1))
    assert parse_thresholds_toml(out, "t.toml", RRD)[0].actions == ()
    assert ids(out) == [1, 2, 3]


def test_replace_of_a_missing_threshold() -> None:
    with pytest.raises(EditError, match="no threshold 7"):
        replace_threshold(FILE, 7, values(id=7))


def test_enable_and_disable() -> None:
    off = set_enabled(FILE, 2, False)
    assert [t.enabled for t in parse_thresholds_toml(off, "t.toml", RRD)] == [True, False, True]
    on = set_enabled(off, 2, True)
    assert on == FILE


@pytest.mark.parametrize(("ident", "gone", "kept"), [
    (1, ["# the uplink", "never reuse", "alarms.log"], ["# house rules", "# hosts, any depth", "# disk"]),
    (2, ["# hosts, any depth", "hosts/**"], ["# the uplink", "alarms.log", "# disk"]),
    (3, ["# disk", "df/*.rrd"], ["# hosts, any depth", "# the uplink"]),
])
def test_delete_takes_the_table_with_its_comment(ident: int, gone: list[str], kept: list[str]) -> None:
    out = delete_threshold(FILE, ident)
    assert ids(out) == [i for i in (1, 2, 3) if i != ident]
    for text in gone:
        assert text not in out
    for text in kept:
        assert text in out
    assert "\n\n\n" not in out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), st.sampled_from(["above", "below"]),
                          st.floats(-1e9, 1e9, allow_nan=False)), min_size=1, max_size=6,
                unique_by=lambda x: x[0]),
       st.data())
def test_add_then_delete_round_trips(rows: list[tuple[int, str, float]], data: st.DataObject) -> None:
    text = "# header\n"
    for ident, kind, value in rows:
        text = add_threshold(text, values(id=ident, type=kind, value=value, glob=f"g{ident}/*.rrd"))
    assert ids(text) == [r[0] for r in rows]
    victim = data.draw(st.sampled_from([r[0] for r in rows]))
    out = delete_threshold(text, victim)
    assert ids(out) == [r[0] for r in rows if r[0] != victim]
    kept = {t.id: t for t in parse_thresholds_toml(text, "t.toml", RRD)}
    for t in parse_thresholds_toml(out, "t.toml", RRD):
        assert t == kept[t.id]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another owner")
def test_a_saved_file_keeps_its_owner_and_group(tmp_path: Path) -> None:
    # /etc/rrdalarm/thresholds.toml as root:rrdalarm 0640: a save must not take the group's read away.
    path = tmp_path / "thresholds.toml"
    path.write_text(FILE)
    os.chown(path, 4242, 4343)
    os.chmod(path, 0o640)
    snap = read_snapshot(path, RRD)
    commit(path, snap.version, set_enabled(FILE, 3, False), action_plugins(), RRD)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (4242, 4343, 0o640)


def test_commit_writes_backup_and_refuses_stale_versions(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text(FILE)
    os.chmod(path, 0o640)
    snap = read_snapshot(path, RRD)
    assert [t.id for t in snap.thresholds] == [1, 2, 3] and snap.version == version_of(FILE)
    new = set_enabled(FILE, 3, False)
    done = commit(path, snap.version, new, action_plugins(), RRD)
    assert path.read_text() == new and (tmp_path / "thresholds.toml.bak").read_text() == FILE
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert "+enabled = false" in done.diff and done.version == version_of(new)
    with pytest.raises(Conflict, match="changed by someone else"):
        commit(path, snap.version, delete_threshold(FILE, 1), action_plugins(), RRD)
    assert path.read_text() == new


def test_commit_validates_the_whole_file_with_the_loaders_rules(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text(FILE)
    snap = read_snapshot(path, RRD)
    bad = add_threshold(FILE, values(id=2))
    with pytest.raises(Exception, match="duplicate threshold id 2"):
        commit(path, snap.version, bad, action_plugins(), RRD)
    bad_action = add_threshold(FILE, values(action=[{"type": "email"}]))
    with pytest.raises(Exception, match="needs parameter 'to'"):
        commit(path, snap.version, bad_action, action_plugins(), RRD)
    assert path.read_text() == FILE and not (tmp_path / "thresholds.toml.bak").exists()


def test_first_threshold_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    snap = read_snapshot(path, RRD)
    assert snap.thresholds == [] and snap.text == ""
    commit(path, snap.version, add_threshold("", values(id=1)), action_plugins(), RRD)
    assert ids(path.read_text()) == [1]


def test_legacy_files_are_not_edited_here(tmp_path: Path) -> None:
    path = tmp_path / "rrdAlarmConfig.txt"
    path.write_text("1\tinterfaces/*.rrd\tabove\t0.0\t0\tnow-3h\tnow\tNone\tNone\t60\n")
    with pytest.raises(EditError, match="import-legacy"):
        read_snapshot(path, RRD)


@pytest.mark.parametrize("breaker", ["\u2028", "\x85", "\u2029"])
def test_a_name_holding_a_unicode_line_break_does_not_stop_later_edits(tmp_path: Path, breaker: str) -> None:
    # TOML ends lines with \n only; str.splitlines also breaks at these, which made a header appear
    # inside the name's string and every later edit refused.
    name = f"uplink{breaker}[[threshold]]"
    text = FILE.replace('name = "uplink"', f'name = "{name}"')
    path = tmp_path / "thresholds.toml"
    path.write_text(text, encoding="utf-8")
    snap = read_snapshot(path, RRD)
    assert snap.thresholds[0].name == name
    new = replace_threshold(snap.text, 2, values(id=2, name="hosts", glob="hosts/**/bytes.rrd", value=5.0))
    new = set_enabled(new, 3, False)
    commit(path, snap.version, new, action_plugins(), RRD)
    after = {t.id: t for t in parse_thresholds_toml(path.read_text(encoding="utf-8"), "t.toml", RRD)}
    assert after[1].name == name and after[2].value == 5.0 and not after[3].enabled
    assert delete_threshold(new, 1).count("[[threshold]]") == 2
