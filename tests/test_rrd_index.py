"""Glob expansion through the cached file index: semantics, confinement, re-listing."""

from __future__ import annotations

import glob as stdglob
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrdalarm.sources.rrd_index import FileIndex, cache_path_for

FILES = [
    "a.rrd",
    "b.txt",
    ".hidden.rrd",
    "interfaces/eth0/bytes.rrd",
    "interfaces/eth0/inBytes.rrd",
    "interfaces/eth0/outBytes.rrd",
    "interfaces/eth1/bytes.rrd",
    "interfaces/eth10/bytes.rrd",
    "hosts/192/168/1/10/bytes.rrd",
    "hosts/192/168/1/10/ndpi/HTTP.rrd",
    "hosts/10/0/0/2/bytes.rrd",
    "hosts/bytes.rrd",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    return root


def index_of(root: Path, cache: Path | None = None) -> FileIndex:
    index = FileIndex(root, cache)
    index.refresh()
    return index


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a.rrd", ["a.rrd"]),
        ("*.rrd", ["a.rrd"]),
        (".*.rrd", [".hidden.rrd"]),
        ("interfaces/eth0/*Bytes.rrd", ["interfaces/eth0/inBytes.rrd", "interfaces/eth0/outBytes.rrd"]),
        ("interfaces/eth?/bytes.rrd", ["interfaces/eth0/bytes.rrd", "interfaces/eth1/bytes.rrd"]),
        ("interfaces/eth[01]/bytes.rrd", ["interfaces/eth0/bytes.rrd", "interfaces/eth1/bytes.rrd"]),
        ("interfaces/eth[!0]/bytes.rrd", ["interfaces/eth1/bytes.rrd"]),
        ("interfaces/*/bytes.rrd", ["interfaces/eth0/bytes.rrd", "interfaces/eth1/bytes.rrd",
                                    "interfaces/eth10/bytes.rrd"]),
        ("*/bytes.rrd", ["hosts/bytes.rrd"]),
        ("hosts/**/bytes.rrd", ["hosts/10/0/0/2/bytes.rrd", "hosts/192/168/1/10/bytes.rrd", "hosts/bytes.rrd"]),
        ("hosts/**", ["hosts/10/0/0/2/bytes.rrd", "hosts/192/168/1/10/bytes.rrd",
                      "hosts/192/168/1/10/ndpi/HTTP.rrd", "hosts/bytes.rrd"]),
        ("**/ndpi/*.rrd", ["hosts/192/168/1/10/ndpi/HTTP.rrd"]),
        ("nothing/*.rrd", []),
        ("interfaces", []),  # a folder is not a file
    ],
)
def test_glob_semantics(tree: Path, pattern: str, expected: list[str]) -> None:
    assert index_of(tree).match(pattern).files == expected


@settings(max_examples=60, deadline=None)
@given(
    pattern=st.lists(
        st.sampled_from(["*", "?", "eth0", "eth*", "*.rrd", "bytes.rrd", "hosts", "interfaces", "1*", "[ei]*"]),
        min_size=1, max_size=4,
    ).map("/".join)
)
def test_single_star_patterns_agree_with_stdlib_glob(pattern: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel in FILES:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(b"")
        ours = index_of(root).match(pattern).files
        theirs = sorted(
            os.path.relpath(p, root) for p in stdglob.glob(str(root / pattern)) if os.path.isfile(p)
        )
        assert ours == theirs


def test_symlinks_outside_are_escapes_inside_are_followed(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.rrd").write_bytes(b"")
    (tree / "out.rrd").symlink_to(outside / "x.rrd")
    (tree / "outdir").symlink_to(outside)
    (tree / "in.rrd").symlink_to(tree / "a.rrd")
    (tree / "eth").symlink_to(tree / "interfaces")
    (tree / "interfaces" / "loop").symlink_to(tree / "interfaces")
    index = index_of(tree)
    m = index.match("*.rrd")
    assert m.files == ["a.rrd", "in.rrd"]
    assert m.escapes == ["out.rrd"]
    assert index.match("*").escapes == ["out.rrd", "outdir"]
    # A symlinked folder inside the root is indexed once, under its real path; a loop is harmless.
    assert index.match("eth/*/bytes.rrd").files == []
    assert len(index.match("interfaces/*/bytes.rrd").files) == 3
    assert all("outdir" not in f for f in index.match("**").files)


def test_only_changed_folders_are_listed_again(tree: Path, tmp_path: Path) -> None:
    cache = cache_path_for(tmp_path / "data", tree)
    first = index_of(tree, cache)
    folders = len(first.folders)
    assert first.relisted == folders and cache.exists()

    again = index_of(tree, cache)  # a new process: loads the cache, stats folders, lists none
    assert again.relisted == 0
    assert again.match("**").files == first.match("**").files

    (tree / "interfaces" / "eth1" / "new.rrd").write_bytes(b"")
    os.utime(tree / "interfaces" / "eth1", ns=(1, 10**18))  # make the mtime change visible at once
    changed = index_of(tree, cache)
    assert changed.relisted == 1
    assert "interfaces/eth1/new.rrd" in changed.match("interfaces/*/*.rrd").files

    (tree / "interfaces" / "eth1" / "new.rrd").unlink()
    os.utime(tree / "interfaces" / "eth1", ns=(1, 2 * 10**18))
    assert "interfaces/eth1/new.rrd" not in index_of(tree, cache).match("**").files


def test_a_corrupt_cache_is_ignored(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.marshal"
    cache.write_bytes(b"\x00garbage")
    assert index_of(tree, cache).match("a.rrd").files == ["a.rrd"]


def test_removed_folder_disappears(tree: Path, tmp_path: Path) -> None:
    import shutil

    cache = tmp_path / "c.marshal"
    index_of(tree, cache)
    shutil.rmtree(tree / "hosts" / "10")
    assert index_of(tree, cache).match("hosts/**/bytes.rrd").files == [
        "hosts/192/168/1/10/bytes.rrd", "hosts/bytes.rrd",
    ]
