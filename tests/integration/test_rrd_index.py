"""Glob expansion through the cached file index: semantics, confinement, re-listing."""

from __future__ import annotations

import glob as stdglob
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrdalarm.sources.rrd_index import FileIndex, GlobError, cache_path_for, compile_glob, glob_parts

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


def make_tree(root: Path) -> Path:
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "root")


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
        root = make_tree(Path(tmp))
        ours = index_of(root).match(pattern).files
        theirs = sorted(
            os.path.relpath(p, root) for p in stdglob.glob(str(root / pattern)) if os.path.isfile(p)
        )
        base = pattern.rsplit("/", 1)[-1]
        if base != "*.rrd" and any(ch in base for ch in "*?["):  # a wildcard that names no extension
            theirs = [t for t in theirs if t.endswith(".rrd")]
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
    assert index.match("*").escapes == ["out.rrd"]  # a wildcard takes only *.rrd names
    assert index.match("outdir").escapes == ["outdir"]
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


MUNIN = ["datafile", "datafile.storable", "limits", "munin-update.stats",
         "example.com/host-load-load-g.rrd", "example.com/host-cpu-user-d.rrd", "example.com/host.storable",
         "example.com/notes"]


@pytest.mark.parametrize(
    ("pattern", "files", "skipped"),
    [
        # A wildcard last component takes *.rrd files only ...
        ("**", ["example.com/host-cpu-user-d.rrd", "example.com/host-load-load-g.rrd"], 6),
        ("*", [], 4),
        ("example.com/*", ["example.com/host-cpu-user-d.rrd", "example.com/host-load-load-g.rrd"], 2),
        ("example.com/host*", ["example.com/host-cpu-user-d.rrd", "example.com/host-load-load-g.rrd"], 1),
        ("**/*load*", ["example.com/host-load-load-g.rrd"], 0),
        ("**/*.r?d", ["example.com/host-cpu-user-d.rrd", "example.com/host-load-load-g.rrd"], 0),
        # ... unless it spells out another extension ...
        ("**/*.storable", ["datafile.storable", "example.com/host.storable"], 0),
        ("*.stats", ["munin-update.stats"], 0),
        # ... and a literal name is taken as given (the fetch then says what it is).
        ("datafile", ["datafile"], 0),
        ("**/notes", ["example.com/notes"], 0),
    ],
)
def test_a_wildcard_takes_rrd_files_unless_the_glob_names_another_extension(
    tmp_path: Path, pattern: str, files: list[str], skipped: int
) -> None:
    for rel in MUNIN:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("not an RRD")
    m = index_of(tmp_path).match(pattern)
    assert (m.files, m.skipped) == (files, skipped)


@pytest.mark.parametrize("pattern", ["a/[z-a].rrd", "[9-0]*/x.rrd", "**/eth[!b-a]/*.rrd"])
def test_a_reversed_range_is_a_glob_error_naming_it(tree: Path, pattern: str) -> None:
    with pytest.raises(GlobError) as caught:
        index_of(tree).match(pattern)
    assert "reversed range" in str(caught.value) and repr(pattern) in str(caught.value)


@pytest.mark.parametrize(("pattern", "name", "hit"), [
    ("[[]x.rrd", "[x.rrd", True), ("[a&&b].rrd", "&.rrd", True), ("[a~~b].rrd", "~.rrd", True),
    ("[a||b].rrd", "|.rrd", True), ("[\\d].rrd", "1.rrd", False), ("[\\d].rrd", "d.rrd", True),
    ("[!-a].rrd", "-.rrd", False), ("[]-a].rrd", "^.rrd", True), ("[a-].rrd", "-.rrd", True),
])
def test_brackets_hold_only_glob_meaning(pattern: str, name: str, hit: bool) -> None:
    # Set operations, nested sets and escapes of Python's re are plain characters in a glob.
    assert compile_glob(pattern).takes(name) is hit


def test_repeated_double_stars_collapse_to_one(tree: Path) -> None:
    assert glob_parts("a/**/**/**/b.rrd") == ("a", "**", "b.rrd")
    assert compile_glob("a/**/**/**/b.rrd").folder_re.pattern == compile_glob("a/**/b.rrd").folder_re.pattern
    assert compile_glob("**/**/**") == compile_glob("**")
    index = index_of(tree)
    assert index.match("hosts/" + "**/" * 8 + "bytes.rrd").files == index.match("hosts/**/bytes.rrd").files


def _nested_repeats(pattern: str) -> list[str]:
    """Quantifiers that sit inside another quantifier in a compiled regex (sre's parse tree)."""
    import re._parser as sre_parse  # type: ignore[import-not-found]

    repeats = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT}
    found: list[str] = []

    def walk(items: Any, depth: int) -> None:
        for op, arg in items:
            if op in repeats:
                if depth:
                    found.append(str(arg))
                walk(arg[2], depth + 1)
            elif op in (sre_parse.SUBPATTERN,):
                walk(arg[3], depth)
            elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
                walk(arg[1], depth)
            elif op is sre_parse.BRANCH:
                for branch in arg[1]:
                    walk(branch, depth)

    walk(sre_parse.parse(pattern), 0)
    return found


@pytest.mark.parametrize("pattern", ["a/**/b.rrd", "**/x/**/*.rrd", "**", "hosts/*/**/ndpi/*.rrd",
                                     "a/**/**/" * 6 + "b*c*d.rrd"])
def test_compiled_globs_have_no_quantifier_inside_a_quantifier(pattern: str) -> None:
    g = compile_glob(pattern)
    assert _nested_repeats(g.folder_re.pattern) == [] and _nested_repeats(g.name_re.pattern) == []
    assert _nested_repeats(r"(?:(?!\.)[^/]+/)*") != []  # the helper sees the old form's nesting


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(st.sampled_from(["**", "*", "1*", "hosts", "192", "1?", ".*", "ndpi", "0", "*.rrd", "10"]),
                   min_size=1, max_size=5),
    base=st.sampled_from(["bytes.rrd", "*.rrd", "HTTP.rrd", "*"]),
)
def test_double_star_agrees_with_stdlib_recursive_glob(parts: list[str], base: str) -> None:
    import tempfile

    pattern = "/".join([*parts, base])
    with tempfile.TemporaryDirectory() as tmp:
        root = make_tree(Path(tmp))
        ours = index_of(root).match(pattern).files
        theirs = sorted({os.path.relpath(p, root) for p in stdglob.glob(str(root / pattern), recursive=True)
                         if os.path.isfile(p) and p.endswith(".rrd")})
        assert ours == theirs, pattern
