"""ntopng timeseries through REST API v2: wildcard expansion, concurrent ts.lua fetches, the breach rule.

The sibling of `sources/rrd.py`, used for `source = "ntopng"` thresholds. A
threshold names a schema (`host:traffic`) and a query (`ifid:0,host:*`). `ifid:*`
expands through interfaces.lua and `host:*` through host/active.lua. Then
every concrete (schema, query, window) is fetched once, with at most
`[ntopng] concurrency` requests in flight. Each label of the answer
(`bytes_sent`, ...) is one series, named `ntopng:<schema>{<query>}`, with the
label as its data source. It is evaluated with the same pure rule as RRD
files. The HTTP side (auth, retries, both answer shapes) lives in `ntopng_client`.

Window: as for RRD files, the points with `start < time <= end`, whatever
ntopng version answers (they shift their first point by one step).
Missing labels: ntopng 5.6 drops every series whose points sum to zero, so a
label listed in the threshold but absent from a 5.x answer is evaluated as
zeros. A 6.x answer lists every metric of the schema, so a label absent from
it is a mistake and gets an ERROR row (a typo must not stay silent).
Failures: an unreachable ntopng, a 5xx after retries, `rc != 0` or an auth
failure become ERROR outcomes. There is one per FIRING series of the threshold,
so those stay FIRING, or one with ds "" when none is firing. A FIRING series
that the threshold's schema and query no longer match is GONE (the engine
closes it); one that still matches but left the listing (an idle host) is
fetched anyway, so it resolves or stays FIRING on its own data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from rrdalarm.common.secrets import SecretError
from rrdalarm.model.definitions import Threshold
from rrdalarm.model.errors import ConfigError
from rrdalarm.rules import timespec
from rrdalarm.rules.evaluate import Value, summarize, window_slice
from rrdalarm.sources.base import (
    Fail,
    Field,
    Outcome,
    OutcomeKind,
    ProgressCallback,
    SeriesKey,
    Shard,
    Source,
    SourceReport,
    criterion_of,
    outcome_of,
)
from rrdalarm.sources.ntopng_client import (
    ACTIVE_HOSTS_PATH,
    INTERFACES_PATH,
    TS_PATH,
    NtopngClient,
    NtopngError,
    TsAnswer,
    ts_query,
)

_T = TypeVar("_T")

Tags = tuple[tuple[str, str], ...]
"""A ts_query as ordered (tag, value) pairs; order is kept so series names are stable."""

# The finest step ntopng writes (the ts_second schemas). With `limit` at least
# window / MIN_STEP, ntopng never averages points together, whatever the schema's step.
MIN_STEP = 1
LIMIT_MARGIN = 2
WILDCARD_TAGS = ("ifid", "host")

_SERIES_RE = re.compile(r"^ntopng:(?P<schema>[^{}]+)\{(?P<query>[^{}]*)\}$")


def split_tag(part: str) -> tuple[str, str] | None:
    """`host:fe80::1` -> ("host", "fe80::1"): the value may hold ':' (IPv6), as in ntopng; None if not tag:value."""
    name, sep, value = part.strip().partition(":")
    return (name, value) if sep and name and value else None


def parse_query(query: str) -> Tags:
    """`ifid:0,host:*` -> (("ifid", "0"), ("host", "*")); ValueError for a part that is not tag:value."""
    tags = []
    for part in query.split(","):
        tag = split_tag(part)
        if tag is None:
            raise ValueError(f"{part.strip()!r} is not tag:value")
        tags.append(tag)
    return tuple(tags)


def query_problem(query: object) -> str | None:
    """Why `query` is not an ntopng ts_query (tag:value,... with * allowed as a value), or None."""
    if not isinstance(query, str) or not query.strip():
        return "must be an ntopng ts_query such as 'ifid:0,host:*'"
    names = []
    for part in query.split(","):
        tag = split_tag(part)
        if tag is None or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tag[0]):
            return f"{part.strip()!r} is not tag:value (as in 'ifid:0,host:192.168.1.1')"
        name, value = tag
        if any(c in value for c in " \"'&;") or ("*" in value and value != "*"):
            return f"{part.strip()!r}: a value is literal or exactly '*'"
        names.append(name)
    if "ifid" not in names:
        return "needs an 'ifid' tag (ntopng requires it), e.g. 'ifid:0,host:*'"
    if len(set(names)) != len(names):
        return "a tag appears twice"
    return None


def series_name(schema: str, tags: Tags) -> str:
    """The series name in reports and the database: `ntopng:host:traffic{ifid:0,host:192.168.1.10}`."""
    return f"ntopng:{schema}{{{ts_query(tags)}}}"


def parse_series_name(name: str) -> tuple[str, Tags] | None:
    """(schema, tags) of a name made by series_name, or None."""
    m = _SERIES_RE.match(name)
    if not m:
        return None
    try:
        return m.group("schema"), parse_query(m.group("query"))
    except ValueError:
        return None


def matches(pattern: Tags, tags: Tags) -> bool:
    """True when concrete `tags` is one expansion of `pattern` (same tags in order, `*` matches any value)."""
    return len(pattern) == len(tags) and all(
        pk == k and (pv == "*" or pv == v) for (pk, pv), (k, v) in zip(pattern, tags, strict=True)
    )


def fetch_limit(start: int, end: int) -> int:
    """ts.lua's `limit` for a window: enough points that ntopng never averages them together."""
    return (end - start) // MIN_STEP + LIMIT_MARGIN


def not_found_message(schema: str) -> str:
    """Why an answer that is not found (`TsAnswer.found` false) has no points."""
    return f"ntopng has no {schema} data for this query (unknown schema, tags or host, or nothing stored yet)"


def concrete_queries(pattern: Tags, ifids: Sequence[str],
                     hosts_of: Callable[[int], list[str]]) -> tuple[list[Tags], list[str]]:
    """The queries of `pattern` over these interfaces (and, for `host:*`, their hosts), and what failed.

    The one expansion rule, for a check and for `rrdalarm ntopng series` alike;
    `hosts_of` may raise NtopngError, which becomes a problem of that interface.
    """
    out: list[Tags] = []
    problems: list[str] = []
    every_host = dict(pattern).get("host") == "*"
    for ifid in ifids:
        base = _with_tag(pattern, "ifid", ifid)
        if not every_host:
            out.append(base)
            continue
        if not ifid.isdigit():
            problems.append(f"ifid {ifid!r} is not a number, so its hosts cannot be listed")
            continue
        try:
            found = hosts_of(int(ifid))
        except NtopngError as exc:
            problems.append(str(exc))
            continue
        out.extend(_with_tag(base, "host", h) for h in found)
    return out, problems


def _with_tag(tags: Tags, key: str, value: str) -> Tags:
    return tuple((k, value) if k == key else (k, v) for k, v in tags)


def expand(client: NtopngClient, pattern: Tags) -> list[Tags]:
    """The concrete queries of `pattern` (`ifid:*` and `host:*` listed now), one request at a time.

    For one-off use such as `rrdalarm ntopng series`; a check expands all its
    thresholds together and concurrently. Raises NtopngError.
    """
    tags = dict(pattern)
    ifids = [str(i) for i, _ in client.interfaces()] if tags.get("ifid") == "*" else [tags.get("ifid", "")]
    failed: list[NtopngError] = []

    def hosts_of(ifid: int) -> list[str]:
        try:
            return client.active_hosts(ifid)
        except NtopngError as exc:
            failed.append(exc)
            raise

    out, problems = concrete_queries(pattern, ifids, hosts_of)
    if failed:
        raise failed[0]
    if problems:
        raise NtopngError(ACTIVE_HOSTS_PATH, problems[0])
    return out


def _guarded(path: str, fn: Callable[..., _T], *args: object) -> _T:
    """Run one client call in a worker: any surprise in an answer becomes an NtopngError, never a crash."""
    try:
        return fn(*args)
    except NtopngError:
        raise
    except Exception as exc:  # the contract: a bad answer is an ERROR row, the check goes on
        raise NtopngError(path, f"unexpected answer ({type(exc).__name__}: {exc})") from exc


@dataclass
class _Plan:
    """One threshold on its way: resolved window and pattern, then the concrete queries it covers."""

    t: Threshold
    start: int
    end: int
    pattern: Tags
    firing: list[tuple[str, str]]  # (series, ds) of this threshold now FIRING
    concretes: list[Tags] = field(default_factory=list)
    listing_error: str | None = None


FetchKey = tuple[str, Tags, int, int]


class NtopngSource(Source):
    """Thresholds over ntopng timeseries, read through its REST API v2."""

    name = "ntopng"
    label = "ntopng REST API"
    fields: ClassVar[Mapping[str, Field]] = {
        "schema": Field(required=True, label="ntopng schema", help="a timeseries schema such as 'host:traffic'"),
        "query": Field(required=True, label="ntopng query", help="tag:value list such as 'ifid:0,host:*'"),
    }
    series_key = "label"
    series_rule = "must be a list of series labels such as 'bytes_sent'"
    series_prefix = "ntopng:"

    @classmethod
    def read_fields(cls, raw: Mapping[str, Any], fail: Fail, foreign: Mapping[str, str]) -> dict[str, Any]:
        if "glob" in raw:
            raise fail("glob", "an ntopng threshold has schema and query, not a glob")
        schema, query = raw.get("schema", ""), raw.get("query", "")
        if not isinstance(schema, str) or not re.fullmatch(r"[A-Za-z0-9_]+:[A-Za-z0-9_:]+", schema):
            raise fail("schema", f"must be an ntopng timeseries schema such as 'host:traffic', not {schema!r}")
        problem = query_problem(query)
        if problem:
            raise fail("query", problem)
        super().read_fields(raw, fail, foreign)
        return {"schema": schema, "query": query.replace(" ", "")}

    @classmethod
    def describe(cls, t: Threshold) -> str:
        return f"{cls.series_prefix}{t.schema}{{{t.query}}}"

    @classmethod
    def display(cls, t: Threshold) -> str:
        return f"ntopng {t.schema} {{{t.query}}}"

    @classmethod
    def backtest_unsupported(cls) -> str | None:
        return "Backtests read RRD files only, so an ntopng threshold can be previewed but not replayed."

    def check(
        self,
        thresholds: Sequence[Threshold],
        now: int,
        *,
        firing: frozenset[SeriesKey],
        want_ok: bool,
        progress: ProgressCallback | None = None,
        shard: Shard | None = None,
    ) -> SourceReport:
        # Not shardable: the base class runs it whole, in shard 0 of a split check.
        report = SourceReport()
        if not thresholds:
            return report
        nt = self.settings.ntopng
        if not nt.url:
            raise ConfigError(self.settings.path, "ntopng thresholds need the ntopng address: set [ntopng] url",
                              field="url")
        firing_of: dict[int, list[tuple[str, str]]] = {}
        for tid, series, ds in sorted(firing):
            firing_of.setdefault(tid, []).append((series, ds))
        try:
            client = NtopngClient(nt)
        except SecretError as exc:
            for t in thresholds:
                self._fail_threshold(report, t, _raw_name(t), str(exc), firing_of.get(t.id, []))
            return report
        with client, ThreadPoolExecutor(max_workers=max(1, nt.concurrency),
                                        thread_name_prefix="ntopng") as pool:
            plans = self._plans(thresholds, now, firing_of, report)
            self._expand(plans, client, pool)
            answers = self._fetch(plans, client, pool, progress)
            for plan in plans:
                self._evaluate(plan, answers, want_ok, report)
            report.files_checked = client.calls
        return report

    # ------------------------------------------------------------ planning

    def _plans(self, thresholds: Sequence[Threshold], now: int, firing_of: dict[int, list[tuple[str, str]]],
               report: SourceReport) -> list[_Plan]:
        plans = []
        for t in thresholds:
            mine = firing_of.get(t.id, [])
            try:
                start, end = timespec.resolve_window(t.start, t.end, now)
                pattern = parse_query(t.query)
            except (timespec.TimeSpecError, ValueError) as exc:
                self._fail_threshold(report, t, _raw_name(t), str(exc), mine)
                continue
            bad = [k for k, v in pattern if v == "*" and k not in WILDCARD_TAGS]
            problem = f"wildcard only for ifid and host, not for {', '.join(bad)}" if bad else None
            if "ifid" not in dict(pattern):
                problem = "the query needs an ifid tag (ntopng requires it), e.g. 'ifid:0,host:*'"
            if problem:
                self._fail_threshold(report, t, _raw_name(t), problem, mine)
                continue
            plans.append(_Plan(t, start, end, pattern, mine))
        return plans

    def _expand(self, plans: list[_Plan], client: NtopngClient, pool: ThreadPoolExecutor) -> None:
        """Fill each plan's concrete queries; listings are asked once per check and run concurrently."""
        # First every listing request is sent, then every plan waits for its answers.
        ifids_of, hosts = self._send_listings(plans, client, pool)
        for i, p in enumerate(plans):
            if p.listing_error is None:
                self._fill(p, ifids_of[i], hosts)
                self._add_firing(p)

    @staticmethod
    def _send_listings(plans: list[_Plan], client: NtopngClient, pool: ThreadPoolExecutor,
                       ) -> tuple[dict[int, list[str]], dict[int, Future[list[str]]]]:
        """Each plan's interfaces (by index; a plan whose listing failed says so) and the host listings asked."""
        interfaces: Future[list[tuple[int, str]]] | None = None
        if any(dict(p.pattern).get("ifid") == "*" for p in plans):
            interfaces = pool.submit(_guarded, INTERFACES_PATH, client.interfaces)
        hosts: dict[int, Future[list[str]]] = {}
        ifids_of: dict[int, list[str]] = {}
        for i, p in enumerate(plans):
            tags = dict(p.pattern)
            if tags.get("ifid") == "*":
                assert interfaces is not None
                try:
                    ifids_of[i] = [str(ifid) for ifid, _name in interfaces.result()]
                except NtopngError as exc:
                    p.listing_error = str(exc)
                    continue
            else:
                ifids_of[i] = [tags["ifid"]]
            if tags.get("host") == "*":
                for ifid in ifids_of[i]:
                    if ifid.isdigit() and int(ifid) not in hosts:
                        hosts[int(ifid)] = pool.submit(_guarded, ACTIVE_HOSTS_PATH, client.active_hosts, int(ifid))
        return ifids_of, hosts

    @staticmethod
    def _fill(p: _Plan, ifids: list[str], hosts: dict[int, Future[list[str]]]) -> None:
        """The plan's concrete queries over these interfaces (and their hosts, for host:*)."""
        concretes, problems = concrete_queries(p.pattern, ifids, lambda ifid: hosts[ifid].result())
        p.concretes.extend(concretes)
        if problems:
            p.listing_error = "; ".join(problems)

    @staticmethod
    def _add_firing(p: _Plan) -> None:
        """FIRING series outside the expansion are fetched too, so an idle host can still resolve."""
        known = {series_name(p.t.schema, c) for c in p.concretes}
        for series, _ds in p.firing:
            if series in known:
                continue
            parsed = parse_series_name(series)
            if parsed is not None and parsed[0] == p.t.schema and matches(p.pattern, parsed[1]) \
                    and p.listing_error is None:
                p.concretes.append(parsed[1])
                known.add(series)

    def _fetch(self, plans: list[_Plan], client: NtopngClient, pool: ThreadPoolExecutor,
               progress: ProgressCallback | None) -> dict[FetchKey, TsAnswer | NtopngError]:
        """Every distinct (schema, query, window) once, concurrently."""
        futures: dict[Future[TsAnswer], FetchKey] = {}
        seen: set[FetchKey] = set()
        for p in plans:
            limit = fetch_limit(p.start, p.end)
            for tags in p.concretes:
                key = (p.t.schema, tags, p.start, p.end)
                if key not in seen:
                    seen.add(key)
                    fut = pool.submit(_guarded, TS_PATH, client.timeseries, p.t.schema, dict(tags), p.start, p.end,
                                      limit)
                    futures[fut] = key
        answers: dict[FetchKey, TsAnswer | NtopngError] = {}
        total = len(futures)
        for done, fut in enumerate(as_completed(futures), 1):
            try:
                answers[futures[fut]] = fut.result()
            except NtopngError as exc:
                answers[futures[fut]] = exc
            if progress:
                progress(done, total)
        return answers

    # ------------------------------------------------------------ evaluation

    def _evaluate(self, p: _Plan, answers: dict[FetchKey, TsAnswer | NtopngError], want_ok: bool,
                  report: SourceReport) -> None:
        t = p.t
        covered: set[str] = set()
        firing_by_series: dict[str, list[str]] = {}
        for s, ds in p.firing:
            if ds:
                firing_by_series.setdefault(s, []).append(ds)
        report.watched[t.id] = len(p.concretes)
        for tags in p.concretes:
            series = series_name(t.schema, tags)
            covered.add(series)
            firing_ds = firing_by_series.get(series, [])
            got = answers[(t.schema, tags, p.start, p.end)]
            if isinstance(got, NtopngError):
                for ds in firing_ds or [""]:
                    self._add(report, Outcome(t.id, series, ds, OutcomeKind.ERROR, message=str(got)))
                continue
            self._evaluate_answer(p, series, got, firing_ds, want_ok, report)
        stray = [(s, ds) for s, ds in p.firing if s not in covered]
        if p.listing_error is not None:
            # Listing failed: keep every FIRING series as it is, and say why.
            for s, ds in stray:
                self._add(report, Outcome(t.id, s, ds, OutcomeKind.ERROR, message=p.listing_error))
            if not stray:
                self._add(report, Outcome(t.id, _raw_name(t), "", OutcomeKind.ERROR, message=p.listing_error))
            return
        # The listing worked and a series that still matched the pattern would have been fetched
        # (see _add_firing): these are outside the threshold's schema and query, no longer watched.
        for s, ds in stray:
            self._add(report, Outcome(t.id, s, ds, OutcomeKind.GONE,
                                      message="series no longer matched by the threshold's schema and query"))
        if not p.concretes:
            self._add(report, Outcome(t.id, _raw_name(t), "", OutcomeKind.ERROR,
                                      message="query matches no series (no interface or no active local host)"))

    def _evaluate_answer(self, p: _Plan, series: str, answer: TsAnswer, firing_ds: list[str], want_ok: bool,
                         report: SourceReport) -> None:
        t = p.t
        if not answer.found:
            for ds in list(t.ds) or firing_ds or [""]:
                self._add(report, Outcome(t.id, series, ds, OutcomeKind.NO_DATA, message=not_found_message(t.schema)))
            return
        wanted = list(t.ds) or [*answer.labels, *(ds for ds in firing_ds if ds not in answer.labels)]
        if not wanted:
            self._add(report, Outcome(t.id, series, "", OutcomeKind.NO_DATA,
                                      message="no series in ntopng's answer (5.6 drops all-zero series; "
                                              "list the labels to evaluate them as zeros)"))
            return
        lo, hi = window_slice(answer.first, answer.step, p.start, p.end)
        first = answer.first + lo * answer.step
        for label in wanted:
            got = answer.labels.get(label)
            values: Sequence[Value]
            if got is not None:
                values = got[lo:hi]
            elif answer.may_drop_zero_series:
                values = [0.0] * (hi - lo)  # ntopng 5.6 left it out because every point was zero
            else:
                have = ", ".join(answer.labels) or "none"
                self._add(report, Outcome(t.id, series, label, OutcomeKind.ERROR,
                                          message=f"no series '{label}' in ntopng's {t.schema} answer "
                                                  f"(it has: {have})"))
                continue
            summary = summarize(values, first, answer.step)
            stale = t.tuning.stale_after and summary.newest and summary.newest[0] < p.end - t.tuning.stale_after
            outcome = (Outcome(t.id, series, label, OutcomeKind.STALE, time=summary.newest[0] if summary.newest
                               else None, message="not updated since") if stale
                       else outcome_of(summary, criterion_of(t), t.id, series, label, want_ok, "",
                                       label in firing_ds))
            if outcome is None:
                report.series_checked += 1
            else:
                self._add(report, outcome)

    @staticmethod
    def _add(report: SourceReport, outcome: Outcome) -> None:
        report.outcomes.append(outcome)
        report.series_checked += 1

    def _fail_threshold(self, report: SourceReport, t: Threshold, pattern_series: str, message: str,
                        firing: list[tuple[str, str]]) -> None:
        """The whole threshold could not be read: an ERROR per FIRING series (they stay FIRING), else one."""
        for series, ds in firing:
            self._add(report, Outcome(t.id, series, ds, OutcomeKind.ERROR, message=message))
        if not firing:
            self._add(report, Outcome(t.id, pattern_series, "", OutcomeKind.ERROR, message=message))


def _raw_name(t: Threshold) -> str:
    """The series name of a threshold's own query, wildcards included (for errors about the whole threshold)."""
    return NtopngSource.describe(t)
