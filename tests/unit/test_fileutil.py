"""Atomic writes, private folders and key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from rrdalarm.common.fileutil import atomic_write_text, make_private_dirs, private_file, split_lines


def test_a_key_file_is_made_once_private_and_whole(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret_key"
    calls: list[int] = []

    def make() -> bytes:
        calls.append(1)
        return b"k" * 32

    assert private_file(path, make) == b"k" * 32
    assert private_file(path, make) == b"k" * 32 and calls == [1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temp file left


def test_a_key_file_made_meanwhile_by_another_process_wins(tmp_path: Path) -> None:
    path = tmp_path / "token"

    def make() -> bytes:
        path.write_bytes(b"theirs\n")  # another process got there between our read and our link
        return b"ours\n"

    assert private_file(path, make) == b"theirs\n"
    assert path.read_bytes() == b"theirs\n" and [p.name for p in tmp_path.iterdir()] == ["token"]


def test_atomic_write_keeps_an_existing_files_mode(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("a\n")
    os.chmod(path, 0o640)
    atomic_write_text(path, "b\n")
    assert path.read_text() == "b\n" and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_private_folders_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        make_private_dirs(tmp_path / "a" / "b")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700


def test_lines_end_at_newlines_only() -> None:
    assert split_lines("a\u2028b\x85c\r\nd\n") == ["a\u2028b\x85c", "d"]

