"""Completion for the threshold editor: paths under the RRD root, live match counts, data sources.

Beside the data flow, not in it: the web app's /api/suggest, /api/matches and
/api/ds ask one PathSuggester per RRD root. It reads the same cached FileIndex
as the check (same cache file in the data dir), so what it counts is what the
next check will fetch. Nothing here reveals anything outside the root: typed
text that could leave it gets no answer, symlinks leading out of the root are
never listed, and a file is only opened after its real path is confirmed to be
inside the root.

No Flask here: the core never imports the web app.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import NamedTuple

import rrdtool

from rrdalarm.sources.rrd_index import (
    RRD_SUFFIX,
    CompiledGlob,
    FileIndex,
    Folder,
    compile_glob,
    glob_problem,
    translate_component,
)

log = logging.getLogger("rrdalarm.suggest")

# A refresh stats every folder: about 5 ms per 1,000 folders on a warm cache, so
# 0.5 s for a tree with one folder per file (100,000 folders). Suggestions may be
# this many seconds old; a new file shows up within that time.
MIN_REFRESH_S = 5.0
# ...and never more often than 20 times the last refresh took, so that a huge tree
# costs at most ~5 % of a core however fast someone types; but at least once a minute.
REFRESH_COST_FACTOR = 20.0
MAX_REFRESH_S = 60.0
MAX_TEXT = 1024  # longer input is not a path someone is typing
MAX_LIMIT = 500
SAMPLE_SIZE = 10
# A typed glob in the folder part ("hosts/*/") merges the listings of every folder
# it matches; past this many the answer is cut short (and says so) to stay fast.
MAX_GLOB_FOLDERS = 5_000
MAX_CACHED_COUNTS = 256  # globs counted per listing; typing a glob in the editor makes a new one per key
# A look-up answers within about this long, partial if need be: it runs while someone types,
# and a glob such as "**/*/**/*/**" over 100,000 folders could otherwise hold a server thread.
LOOKUP_BUDGET_S = 2.0
# Offering data sources reads each matched file's header (rrdtool info, ~0.1 ms warm): a few hundred
# files tell what a glob's files hold; the rest rarely add a name.
MAX_DS_FILES = 500
CLOCK_EVERY = 256  # folders between two looks at the clock

_DS_KEY = re.compile(r"ds\[(.+)\]\.index")


def _magic(part: str) -> bool:
    return any(ch in part for ch in "*?[")


class SuggestError(Exception):
    """A request that cannot be answered; str() is one line without absolute paths.

    `not_found` tells a missing file (HTTP 404) from a refused request (400).
    """

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(" ".join(message.split()))
        self.not_found = not_found


class Suggestion(NamedTuple):
    """One completion: the whole new value of the glob field, and what it names."""

    value: str  # a folder's value ends in "/"
    kind: str  # "dir" or "file"


class Suggestions(NamedTuple):
    items: list[Suggestion]
    more: bool  # more entries matched than `limit`


@dataclass(frozen=True)
class MatchCount:
    """How many files a glob matches, as the check would expand it."""

    count: int
    sample: list[str]  # up to SAMPLE_SIZE of them, sorted
    outside: int  # symlinks it matches that lead outside the root (the check skips and reports them)
    partial: bool = False  # the time budget ran out: at least `count` files match

    @property
    def message(self) -> str:
        if not self.partial:
            return ""
        return f"counting took too long: at least {self.count} files match (the check counts them all)"


@dataclass(frozen=True)
class DataSourceUnion:
    """The data sources of the files a glob matches, with how many of the files read have each."""

    ds: list[tuple[str, int]]  # (name, files having it), the most common first
    files: int  # files read
    unreadable: int = 0  # matched files that are not readable RRDs
    partial: bool = False  # time or the file limit ran out: more files match than were read

    @property
    def message(self) -> str:
        if not self.partial:
            return ""
        return f"read the data sources of the first {self.files + self.unreadable} matching files only"


class Budget:
    """A deadline for one look-up, read on the suggester's clock."""

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._end = clock() + seconds
        self._ticks = 0
        self.spent = False

    def over(self) -> bool:
        """True once the deadline has passed (the clock is read every CLOCK_EVERY calls)."""
        if not self.spent and self._ticks % CLOCK_EVERY == 0:
            self.spent = self._clock() >= self._end
        self._ticks += 1
        return self.spent


class PathSuggester:
    """Completions over one RRD root; safe to share between the threads of a web server.

    The index is built on the first request (blocking it), then refreshed when
    a request finds it older than the interval. With `background` (the
    default), that refresh runs in a thread while requests keep being answered
    from the previous listing, so no keystroke waits for a walk of the tree.
    """

    def __init__(self, root: Path, cache_path: Path | None, *, min_interval: float = MIN_REFRESH_S,
                 clock: Callable[[], float] = time.monotonic, background: bool = True) -> None:
        self.root = Path(os.path.realpath(root))
        self.min_interval = min_interval
        self.background = background
        self._clock = clock
        self._index = FileIndex(self.root, cache_path)
        self._refresh_lock = threading.Lock()  # one walk at a time
        self._state_lock = threading.Lock()
        self._built = False
        self._refreshing = False
        self._due = 0.0
        # Counts of whole globs over one published listing: the thresholds page counts every
        # threshold's glob on each view, ~0.1 s each over 100,000 folders; the listing's identity keys them.
        self._counts: tuple[object, dict[tuple[str, int], MatchCount]] = (None, {})

    # ------------------------------------------------------------ the index

    def folders(self) -> dict[str, Folder]:
        """The current listing (a dict never changed after it is published), refreshed when stale."""
        if not self._built:
            with self._refresh_lock:
                if not self._built:
                    self._refresh()
                    self._built = True
            return self._index.folders
        start = False
        with self._state_lock:
            if not self._refreshing and self._clock() >= self._due:
                self._refreshing = start = True
        if start:
            if self.background:
                threading.Thread(target=self._refresh_quietly, name="rrdalarm-suggest-index", daemon=True).start()
            else:
                self._refresh_quietly()
        return self._index.folders

    def _refresh(self) -> None:
        """Walk the tree (changed folders are re-listed); SuggestError when the root is gone."""
        started = time.perf_counter()
        try:
            self._index.refresh()
        except OSError as exc:
            raise SuggestError(f"cannot read the RRD root: {exc.strerror or exc}") from None
        finally:
            took = time.perf_counter() - started
            # The first walk may list every folder (no cache yet): it says nothing about what a refresh costs.
            cost = REFRESH_COST_FACTOR * took if self._built else 0.0
            with self._state_lock:
                self._due = self._clock() + max(self.min_interval, min(cost, MAX_REFRESH_S))

    def _refresh_quietly(self) -> None:
        try:
            with self._refresh_lock:
                self._refresh()
        except SuggestError as exc:
            # Keep answering from the last listing; the next stale request tries again.
            log.warning("suggestions: %s", exc)
        finally:
            with self._state_lock:
                self._refreshing = False

    # ------------------------------------------------------------ completions

    def suggest(self, text: str, limit: int = 50, budget_s: float = LOOKUP_BUDGET_S) -> Suggestions:
        """Folders and .rrd files completing `text` (what the user typed in the glob field).

        The text is split at its last "/": the folder part names where to look
        (a glob there merges every folder it matches), the rest is the start of
        a name. Exact-case matches come first, then other-case ones; folders
        before files within each. Hidden entries only when the partial name
        starts with ".". Anything that could leave the root gets nothing. A folder
        part that takes longer than `budget_s` to expand gives a partial answer (`more`).
        """
        limit = max(1, min(limit, MAX_LIMIT))
        if len(text) > MAX_TEXT or "\\" in text or glob_problem(text) is not None:
            return Suggestions([], False)
        head, _, partial = text.rpartition("/")
        if _magic(partial):
            return Suggestions([], False)  # a glob being typed: the match count says what it does
        lead = text[: len(text) - len(partial)]
        parts = [p for p in head.split("/") if p not in ("", ".")]
        folders = self.folders()
        truncated = False
        if any(_magic(p) for p in parts):
            rels, truncated = _expand_folders(parts, folders, MAX_GLOB_FOLDERS, Budget(budget_s, self._clock))
            sources = [folders[rel] for rel in rels]
        else:
            one = folders.get("/".join(parts))
            sources = [one] if one is not None else []
        if not sources:
            return Suggestions([], False)
        exact_dirs, exact_files = _union(sources, partial, fold=False)
        items = [Suggestion(lead + d + "/", "dir") for d in exact_dirs]
        items += [Suggestion(lead + f, "file") for f in exact_files]
        if partial and len(items) <= limit:
            other_dirs, other_files = _union(sources, partial, fold=True)
            items += [Suggestion(lead + d + "/", "dir") for d in other_dirs]
            items += [Suggestion(lead + f, "file") for f in other_files]
        return Suggestions(items[:limit], truncated or len(items) > limit)

    def matches(self, glob: str, sample: int = SAMPLE_SIZE, budget_s: float = LOOKUP_BUDGET_S) -> MatchCount:
        """Files the check would expand `glob` to; SuggestError (one line) for a glob it would refuse.

        Past `budget_s` seconds the answer is partial (and says so) rather than late.
        """
        g = self._compiled(glob)
        folders = self.folders()
        listing, counted = self._counts
        if listing is not folders:
            counted = {}
            self._counts = (folders, counted)
        known = counted.get((glob, sample))
        if known is not None:
            return known
        found = self._count(g, folders, sample, Budget(budget_s, self._clock))
        if not found.partial and len(counted) < MAX_CACHED_COUNTS:
            counted[(glob, sample)] = found
        return found

    def _count(self, g: CompiledGlob, folders: dict[str, Folder], sample: int, budget: Budget) -> MatchCount:
        rels, _ = _expand_folders(list(g.parts[:-1]), folders, None, budget)
        hits = _counter(g)
        count = outside = 0
        picked: list[str] = []
        for rel in rels:
            if budget.over():
                break
            folder = folders[rel]
            if folder.files:
                n, first = hits(folder.files, sample - len(picked))
                count += n
                if first:
                    lead = rel + "/" if rel else ""
                    picked.extend(lead + h for h in first)
            if folder.escapes:
                outside += sum(1 for e in folder.escapes if g.takes(e))
        return MatchCount(count, sorted(picked), outside, budget.spent)

    def matched_files(self, glob: str, budget: Budget) -> Iterator[str]:
        """The files `glob` matches, as the check would expand it, folder by folder until `budget` is over."""
        g = self._compiled(glob)
        folders = self.folders()
        rels, _ = _expand_folders(list(g.parts[:-1]), folders, None, budget)
        for rel in rels:
            lead = rel + "/" if rel else ""
            for name in folders[rel].files:
                if budget.over():
                    return
                if g.takes(name):
                    yield lead + name

    def data_source_union(self, glob: str, budget_s: float = LOOKUP_BUDGET_S,
                          max_files: int = MAX_DS_FILES) -> DataSourceUnion:
        """The data sources of the files `glob` matches: each name with how many files have it.

        Reads at most `max_files` files within `budget_s` seconds; past either, the answer is partial.
        Files that cannot be read as RRDs are counted apart, so that one broken file hides nothing.
        """
        budget = Budget(budget_s, self._clock)
        deadline = self._clock() + budget_s
        counts: dict[str, int] = {}
        read = unreadable = 0
        partial = False
        for rel in self.matched_files(glob, budget):
            # Each file is a read: the clock is looked at every time, not every CLOCK_EVERY steps.
            if read + unreadable >= max_files or self._clock() >= deadline:
                partial = True
                break
            try:
                names = self.data_sources(rel)
            except SuggestError:
                unreadable += 1
                continue
            read += 1
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        # The most common first; among equals, the order the first files list them in (dicts keep it).
        ordered = sorted(counts.items(), key=lambda item: -item[1])
        return DataSourceUnion(ordered, read, unreadable, partial or budget.spent)

    def _compiled(self, glob: str) -> CompiledGlob:
        """The glob as the check compiles it; SuggestError (one line) for a glob it would refuse."""
        if len(glob) > MAX_TEXT:
            raise SuggestError(f"the glob is longer than {MAX_TEXT} characters")
        problem = glob_problem(glob)
        if problem is not None:
            raise SuggestError(problem)
        if not [p for p in glob.strip("/").split("/") if p not in ("", ".")]:
            raise SuggestError("the glob is empty")
        return compile_glob(glob)

    # ------------------------------------------------------------ one file

    def confine(self, rel: str) -> Path:
        """The real path of file `rel` under the root; SuggestError for anything else."""
        problem = glob_problem(rel)
        if problem is not None:
            raise SuggestError(problem)
        if _magic(rel) or "\\" in rel or len(rel) > MAX_TEXT:
            raise SuggestError(f"not a file path under the RRD root: {rel!r}")
        path = Path(os.path.realpath(self.root / rel))
        # After resolving symlinks: a link that leads out is "not here", whatever lies behind it.
        if self.root not in path.parents or not path.is_file():
            raise SuggestError(f"no such RRD file under the root: {rel!r}", not_found=True)
        return path

    def data_sources(self, rel: str) -> list[str]:
        """Names of the data sources of file `rel`, in the file's order."""
        path = self.confine(rel)
        try:
            info = rrdtool.info(str(path))
        except rrdtool.OperationalError as exc:
            text = str(exc).replace(f"'{path}'", "file").replace(str(path), "file")
            if "mmaping file" in text and "Invalid argument" in text:
                text = "file is empty"
            raise SuggestError(f"cannot read {rel!r} as an RRD: {text}") from None
        found = []
        for key, value in info.items():
            m = _DS_KEY.fullmatch(key)
            if m is not None and isinstance(value, int):
                found.append((value, m.group(1)))
        return [name for _, name in sorted(found)]


def _union(sources: Iterable[Folder], partial: str, *, fold: bool) -> tuple[list[str], list[str]]:
    """Sorted subfolder and .rrd names of `sources` starting with `partial`.

    fold=False: exact case. fold=True: the names that match only when case is ignored.
    """
    dirs: set[str] = set()
    files: set[str] = set()
    # Merge first (set.update runs in C), then filter the few distinct names once:
    # a glob folder part merges hundreds of listings that mostly hold the same names.
    for folder in sources:
        if fold:
            dirs.update(folder.subdirs)
            files.update(folder.files)
        else:
            dirs.update(_prefixed(folder.subdirs, partial))
            files.update(_prefixed(folder.files, partial))
    hidden_ok = partial.startswith(".")
    want = partial.casefold()

    def keep(name: str) -> bool:
        if name.startswith(".") and not hidden_ok:
            return False
        return not fold or (name.casefold().startswith(want) and not name.startswith(partial))

    return sorted(filter(keep, dirs)), sorted(n for n in files if n.endswith(RRD_SUFFIX) and keep(n))


def _prefixed(names: list[str], prefix: str) -> list[str]:
    """The run of a sorted list that starts with `prefix` (two binary searches)."""
    if not prefix:
        return names
    # No name continues with U+10FFFF (a noncharacter), so this bounds every name starting with prefix.
    return names[bisect.bisect_left(names, prefix) : bisect.bisect_left(names, prefix + "\U0010ffff")]


Counter = Callable[[list[str], int], tuple[int, list[str]]]


def _counter(g: CompiledGlob) -> Counter:
    """For the last component of a glob: (how many of a sorted listing it takes, the first `want` of them).

    The usual shapes get a counter that runs in C; any other goes through the regex and CompiledGlob.takes.
    """
    name = g.parts[-1]
    if g.literal_name is not None:

        def literal(files: list[str], want: int) -> tuple[int, list[str]]:
            i = bisect.bisect_left(files, name)
            found = i < len(files) and files[i] == name
            return int(found), [name] if found and want else []

        return literal
    head, tail = name[:1], name[1:]
    if g.rrd_only and name == "*":
        tail = RRD_SUFFIX  # "*" takes the *.rrd files: count those
    if head == "*" and not _magic(tail) and (tail.endswith(RRD_SUFFIX) or not g.rrd_only):
        ending = tail + "\0"

        def suffix(files: list[str], want: int) -> tuple[int, list[str]]:
            # "*.rrd": names end at a NUL in the joined listing; str.count is ~5x a regex per name.
            count = ("\0".join(files) + "\0").count(ending) if tail else len(files)
            i = bisect.bisect_left(files, ".")
            if i < len(files) and files[i][:1] == ".":  # "*" skips hidden names
                count -= sum(1 for h in _prefixed(files, ".") if h.endswith(tail))
            return count, list(islice(filter(g.takes, files), want)) if count and want else []

        return suffix
    lead = name.split("*", 1)[0]
    if not g.rrd_only and name.endswith("*") and lead and not _magic(lead) and name[len(lead):].strip("*") == "":

        def prefix(files: list[str], want: int) -> tuple[int, list[str]]:
            run = _prefixed(files, lead)  # a pattern that names its leading "." may match hidden names
            return len(run), run[:want]

        return prefix

    def general(files: list[str], want: int) -> tuple[int, list[str]]:
        hits = list(filter(g.takes, files))
        return len(hits), hits[:want]

    return general


def _expand_folders(parts: list[str], folders: dict[str, Folder], limit: int | None,
                    budget: Budget) -> tuple[list[str], bool]:
    """Folders (index keys) matched by the folder components of a glob, as FileIndex.match reads them.

    Walks from the root through the listings, so a glob under a literal prefix
    only visits that subtree. Returns (folders, cut short by `limit` or `budget`).
    """
    current = [""] if "" in folders else []
    for i, part in enumerate(parts):
        if part == "**" and i and parts[i - 1] == "**":
            continue  # "**/**" is "**"
        if part == "**":
            found, cut = _below(current, folders, limit, budget)
        elif _magic(part):
            found, cut = _children(current, folders, part, limit, budget)
        else:
            found, cut = [rel + "/" + part if rel else part for rel in current], False
            found = [child for child in found if child in folders]
        if cut:
            return found, True
        current = list(dict.fromkeys(found))
        if not current:
            break
    return current, False


def _below(current: list[str], folders: dict[str, Folder], limit: int | None,
           budget: Budget) -> tuple[list[str], bool]:
    """Each of `current` and every non-hidden folder below it, each once."""
    if len(current) == 1:
        # The index lists folders in walk order, so one pass over its keys beats walking the listings
        # (3x at 100,000 folders).
        rel = current[0]
        below = rel + "/" if rel else ""
        skip = len(below)
        found = [rel] if rel else []
        for k in folders:
            if k.startswith(below) and "/." not in "/" + k[skip:]:
                found.append(k)
                if (limit is not None and len(found) > limit) or budget.over():
                    return found[:limit], True
        return found, False
    found, seen = [], set()
    for rel in current:
        stack = [rel]
        while stack:
            here = stack.pop()
            if here in seen:
                continue  # already reached from a folder above it: its subtree is in `found`
            seen.add(here)
            found.append(here)
            lead = here + "/" if here else ""
            stack.extend(lead + d for d in reversed(folders[here].subdirs)
                         if not d.startswith(".") and lead + d in folders)
            if (limit is not None and len(found) > limit) or budget.over():
                return found[:limit], True
    return found, False


def _children(current: list[str], folders: dict[str, Folder], part: str, limit: int | None,
              budget: Budget) -> tuple[list[str], bool]:
    """The subfolders of `current` whose names match the glob component `part`."""
    part_re = re.compile(translate_component(part) + r"\Z")
    found: list[str] = []
    for rel in current:
        lead = rel + "/" if rel else ""
        found.extend(lead + d for d in folders[rel].subdirs if part_re.match(d) and lead + d in folders)
        if (limit is not None and len(found) > limit) or budget.over():
            return found[:limit], True
    return found, False
