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
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from rrdalarm.common.fileutil import atomic_write_bytes

CACHE_VERSION = 2


class Folder(NamedTuple):
    """One folder's listing, with the mtime it had when listed."""

    mtime_ns: int
    subdirs: list[str]
    files: list[str]
    escapes: list[str]


RRD_SUFFIX = ".rrd"


@dataclass(frozen=True)
class Matches:
    """Files a glob matched; escaping symlinks and names that are not UTF-8 are kept apart, never read.

    `undecodable` holds those names as shown to people: the bytes that are not UTF-8 as \\xNN.
    """

    files: list[str]
    escapes: list[str]
    undecodable: list[str] = field(default_factory=list)
    skipped: int = 0  # files a wildcard matched that are not *.rrd (see CompiledGlob.rrd_only)


class GlobError(ValueError):
    """A glob the matcher cannot compile; str() is one line naming the glob."""


def _bracket(body: str) -> str:
    """Regex class for the inside of one [...] of a glob; GlobError for a reversed range."""
    whole = f"[{body}]"
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    items: list[str] = []
    k = 0
    while k < len(body):
        lo = body[k]
        if k + 2 < len(body) and body[k + 1] == "-":
            hi = body[k + 2]
            if lo > hi:
                raise GlobError(f"reversed range '{lo}-{hi}' in {whole!r}; write '{hi}-{lo}'")
            items.append(re.escape(lo) + "-" + re.escape(hi))
            k += 3
        else:
            # Every character escaped: no set operations, nested sets or escapes of Python's re leak in.
            items.append(re.escape(lo))
            k += 1
    return "[" + ("^" if negate else "") + "".join(items) + "]"


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
    """Regex for one path component of a glob: * and ? never cross '/'; GlobError if it cannot compile."""
    out = [] if part.startswith(".") else [r"(?!\.)"]
    i, n = 0, len(part)
    while i < n:
        c = part[i]
        if c == "*":
            while i + 1 < n and part[i + 1] == "*":
                i += 1  # "a**b" is refused by validation; never stack quantifiers anyway
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
                out.append(_bracket(part[i + 1 : j]))
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


# "**/": zero or more non-hidden folders. One loop over single characters (no quantifier inside a
# quantifier): a '.' may not start a component, a '/' must follow a name, and the piece ends after a '/'.
# The usual (?:[^/]+/)* nests two quantifiers, and several of them in a row backtrack exponentially.
ANY_FOLDERS = r"(?:(?!(?<![^/])\.)[^/]|(?<=[^/])/)*(?<![^/])"


def glob_parts(glob: str) -> tuple[str, ...]:
    """The components of a glob as the matcher reads them: empty and '.' dropped, runs of '**' collapsed.

    "a/**/**/b" means the same as "a/**/b"; a trailing "**" is every file below ("**/*").
    """
    parts: list[str] = []
    for p in glob.strip("/").split("/"):
        if p in ("", ".") or (p == "**" and parts[-1:] == ["**"]):
            continue
        parts.append(p)
    if not parts:
        parts = ["*"]
    if parts[-1] == "**":
        parts.append("*")
    return tuple(parts)


def names_extension(base: str) -> bool:
    """Whether a glob's last component spells out its extension ("*.rrd", "*.storable", but not "*", "x.*")."""
    stem, dot, ext = base.rpartition(".")
    return bool(dot and stem and ext) and not any(ch in ext for ch in "*?[]")


@dataclass(frozen=True)
class CompiledGlob:
    """A relative glob split for matching against folder listings."""

    parts: tuple[str, ...]  # as glob_parts normalised them
    prefix: str  # leading folders without wildcards
    folder_re: re.Pattern[str]  # the whole folder part (matched against "rel/")
    any_below_prefix: bool  # folder part is the prefix then only "**": every folder under it matches
    name_re: re.Pattern[str]  # the last component as written
    literal_name: str | None  # the file name when it has no wildcard
    # A wildcard file name only takes *.rrd files unless it spells out another extension:
    # munin and others keep state files (datafile, *.storable) beside their RRDs.
    rrd_only: bool

    def takes(self, name: str) -> bool:
        """Whether a file called `name`, in a folder the glob matches, is matched."""
        return bool(self.name_re.match(name)) and (not self.rrd_only or name.endswith(RRD_SUFFIX))


def _magic(part: str) -> bool:
    return any(ch in part for ch in "*?[")


@lru_cache(maxsize=256)
def compile_glob(glob: str) -> CompiledGlob:
    """The matcher's reading of a glob; GlobError (one line) when it cannot be compiled."""
    parts = glob_parts(glob)
    dir_parts, base = parts[:-1], parts[-1]
    prefix_parts = []
    for p in dir_parts:
        if _magic(p):
            break
        prefix_parts.append(p)
    rest = dir_parts[len(prefix_parts) :]
    try:
        pieces = [ANY_FOLDERS if p == "**" else translate_component(p) + "/" for p in dir_parts]
        folder_re = re.compile("".join(pieces) + r"\Z")
        name_re = re.compile(translate_component(base) + r"\Z")
    except GlobError as exc:
        raise GlobError(f"{glob!r}: {exc}") from None
    except re.error as exc:
        raise GlobError(f"{glob!r} is not a glob the matcher can read ({exc.msg})") from None
    return CompiledGlob(
        parts=parts,
        prefix="/".join(prefix_parts),
        folder_re=folder_re,
        any_below_prefix=bool(rest) and all(p == "**" for p in rest),
        name_re=name_re,
        literal_name=None if _magic(base) else base,
        rrd_only=_magic(base) and not names_extension(base),
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
        self.save_error: str | None = None

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
        # A cache that cannot be written (a full disk) only costs a walk next time: a warning, not a failure.
        try:
            atomic_write_bytes(self.cache, marshal.dumps(data))
        except OSError as exc:
            self.save_error = (f"the RRD index cache {self.cache} could not be written ({exc.strerror or exc}); "
                               "the next check lists the whole tree again")

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
        """Files (and escaping symlinks) matching a relative glob, sorted; GlobError for a bad glob."""
        g = compile_glob(glob)
        files: list[str] = []
        escapes: list[str] = []
        skipped = 0
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
                hits = list(filter(g.name_re.match, folder.files))
                if g.rrd_only:
                    kept = [f for f in hits if f.endswith(RRD_SUFFIX)]
                    skipped += len(hits) - len(kept)
                    hits = kept
                files.extend(lead + f for f in hits)
            escapes.extend(lead + f for f in folder.escapes if g.takes(f))
        files.sort()
        escapes.sort()
        undecodable = [shown(f) for f in files if not is_utf8(f)]
        if undecodable:
            files = [f for f in files if is_utf8(f)]
        return Matches(files, [shown(e) for e in escapes], undecodable, skipped)


def glob_problem(glob: str) -> str | None:
    """Why a glob may not be used (it must stay inside the RRD root), or None."""
    if "\x00" in glob:
        return "contains a NUL character"
    if glob.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", glob):
        return f"{glob!r} is absolute; globs are relative to the RRD root"
    if any(part == ".." for part in PurePosixPath(glob).parts):
        return f"{glob!r} contains '..'; globs cannot leave the RRD root"
    for part in PurePosixPath(glob).parts:
        if "**" in part and part != "**":
            return f"'**' must be a whole path component in {glob!r} (as in 'hosts/**/bytes.rrd')"
    try:
        compile_glob(glob)  # the matcher's own compilation: what passes here, every check can match
    except GlobError as exc:
        return str(exc)
    return None
