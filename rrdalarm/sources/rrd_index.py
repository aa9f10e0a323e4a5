"""An index of the files under the RRD root, and glob matching over it.

Walking a tree of 100,000 files on every check is the expensive part of a
glob. The index remembers each folder's listing with its mtime and re-lists
only folders whose mtime changed (a folder's mtime changes when an entry is
added, removed or renamed, not when a file inside is updated). It is saved
in the data dir, so cron runs share it. Symlinks that resolve outside the
root are never followed; they are kept aside so that a glob matching one can
be reported. Symlinked folders inside the root are not followed either: their
files are already indexed under their real path.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import marshal
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from rrdalarm.fileutil import atomic_write_bytes

CACHE_VERSION = 2


class Folder(NamedTuple):
    """One folder's listing, with the mtime it had when listed."""

    mtime_ns: int
    subdirs: list[str]
    files: list[str]
    escapes: list[str]


@dataclass(frozen=True)
class Matches:
    """Files a glob matched; escaping symlinks and names that are not UTF-8 are kept apart, never read.

    `undecodable` holds those names as shown to people: the bytes that are not UTF-8 as \\xNN.
    """

    files: list[str]
    escapes: list[str]
    undecodable: list[str] = field(default_factory=list)


def is_utf8(name: str) -> bool:
    """False for a name os.scandir decoded with surrogate escapes (rrdtool cannot be given it)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(name: str) -> str:
    """`name` as one can print and store it: bytes that are not UTF-8 become \\xNN."""
    return name if is_utf8(name) else name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def translate_component(part: str) -> str:
    """Regex for one path component of a glob: * and ? never cross '/'."""
    out = [] if part.startswith(".") else [r"(?!\.)"]
    i, n = 0, len(part)
    while i < n:
        c = part[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and part[j] in "!^":
                j += 1
            if j < n and part[j] == "]":
                j += 1
            while j < n and part[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))
            else:
                body = part[i + 1 : j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class CompiledGlob:
    """A relative glob split for matching against folder listings."""

    prefix: str  # leading folders without wildcards
    folder_re: re.Pattern[str]  # the whole folder part (matched against "rel/")
    any_below_prefix: bool  # folder part is the prefix then only "**": every folder under it matches
    name_re: re.Pattern[str]
    literal_name: str | None  # the file name when it has no wildcard


def _magic(part: str) -> bool:
    return any(ch in part for ch in "*?[")


@lru_cache(maxsize=256)
def compile_glob(glob: str) -> CompiledGlob:
    parts = [p for p in glob.strip("/").split("/") if p not in ("", ".")]
    if not parts:
        parts = ["*"]
    if parts[-1] == "**":
        parts.append("*")
    dir_parts, base = parts[:-1], parts[-1]
    prefix_parts = []
    for p in dir_parts:
        if _magic(p):
            break
        prefix_parts.append(p)
    rest = dir_parts[len(prefix_parts) :]
    pieces = [r"(?:(?!\.)[^/]+/)*" if p == "**" else translate_component(p) + "/" for p in dir_parts]
    return CompiledGlob(
        prefix="/".join(prefix_parts),
        folder_re=re.compile("".join(pieces) + r"\Z"),
        any_below_prefix=bool(rest) and all(p == "**" for p in rest),
        name_re=re.compile(translate_component(base) + r"\Z"),
        literal_name=None if _magic(base) else base,
    )


def cache_path_for(data_dir: Path, root: Path) -> Path:
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:16]
    return data_dir / "index" / f"{digest}.marshal"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Building 100,000 small lists triggers the cycle collector over and over; none are cyclic."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class FileIndex:
    """Folder listings of one RRD root, refreshed where folders changed."""

    def __init__(self, root: Path, cache: Path | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        self.cache = cache
        self.folders: dict[str, Folder] = {}
        self.relisted = 0
        self._loaded = False

    def _load(self) -> None:
        self._loaded = True
        if self.cache is None:
            return
        try:
            # marshal: several times faster than JSON for 100,000 folders, and it
            # only ever builds plain data (unlike pickle). The file is ours, in the data dir.
            version, root, folders = marshal.loads(self.cache.read_bytes())
            if version != CACHE_VERSION or root != str(self.root):
                return
            self.folders = {rel: Folder._make(v) for rel, v in folders.items()}
        except (OSError, ValueError, EOFError, TypeError):
            return

    def _save(self) -> None:
        if self.cache is None:
            return
        data = (CACHE_VERSION, str(self.root), {rel: tuple(f) for rel, f in self.folders.items()})
        # A cache that cannot be written only costs a walk next time.
        with contextlib.suppress(OSError):
            atomic_write_bytes(self.cache, marshal.dumps(data))

    def _inside(self, target: str) -> bool:
        root = str(self.root)
        return target == root or target.startswith(root + os.sep)

    def _list(self, path: str, mtime_ns: int) -> Folder:
        folder = Folder(mtime_ns, [], [], [])
        try:
            entries = list(os.scandir(path))
        except OSError:
            return folder
        for entry in entries:
            try:
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not self._inside(target):
                        folder.escapes.append(entry.name)
                    elif os.path.isdir(target):
                        continue  # inside the root: its files are indexed under their real path
                    else:  # a file, or dangling: the fetch reports which
                        folder.files.append(entry.name)
                elif entry.is_dir(follow_symlinks=False):
                    folder.subdirs.append(entry.name)
                elif entry.is_file(follow_symlinks=False):
                    folder.files.append(entry.name)
            except OSError:
                continue
        folder.subdirs.sort()
        folder.files.sort()
        folder.escapes.sort()
        return folder

    def refresh(self) -> None:
        """Bring the index up to date with the tree, re-listing changed folders only."""
        with gc_paused():
            self._refresh()

    def _refresh(self) -> None:
        if not self._loaded:
            self._load()
        old = self.folders
        new: dict[str, Folder] = {}
        seen: set[tuple[int, int]] = set()
        stack = [""]
        self.relisted = 0
        root = str(self.root)
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            while stack:
                rel = stack.pop()
                try:
                    st = os.stat(rel or ".", dir_fd=root_fd)
                except OSError:
                    continue
                ident = (st.st_dev, st.st_ino)
                if ident in seen:  # a bind mount or loop inside the root
                    continue
                seen.add(ident)
                cached = old.get(rel)
                if cached is not None and cached.mtime_ns == st.st_mtime_ns:
                    folder = cached
                else:
                    folder = self._list(os.path.join(root, rel) if rel else root, st.st_mtime_ns)
                    self.relisted += 1
                new[rel] = folder
                if folder.subdirs:
                    lead = rel + "/" if rel else ""
                    stack.extend([lead + d for d in reversed(folder.subdirs)])
        finally:
            os.close(root_fd)
        self.folders = new
        if self.relisted or len(new) != len(old):
            self._save()

    def match(self, glob: str) -> Matches:
        """Files (and escaping symlinks) matching a relative glob, sorted."""
        g = compile_glob(glob)
        files: list[str] = []
        escapes: list[str] = []
        below = g.prefix + "/"
        for rel, folder in self.folders.items():
            if g.prefix and rel != g.prefix and not rel.startswith(below):
                continue
            if not g.any_below_prefix and not g.folder_re.match(rel + "/" if rel else ""):
                continue
            if g.any_below_prefix and "/." in "/" + rel[len(g.prefix) :]:
                continue  # ** does not descend into hidden folders, as in glob
            lead = rel + "/" if rel else ""
            if g.literal_name is not None:
                if g.literal_name in folder.files:
                    files.append(lead + g.literal_name)
            else:
                files.extend(lead + f for f in folder.files if g.name_re.match(f))
            escapes.extend(lead + f for f in folder.escapes if g.name_re.match(f))
        files.sort()
        escapes.sort()
        undecodable = [shown(f) for f in files if not is_utf8(f)]
        if undecodable:
            files = [f for f in files if is_utf8(f)]
        return Matches(files, [shown(e) for e in escapes], undecodable)
