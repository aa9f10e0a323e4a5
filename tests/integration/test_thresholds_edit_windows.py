"""The threshold editor keeps [[maintenance]] tables as they are, and will not orphan one."""

from __future__ import annotations

from pathlib import Path

import pytest

from rrdalarm.config.thresholds import parse_thresholds_file
from rrdalarm.editor.thresholds_edit import (
    EditError,
    add_threshold,
    commit,
    delete_threshold,
    read_snapshot,
    replace_threshold,
    set_enabled,
)
from rrdalarm.plugins import action_plugins

WINDOWS = """\
# nightly backups quiet the disks
[[maintenance]]
name = "backup"
schedule = "30 2 * * *"
duration = "2h"
threshold = 2
[maintenance.labels]
team = "storage"
"""

LATE = """\
[[maintenance]]  # the whole site, monthly
name = "patch day"
schedule = "0 22 * * tue"
duration = 7200
"""

# Threshold 1 sits right above a [[maintenance]] table, threshold 3 right above another.
FILE = f"""\
[[threshold]]
id = 2
glob = "df/*.rrd"
type = "below"
value = 1e9

# the uplink
[[threshold]]
id = 1
glob = "if/*.rrd"
type = "above"
value = 80e6
[[threshold.action]]
type = "log"
[threshold.labels]
team = "net"

{WINDOWS}
[[threshold]]
id = 3
glob = "cpu/*.rrd"
type = "above"
value = 90
{LATE}"""

RRD = ["rrd"]


def windows(text: str) -> list[tuple[str, int | None]]:
    return [(w.name, w.matchers.threshold) for w in parse_thresholds_file(text, "t.toml", RRD).windows]


def ids(text: str) -> list[int]:
    return [t.id for t in parse_thresholds_file(text, "t.toml", RRD).thresholds]


def test_the_example_reads() -> None:
    assert ids(FILE) == [2, 1, 3] and windows(FILE) == [("backup", 2), ("patch day", None)]


@pytest.mark.parametrize("ident", [1, 3])
def test_deleting_the_threshold_above_a_window_keeps_the_window(ident: int) -> None:
    out = delete_threshold(FILE, ident)
    assert ids(out) == [i for i in (2, 1, 3) if i != ident]
    assert windows(out) == windows(FILE)
    assert WINDOWS in out and LATE in out


def test_deleting_the_threshold_above_a_window_takes_only_its_own_tables() -> None:
    out = delete_threshold(FILE, 1)
    assert "# the uplink" not in out and 'type = "log"' not in out and 'team = "net"' not in out
    assert "# nightly backups quiet the disks" in out


def test_a_threshold_a_window_names_is_not_deleted() -> None:
    with pytest.raises(EditError, match="threshold 2 is named by maintenance window 'backup'; change or remove it"):
        delete_threshold(FILE, 2)


def test_edit_and_enable_keep_the_windows_byte_for_byte() -> None:
    out = replace_threshold(FILE, 1, {"id": 1, "glob": "if/eth0.rrd", "type": "above", "value": 70e6,
                                      "action": [{"type": "log"}], "labels": {"team": "net"}})
    out = set_enabled(out, 3, False)
    assert WINDOWS in out and LATE in out and windows(out) == windows(FILE)
    assert [t.enabled for t in parse_thresholds_file(out, "t.toml", RRD).thresholds] == [True, True, False]
    assert set_enabled(set_enabled(FILE, 1, False), 1, True) == FILE


def test_add_after_the_windows() -> None:
    out = add_threshold(FILE, {"id": 4, "glob": "x.rrd", "type": "above", "value": 1})
    assert out.startswith(FILE.rstrip("\n")) and ids(out) == [2, 1, 3, 4] and windows(out) == windows(FILE)


def test_commit_through_the_snapshot_keeps_windows(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text(FILE, encoding="utf-8")
    snap = read_snapshot(path, RRD)
    commit(path, snap.version, delete_threshold(snap.text, 3), action_plugins(), RRD)
    text = path.read_text(encoding="utf-8")
    assert ids(text) == [2, 1] and windows(text) == windows(FILE)
