"""SQL history: check runs, per-series state and alarm events (SQLAlchemy 2).

The store owns the engine's lifetime and the schema (Alembic migrations in
rrdalarm/store/migrations, applied on open). SQLite runs in WAL mode so that
readers (the web pages, `rrdalarm history`) never block a check.
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    CursorResult,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from rrdalarm.common.errors import BadDatabaseURL, RequeueError, StoreError
from rrdalarm.common.fileutil import create_private_file, make_private_dirs
from rrdalarm.model.control import Acknowledgement
from rrdalarm.model.records import (
    NewEvent,
    PlannedDelivery,
    Recorded,
    RunSummary,
    StateChange,
    StateView,
    StoredState,
)
from rrdalarm.model.states import DeliveryStatus, EventKind, State


class Base(DeclarativeBase):
    pass


class CheckRun(Base):
    __tablename__ = "check_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[int] = mapped_column(BigInteger, index=True)
    duration_s: Mapped[float] = mapped_column(Float)
    files_checked: Mapped[int] = mapped_column(Integer)
    series_checked: Mapped[int] = mapped_column(Integer)
    alarms_fired: Mapped[int] = mapped_column(Integer)
    firing: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)


class SeriesState(Base):
    """One row per series that has ever fired; a series never seen firing is OK by default."""

    __tablename__ = "series_state"
    __table_args__ = (UniqueConstraint("threshold_id", "series", "ds", name="uq_series_state_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    threshold_id: Mapped[int] = mapped_column(Integer)
    series: Mapped[str] = mapped_column(String(1024))
    ds: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), index=True)
    active_at: Mapped[int | None] = mapped_column(BigInteger)
    fired_at: Mapped[int | None] = mapped_column(BigInteger)
    resolved_at: Mapped[int | None] = mapped_column(BigInteger)
    last_sent_at: Mapped[int | None] = mapped_column(BigInteger)
    last_value: Mapped[float | None] = mapped_column(Float)
    last_time: Mapped[int | None] = mapped_column(BigInteger)
    # JSON list of the action identities told of this firing (dispatch.action_identity); NULL: not tracked.
    notified: Mapped[str | None] = mapped_column(Text)
    # The thresholds file (real path) its threshold came from: only a check of that file may call it deleted.
    origin: Mapped[str | None] = mapped_column(String(1024))
    clear_since: Mapped[int | None] = mapped_column(BigInteger)
    changes: Mapped[str | None] = mapped_column(Text)  # JSON list of epoch seconds
    flapping_since: Mapped[int | None] = mapped_column(BigInteger)
    stale_since: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(16))
    # Quieted by a silence or maintenance window since then, until then (its planned end) at the last check.
    silenced_since: Mapped[int | None] = mapped_column(BigInteger)
    silenced_until: Mapped[int | None] = mapped_column(BigInteger)
    # The acknowledgement of the current firing (cleared when it resolves).
    ack_by: Mapped[str | None] = mapped_column(String(64))
    ack_at: Mapped[int | None] = mapped_column(BigInteger)
    ack_comment: Mapped[str | None] = mapped_column(Text)


class AlarmEvent(Base):
    __tablename__ = "alarm_events"
    __table_args__ = (Index("ix_alarm_events_threshold_at", "threshold_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("check_runs.id"), index=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    threshold_id: Mapped[int] = mapped_column(Integer)
    threshold_name: Mapped[str] = mapped_column(String(255))
    series: Mapped[str] = mapped_column(String(1024))
    ds: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(8))
    limit: Mapped[float] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)
    time: Mapped[int | None] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16), default="warning", server_default="warning")
    unit: Mapped[str] = mapped_column(String(64), default="", server_default="")
    details: Mapped[str | None] = mapped_column(Text)
    # Refs of the silences and windows that kept it from the actions (comma-separated); NULL: not silenced.
    silenced: Mapped[str | None] = mapped_column(Text)


class SilenceRow(Base):
    """A silence: matchers, when, why and who; `expired_by` names who ended it early."""

    __tablename__ = "silences"
    __table_args__ = (Index("ix_silences_ends_at", "ends_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    threshold_id: Mapped[int | None] = mapped_column(Integer)
    series: Mapped[str | None] = mapped_column(String(1024))
    ds: Mapped[str | None] = mapped_column(String(255))
    labels: Mapped[str | None] = mapped_column(Text)  # JSON object
    severity: Mapped[str | None] = mapped_column(String(16))
    starts_at: Mapped[int] = mapped_column(BigInteger)
    ends_at: Mapped[int] = mapped_column(BigInteger)
    comment: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expired_by: Mapped[str | None] = mapped_column(String(64))


class DeliveryRow(Base):
    """The outbox: one message to send, written in the same transaction as its events."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("check_runs.id"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(255))
    params: Mapped[str] = mapped_column(Text)  # JSON; secrets only as references or inline as configured
    status: Mapped[str] = mapped_column(String(16))  # pending, sent, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    lease_until: Mapped[int | None] = mapped_column(BigInteger)
    # When it was queued or last requeued, on the deliverer's (real) clock: its retry horizon starts there.
    # NULL: queued by an older version; the first claim sets it.
    queued_at: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Read with the row (the rows outlive their session), in the order the delivery carries them.
    links: Mapped[list[DeliveryEvent]] = relationship(
        lazy="selectin", order_by="DeliveryEvent.position", cascade="all, delete-orphan")

    @property
    def event_ids(self) -> list[int]:
        return [link.event_id for link in self.links]


class DeliveryEvent(Base):
    """One event a delivery carries, at its place in the message."""

    __tablename__ = "delivery_events"

    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alarm_events.id"), index=True)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), index=True)
    at: Mapped[int] = mapped_column(BigInteger)
    duration_s: Mapped[float] = mapped_column(Float)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """Someone who may log in to the web pages: an admin edits, a viewer reads."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)


class AuditEntry(Base):
    """One change to the thresholds file made through the web pages: who, when, what (a unified diff)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    user: Mapped[str] = mapped_column(String(64))
    # add, edit, duplicate, enable, disable, delete; silence, expire, extend, ack (diff then says what)
    change: Mapped[str] = mapped_column(String(16))
    threshold_id: Mapped[int | None] = mapped_column(Integer)
    threshold_name: Mapped[str] = mapped_column(String(255))
    file: Mapped[str] = mapped_column(String(1024))
    diff: Mapped[str] = mapped_column(Text)


class CheckLockRow(Base):
    """The check lock where the database has no advisory locks: who holds it, until when (a lease)."""

    __tablename__ = "check_lock"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[float | None] = mapped_column(Float)


SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a connection waits for another writer, unless the URL says (`?timeout=SECONDS`)."""


def _busy_timeout_ms(parsed: URL) -> int:
    raw = parsed.query.get("timeout")
    if raw is None:
        return int(SQLITE_BUSY_TIMEOUT_S * 1000)
    text = raw if isinstance(raw, str) else raw[-1]
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        safe = parsed.render_as_string(hide_password=True)
        raise BadDatabaseURL(f"database {safe}: timeout must be a number of seconds, not {text!r}")
    return int(seconds * 1000)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, busy_ms: int = int(SQLITE_BUSY_TIMEOUT_S * 1000)) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    # WAL is a property of the file, set once. Switching needs an exclusive lock and SQLite
    # answers "locked" at once, without the busy timeout, while another connection works on
    # the new file: wait a little for the other connection (which is switching it too).
    for attempt in range(50):
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                break
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.1)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    """An SQLAlchemy engine; SQLite files and their folder are created as needed."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadDatabaseURL(f"database URL {url!r} is not a valid SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        try:
            make_private_dirs(Path(parsed.database).parent)
        except NotADirectoryError as exc:  # a file stands where the path needs a folder: the URL is wrong
            raise BadDatabaseURL(f"database {url}: cannot create its folder: {exc.strerror}") from None
        except OSError as exc:
            raise StoreError(f"database {url}: cannot create its folder: {exc.strerror}") from None
        # SQLite would create it 0644 through the umask; its -wal and -shm files copy its mode.
        try:
            create_private_file(Path(parsed.database))
        except OSError as exc:
            raise StoreError(f"database {url}: cannot create it: {exc.strerror}") from None
    # Before the driver sees it: SQLAlchemy would turn a bad one into a bare ValueError.
    busy_ms = _busy_timeout_ms(parsed) if parsed.get_backend_name() == "sqlite" else 0
    try:
        engine = create_engine(url, future=True)
    except ImportError as exc:  # its driver is not installed
        postgresql = parsed.get_backend_name() == "postgresql"
        hint = "; install it with: pip install 'rrdalarm[postgresql]'" if postgresql else ""
        safe = parsed.render_as_string(hide_password=True)
        raise BadDatabaseURL(f"database {safe}: driver missing: {exc}{hint}") from None
    except ArgumentError as exc:  # an unknown kind of database
        raise BadDatabaseURL(f"database {parsed.render_as_string(hide_password=True)}: {exc}") from None
    except SQLAlchemyError as exc:
        raise StoreError(f"database {parsed.render_as_string(hide_password=True)}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_ms=busy_ms))
    return engine


class Store:
    """Database access for checks and history; every write is one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.safe_url = make_url(url).render_as_string(hide_password=True)
        self._troubled: tuple[int | None, tuple[StoredState, ...]] | None = None
        self._troubled_lock = threading.Lock()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (no-op when current)."""
        from rrdalarm.store.migrate import upgrade

        try:
            upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.safe_url}: {exc.__class__.__name__}: {_first_line(exc)}") from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.safe_url}: {_first_line(exc)}") from None

    def states(self, threshold_ids: Iterable[int]) -> dict[tuple[int, str, str], StateView]:
        ids = list(threshold_ids)
        with self.session() as s:
            rows = s.scalars(select(SeriesState).where(SeriesState.threshold_id.in_(ids))).all()
            return {(r.threshold_id, r.series, r.ds): _view(r) for r in rows}

    def troubled_states(self) -> tuple[StoredState, ...]:
        """Series that are FIRING, stale or flapping, with their last recorded values.

        Kept until the next run: every write of the states (a check, acknowledgements) records a run in
        the same transaction, so the newest run's id tells whether they can have changed. A page that
        shows them on every request thus reads them once per check, however many series fire; the same
        tuple comes back until then, so such a page may keep what it made of it too.
        """
        q = select(*SeriesState.__table__.columns).where(or_(SeriesState.state == State.FIRING.value,
                                                             SeriesState.stale_since.is_not(None),
                                                             SeriesState.flapping_since.is_not(None)))
        # One thread reads them after a check; the pages asking meanwhile wait for its copy.
        with self._troubled_lock, self.session() as s:
            version = s.scalar(select(func.max(CheckRun.id)))
            held = self._troubled
            if held is not None and held[0] == version:
                return held[1]
            found = tuple(StoredState((r.threshold_id, r.series, r.ds), _view(r), r.last_value, r.last_time)
                          for r in s.execute(q))
            self._troubled = (version, found)
        return found

    def firing_elsewhere(self, threshold_ids: Iterable[int]) -> dict[tuple[int, str, str], StateView]:
        """FIRING series of every threshold not in `threshold_ids` (disabled or deleted ones)."""
        ids = list(threshold_ids)
        q = select(SeriesState).where(SeriesState.state == State.FIRING.value, SeriesState.threshold_id.not_in(ids))
        with self.session() as s:
            return {(r.threshold_id, r.series, r.ds): _view(r) for r in s.scalars(q)}

    def told_of_firing(self, key: tuple[int, str, str], since: int | None) -> tuple[AlarmEvent | None,
                                                                                  list[tuple[str, Any]]]:
        """The newest fire or repeat event of a series since `since`, and the (action, params) it was sent to."""
        tid, series, ds = key
        q = select(AlarmEvent).where(
            AlarmEvent.threshold_id == tid, AlarmEvent.series == series, AlarmEvent.ds == ds,
            AlarmEvent.kind.in_((EventKind.FIRED.value, EventKind.REPEAT.value)), AlarmEvent.at >= (since or 0),
        ).order_by(AlarmEvent.id.desc())
        with self.session() as s:
            events = list(s.scalars(q))
        targets: dict[str, tuple[str, Any]] = {}
        for d, _ in self.deliveries_with_events(e.id for e in events):
            targets.setdefault(f"{d.action}\0{d.params}", (d.action, json.loads(d.params)))
        return (events[0] if events else None), list(targets.values())

    def record_check(
        self,
        summary: RunSummary,
        changes: Sequence[StateChange],
        events: Sequence[NewEvent],
        deliveries: Sequence[PlannedDelivery] = (),
        removed: Sequence[tuple[int, str, str]] = (),
    ) -> Recorded:
        """Write the run, changed states, new events and their outbox rows, and drop closed states, at once.

        Each threshold's states and events are written under a savepoint: rows the database
        refuses (a value it cannot hold, say) leave that threshold out, named in
        `Recorded.unrecorded` and counted as an error of the run, and never cost the others
        theirs. A database that fails as a whole (locked, full) still fails the whole write.
        """
        with self.session() as s:
            run = CheckRun(**summary.__dict__)
            s.add(run)
            s.flush()
            ids: dict[int, int] = {}
            unrecorded: dict[int, str] = {}
            touched = {c.key[0] for c in changes} | {e.threshold_id for e in events} | {k[0] for k in removed}
            for tid in sorted(touched):
                mine = [(i, e) for i, e in enumerate(events) if e.threshold_id == tid]
                try:
                    with s.begin_nested():
                        self._drop_states(s, [k for k in removed if k[0] == tid])
                        self._write_states(s, [c for c in changes if c.key[0] == tid])
                        rows = [AlarmEvent(run_id=run.id, at=summary.started_at, **e.__dict__) for _, e in mine]
                        s.add_all(rows)
                        s.flush()
                        ids.update((i, r.id) for (i, _), r in zip(mine, rows, strict=True))
                except (IntegrityError, DataError, OverflowError, ValueError) as exc:
                    # The reason may quote the very text the database refused (a lone surrogate, say).
                    unrecorded[tid] = _first_line(exc).encode("utf-8", "backslashreplace").decode("utf-8")
            if unrecorded:
                run.errors += len(unrecorded)
            _write_deliveries(s, run, deliveries, ids)
            return Recorded(run.id, [ids[i] for i in sorted(ids)], unrecorded)

    @staticmethod
    def _write_states(s: Session, changes: Sequence[StateChange]) -> None:
        if not changes:
            return
        existing = {
            (r.threshold_id, r.series, r.ds): r
            for r in s.scalars(select(SeriesState).where(SeriesState.threshold_id.in_({c.key[0] for c in changes})))
        }
        for c in changes:
            row = existing.get(c.key)
            if row is None:
                row = existing[c.key] = SeriesState(threshold_id=c.key[0], series=c.key[1], ds=c.key[2])
                s.add(row)
            row.state = c.state.value
            row.active_at = c.active_at
            row.fired_at = c.fired_at
            row.resolved_at = c.resolved_at
            row.last_sent_at = c.last_sent_at
            row.last_value = c.last_value
            row.last_time = c.last_time
            row.notified = None if c.notified is None else json.dumps(sorted(c.notified))
            row.origin = c.origin
            row.clear_since = c.clear_since
            row.changes = json.dumps(list(c.changes)) if c.changes else None
            row.flapping_since = c.flapping_since
            row.stale_since = c.stale_since
            row.reason = c.reason
            row.silenced_since = c.silenced_since
            row.silenced_until = c.silenced_until
            ack = c.ack
            row.ack_by, row.ack_at, row.ack_comment = (ack.by, ack.at, ack.comment) if ack else (None, None, None)

    @staticmethod
    def _drop_states(s: Session, keys: Sequence[tuple[int, str, str]]) -> None:
        for tid, series, ds in keys:
            s.execute(delete(SeriesState).where(
                SeriesState.threshold_id == tid, SeriesState.series == series, SeriesState.ds == ds))

    def events(
        self,
        threshold: int | None = None,
        status: str | None = None,
        since: int | None = None,
        limit: int = 50,
        repeats: bool = True,
    ) -> list[AlarmEvent]:
        """Newest events first, filtered (without re-arm repeats when `repeats` is false)."""
        q = select(AlarmEvent).order_by(AlarmEvent.at.desc(), AlarmEvent.id.desc()).limit(limit)
        if not repeats:
            q = q.where(AlarmEvent.kind != EventKind.REPEAT.value)
        if threshold is not None:
            q = q.where(AlarmEvent.threshold_id == threshold)
        if status:
            q = q.where(func.upper(AlarmEvent.status) == status.upper())
        if since is not None:
            q = q.where(AlarmEvent.at >= since)
        with self.session() as s:
            return list(s.scalars(q).all())

    def deliveries(
        self, since: int | None = None, limit: int = 50
    ) -> list[tuple[DeliveryRow, list[DeliveryAttempt]]]:
        """Newest deliveries first, each with its attempts (oldest first)."""
        q = select(DeliveryRow).order_by(DeliveryRow.created_at.desc(), DeliveryRow.id).limit(limit)
        if since is not None:
            q = q.where(DeliveryRow.created_at >= since)
        with self.session() as s:
            rows = list(s.scalars(q).all())
            attempts: dict[str, list[DeliveryAttempt]] = {r.id: [] for r in rows}
            for a in s.scalars(
                select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(attempts)).order_by(DeliveryAttempt.id)
            ):
                attempts[a.delivery_id].append(a)
            return [(r, attempts[r.id]) for r in rows]

    # The outbox worker (rrdalarm/delivery/outbox.py).

    def claim_deliveries(self, now: int, lease_s: int, limit: int, only: Collection[str] | None = None,
                         skip: Collection[str] = ()) -> list[Claimed]:
        """Due deliveries (of the ids in `only`, not in `skip`) that this process now holds the lease of.

        Per action target (action and parameters) deliveries go out one at a time, in the order
        they were written: one waits while an older one of its target is pending (retrying, or
        being sent), so a receiver hears of a series' events oldest first. Only the oldest pending
        delivery of each target (read from every pending row, leased or not) may be claimed. On
        PostgreSQL the claim locks those rows with FOR UPDATE SKIP LOCKED, so processes on several
        nodes never wait on each other nor take the same one; elsewhere each claim is an UPDATE
        that only one process can win. A claim counts no attempt (the recorded outcome does): a
        process killed mid-send leaves the lease to run out and costs the delivery no attempt;
        the next claim notes the interruption in its last error.
        """
        q = (select(DeliveryRow.id, DeliveryRow.action, DeliveryRow.params, DeliveryRow.next_attempt_at,
                    DeliveryRow.lease_until)
             .where(DeliveryRow.status == DeliveryStatus.PENDING)
             .order_by(DeliveryRow.run_id, DeliveryRow.id))
        with self.session() as s:
            pending = [_Pending(*r) for r in s.execute(q)]
        wanted = [p for p in _heads(pending) if p.due(now) and p.id not in skip and (only is None or p.id in only)]
        if self.engine.dialect.name == "postgresql":
            return self._claim_locked([p.id for p in wanted], now, lease_s, limit) if wanted else []
        claimed = [self._claim(p, now, lease_s) for p in wanted[:limit]]
        return [c for c in claimed if c is not None]

    def _claim(self, due: _Pending, now: int, lease_s: int) -> Claimed | None:
        values: dict[str, Any] = {"lease_until": now + lease_s, "queued_at": func.coalesce(DeliveryRow.queued_at, now)}
        if due.lease_until is not None:  # leased, never recorded: its process ended mid-send
            values["last_error"] = INTERRUPTED
        with self.session() as s:
            won = s.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == due.id, DeliveryRow.status == DeliveryStatus.PENDING, _lease_free(now))
                .values(**values)
            )
            if not cast(CursorResult[Any], won).rowcount:
                return None  # another process took it
            return _claimed(s, due.id, now)

    def _claim_locked(self, ids: Sequence[str], now: int, lease_s: int, limit: int) -> list[Claimed]:
        """Lease those of the heads `ids` that are still due, skipping rows another claim has locked."""
        with self.session() as s:
            # The row lock is checked again on the row as it is now (still pending, due, its lease free) and
            # kept to the commit, so no other claim sees the row free before its lease is written.
            locked = s.execute(
                select(DeliveryRow.id, DeliveryRow.lease_until)
                .where(DeliveryRow.id.in_(ids), DeliveryRow.status == DeliveryStatus.PENDING,
                       DeliveryRow.next_attempt_at <= now, _lease_free(now))
                .order_by(DeliveryRow.run_id, DeliveryRow.id).limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for ident, lease_until in locked:
                values: dict[str, Any] = {"lease_until": now + lease_s,
                                          "queued_at": func.coalesce(DeliveryRow.queued_at, now)}
                if lease_until is not None:  # leased, never recorded: its process ended mid-send
                    values["last_error"] = INTERRUPTED
                s.execute(update(DeliveryRow).where(DeliveryRow.id == ident).values(**values))
            return [_claimed(s, ident, now) for ident, _ in locked]

    def record_attempt(self, delivery_id: str, attempt: Attempt) -> None:
        """Write one attempt and where its delivery stands after it, at once; the lease ends, the attempt counts."""
        values: dict[str, Any] = {"status": attempt.status.value, "lease_until": None, "last_error": attempt.error,
                                  "attempts": DeliveryRow.attempts + 1}
        if attempt.status is DeliveryStatus.SENT:
            values["sent_at"] = attempt.at
        elif attempt.status is DeliveryStatus.PENDING and attempt.retry_at is not None:
            values["next_attempt_at"] = attempt.retry_at
        with self.session() as s:
            s.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id).values(**values))
            s.add(DeliveryAttempt(delivery_id=delivery_id, at=attempt.at, duration_s=attempt.duration_s,
                                  ok=attempt.ok, error=attempt.error))

    def requeue_dead(self, ids: Sequence[str] | None, *, since: int | None, by: str, now: int) -> list[str]:
        """Queue dead deliveries again (the named ones, else all created at or after `since`), each audited.

        A requeued delivery starts over: no attempt counted, its retry horizon from `now`, due at once,
        at its old place in its target's order. Named ids are all requeued or none (RequeueError).
        """
        with self.session() as s:
            if ids is None:
                q = select(DeliveryRow).where(DeliveryRow.status == DeliveryStatus.DEAD)
                if since is not None:
                    q = q.where(DeliveryRow.created_at >= since)
                rows = list(s.scalars(q.order_by(DeliveryRow.run_id, DeliveryRow.id)))
            else:
                rows = [_dead_row(s, ident) for ident in dict.fromkeys(ids)]
            for row in rows:
                s.add(AuditEntry(at=now, user=by[:64], change="requeue", threshold_id=None, threshold_name="",
                                 file="", diff=f"delivery {row.id} ({row.action}) requeued; it had failed: "
                                               f"{row.last_error or 'no error recorded'}"))
                row.status, row.attempts, row.next_attempt_at = DeliveryStatus.PENDING.value, 0, 0
                row.lease_until, row.queued_at = None, now
            return [row.id for row in rows]

    # The threshold table (rrdalarm/editor/overview.py).

    def threshold_activity(self, threshold_ids: Iterable[int]) -> tuple[dict[int, int], dict[int, int]]:
        """Per threshold id: how many series are FIRING, and when an alarm last fired (ids without either left out)."""
        ids = list(threshold_ids)
        with self.session() as s:
            firing = dict(s.execute(
                select(SeriesState.threshold_id, func.count())
                .where(SeriesState.threshold_id.in_(ids), SeriesState.state == State.FIRING.value)
                .group_by(SeriesState.threshold_id)
            ).all())
            fired = dict(s.execute(
                select(AlarmEvent.threshold_id, func.max(AlarmEvent.at))
                .where(AlarmEvent.threshold_id.in_(ids), AlarmEvent.kind == EventKind.FIRED.value)  # first firings
                .group_by(AlarmEvent.threshold_id)
            ).all())
        return firing, fired

    # Web users (rrdalarm/access/users.py).

    def add_user(self, name: str, password_hash: str, role: str, created_at: int) -> User | None:
        """The new user; None when the name is taken already."""
        with self.session() as s:
            if s.scalar(select(User.id).where(User.name == name)) is not None:
                return None
            user = User(name=name, password_hash=password_hash, role=role, created_at=created_at)
            s.add(user)
            s.flush()
            return user

    def user_named(self, name: str) -> User | None:
        with self.session() as s:
            return s.scalar(select(User).where(User.name == name))

    def user(self, user_id: int) -> User | None:
        with self.session() as s:
            return s.get(User, user_id)

    def users(self) -> list[User]:
        with self.session() as s:
            return list(s.scalars(select(User).order_by(User.name)))

    def set_password_hash(self, name: str, password_hash: str, *, replacing: str | None = None) -> bool:
        """Whether a user of that name was there (and, given `replacing`, still had that hash) to change."""
        q = update(User).where(User.name == name).values(password_hash=password_hash)
        if replacing is not None:
            q = q.where(User.password_hash == replacing)
        with self.session() as s:
            return bool(cast(CursorResult[Any], s.execute(q)).rowcount)

    def delete_user(self, name: str) -> bool:
        """Whether a user of that name was there to delete."""
        with self.session() as s:
            return bool(cast(CursorResult[Any], s.execute(delete(User).where(User.name == name))).rowcount)

    def add_audit(self, *, at: int, user: str, change: str, threshold_id: int | None, threshold_name: str,
                  file: str, diff: str) -> None:
        with self.session() as s:
            s.add(AuditEntry(at=at, user=user, change=change, threshold_id=threshold_id,
                             threshold_name=threshold_name[:255], file=file, diff=diff))

    def audit(self, threshold: int | None = None, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
        """Newest changes first."""
        q = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset)
        if threshold is not None:
            q = q.where(AuditEntry.threshold_id == threshold)
        with self.session() as s:
            return list(s.scalars(q).all())

    def runs(self, limit: int = 20) -> list[CheckRun]:
        with self.session() as s:
            return list(s.scalars(select(CheckRun).order_by(CheckRun.id.desc()).limit(limit)).all())

    def newest_run_at(self) -> float | None:
        """When the newest recorded check started (any process: scheduler, /start or cron).

        The run of a test notification (`rrdalarm action test`) or of acknowledgements is no check:
        it is left out.
        """
        test = select(AlarmEvent.id).where(AlarmEvent.run_id == CheckRun.id,
                                           AlarmEvent.kind.in_((EventKind.TEST.value, EventKind.ACK.value)))
        # Newest first, down the index, to the first that is a check: each check asks, so no scan of every run.
        newest_first = select(CheckRun.started_at).where(~test.exists()).order_by(CheckRun.started_at.desc())
        with self.session() as s:
            newest = s.scalar(newest_first.limit(1))
        return None if newest is None else float(newest)

    def count(self, model: type[Base]) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Read-only queries for the history pages (web/history.py).

    def find_events(
        self,
        *,
        threshold: int | None = None,
        status: str | None = None,
        since: int | None = None,
        until: int | None = None,
        series: str | None = None,
        ds: str | None = None,
        containing: str | None = None,
        severity: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[AlarmEvent]:
        """Newest events first; `since` and `until` are inclusive check times; `containing`: text of the series."""
        q = select(AlarmEvent).order_by(AlarmEvent.at.desc(), AlarmEvent.id.desc()).limit(limit).offset(offset)
        if threshold is not None:
            q = q.where(AlarmEvent.threshold_id == threshold)
        if status:
            q = q.where(func.upper(AlarmEvent.status) == status.upper())
        if since is not None:
            q = q.where(AlarmEvent.at >= since)
        if until is not None:
            q = q.where(AlarmEvent.at <= until)
        if series is not None:
            q = q.where(AlarmEvent.series == series)
        if ds is not None:
            q = q.where(AlarmEvent.ds == ds)
        if containing:
            like = containing.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q = q.where(func.lower(AlarmEvent.series).like(f"%{like.lower()}%", escape="\\"))
        if severity:
            q = q.where(AlarmEvent.severity == severity)
        with self.session() as s:
            return list(s.scalars(q).all())

    def event_statuses(self) -> list[str]:
        """Every status that some event carries, sorted."""
        with self.session() as s:
            return sorted(s.scalars(select(AlarmEvent.status).distinct()).all())

    def event_thresholds(self) -> dict[int, str]:
        """Threshold id -> the name its newest event was recorded under."""
        q = select(AlarmEvent.threshold_id, AlarmEvent.threshold_name, func.max(AlarmEvent.id)).group_by(
            AlarmEvent.threshold_id, AlarmEvent.threshold_name
        )
        with self.session() as s:
            rows = s.execute(q).all()
        # A threshold renamed over time has one group per name; the newest event's name wins.
        return {tid: name for tid, name, _ in sorted(rows, key=lambda r: r[2])}

    def series_state(self, threshold_id: int, series: str, ds: str) -> SeriesState | None:
        """The stored state of one series; None when it never fired."""
        q = select(SeriesState).where(
            SeriesState.threshold_id == threshold_id, SeriesState.series == series, SeriesState.ds == ds
        )
        with self.session() as s:
            return s.scalars(q).first()

    def find_deliveries(
        self, *, status: str | None = None, action: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[tuple[DeliveryRow, list[DeliveryAttempt]]]:
        """Newest deliveries first, filtered, each with its attempts (oldest first)."""
        q = (
            select(DeliveryRow)
            .order_by(DeliveryRow.created_at.desc(), DeliveryRow.run_id.desc(), DeliveryRow.id)
            .limit(limit)
            .offset(offset)
        )
        if status:
            q = q.where(DeliveryRow.status == status)
        if action:
            q = q.where(DeliveryRow.action == action)
        with self.session() as s:
            return self._with_attempts(s, list(s.scalars(q).all()))

    def deliveries_with_events(self, event_ids: Iterable[int]) -> list[tuple[DeliveryRow, list[DeliveryAttempt]]]:
        """Deliveries that carried any of these events, newest first, each with its attempts."""
        wanted = set(event_ids)
        if not wanted:
            return []
        carrying = select(DeliveryEvent.delivery_id).where(DeliveryEvent.event_id.in_(wanted))
        q = (
            select(DeliveryRow)
            .where(DeliveryRow.id.in_(carrying))
            .order_by(DeliveryRow.created_at.desc(), DeliveryRow.run_id.desc(), DeliveryRow.id)
        )
        with self.session() as s:
            return self._with_attempts(s, list(s.scalars(q).all()))

    def delivery_actions(self) -> list[str]:
        """Every action that some delivery was made for, sorted."""
        with self.session() as s:
            return sorted(s.scalars(select(DeliveryRow.action).distinct()).all())

    def audit_thresholds(self) -> dict[int, str]:
        """Threshold id -> the name of its newest audit entry."""
        q = (
            select(AuditEntry.threshold_id, AuditEntry.threshold_name, func.max(AuditEntry.id))
            .where(AuditEntry.threshold_id.is_not(None))
            .group_by(AuditEntry.threshold_id, AuditEntry.threshold_name)
        )
        with self.session() as s:
            rows = s.execute(q).all()
        # Entries that name no threshold (an expired silence) never hide the name of one that did.
        return {tid: name for tid, name, _ in sorted(rows, key=lambda r: (bool(r[1]), r[2])) if tid is not None}

    @staticmethod
    def _with_attempts(s: Session, rows: list[DeliveryRow]) -> list[tuple[DeliveryRow, list[DeliveryAttempt]]]:
        attempts: dict[str, list[DeliveryAttempt]] = {r.id: [] for r in rows}
        if attempts:
            q = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(attempts)).order_by(DeliveryAttempt.id)
            for a in s.scalars(q):
                attempts[a.delivery_id].append(a)
        return [(r, attempts[r.id]) for r in rows]

    def digest_messages(self, delivery_ids: Iterable[str]) -> dict[str, str]:
        """Delivery id -> its digest event's message, for those of these deliveries that are digests."""
        wanted = list(delivery_ids)
        if not wanted:
            return {}
        q = (select(DeliveryEvent.delivery_id, AlarmEvent.message)
             .join(AlarmEvent, AlarmEvent.id == DeliveryEvent.event_id)
             .where(DeliveryEvent.delivery_id.in_(wanted), AlarmEvent.kind == EventKind.DIGEST.value))
        with self.session() as s:
            return {str(ident): str(message) for ident, message in s.execute(q)}

    @staticmethod
    def event_ids_of(delivery: DeliveryRow) -> list[int]:
        """A delivery's event ids, in the order it carries them."""
        return delivery.event_ids


def _write_deliveries(s: Session, run: CheckRun, deliveries: Sequence[PlannedDelivery], ids: dict[int, int]) -> None:
    """The outbox rows of a run; `ids` maps the run's event indexes to the ids they were written under."""
    for d in deliveries:
        carried = [ids[i] for i in d.events if i in ids]
        if not carried:
            continue  # every event of it was left out with its threshold
        s.add(DeliveryRow(
            id=d.id, run_id=run.id, created_at=run.started_at, action=d.action,
            params=json.dumps(d.params, sort_keys=True),
            links=[DeliveryEvent(position=n, event_id=i) for n, i in enumerate(carried)],
            status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=0, queued_at=int(time.time()),
        ))


def write_run(s: Session, summary: RunSummary, events: Sequence[NewEvent],
              deliveries: Sequence[PlannedDelivery]) -> list[int]:
    """A run that is no check (acknowledgements), its events and their outbox rows, in the caller's transaction."""
    run = CheckRun(**summary.__dict__)
    s.add(run)
    s.flush()
    rows = [AlarmEvent(run_id=run.id, at=summary.started_at, **e.__dict__) for e in events]
    s.add_all(rows)
    s.flush()
    _write_deliveries(s, run, deliveries, {i: r.id for i, r in enumerate(rows)})
    return [r.id for r in rows]


@dataclass(frozen=True)
class Claimed:
    """A delivery this process holds the lease of; `attempt` is this one's number (recorded outcomes + 1)."""

    id: str
    action: str
    params: str  # JSON
    attempt: int
    created_at: int
    queued_at: int
    events: list[AlarmEvent]


INTERRUPTED = "interrupted: the process sending it ended before recording an outcome (not counted as an attempt)"


@dataclass(frozen=True)
class _Pending:
    """What a claim needs to know of a pending delivery."""

    id: str
    action: str
    params: str
    next_attempt_at: int
    lease_until: int | None

    def due(self, now: int) -> bool:
        return self.next_attempt_at <= now and (self.lease_until is None or self.lease_until < now)


def _claimed(s: Session, ident: str, now: int) -> Claimed:
    """The delivery `ident` just leased in `s`, with its events oldest first."""
    row = s.get_one(DeliveryRow, ident)
    events = s.scalars(select(AlarmEvent).join(DeliveryEvent, DeliveryEvent.event_id == AlarmEvent.id)
                       .where(DeliveryEvent.delivery_id == ident).order_by(AlarmEvent.id)).all()
    return Claimed(row.id, row.action, row.params, row.attempts + 1, row.created_at, row.queued_at or now, list(events))


def _heads(pending: Iterable[_Pending]) -> list[_Pending]:
    """The oldest pending delivery of each target (`pending` comes oldest first): the only one it may send."""
    seen: set[tuple[str, str]] = set()
    heads = []
    for p in pending:
        if (p.action, p.params) not in seen:
            seen.add((p.action, p.params))
            heads.append(p)
    return heads


def _dead_row(s: Session, ident: str) -> DeliveryRow:
    row = s.get(DeliveryRow, ident)
    if row is None:
        raise RequeueError(f"no delivery {ident!r} (see rrdalarm history --deliveries)")
    if row.status != DeliveryStatus.DEAD:
        raise RequeueError(f"delivery {ident} is {row.status}, not dead: only dead deliveries are requeued")
    return row


@dataclass(frozen=True)
class Attempt:
    """One attempt at a delivery and where the delivery stands after it."""

    at: int
    duration_s: float
    ok: bool
    error: str | None
    status: DeliveryStatus
    retry_at: int | None = None  # when PENDING: the next attempt


def _lease_free(now: int) -> ColumnElement[bool]:
    return (DeliveryRow.lease_until.is_(None)) | (DeliveryRow.lease_until < now)


def _view(row: Any) -> StateView:
    try:
        told = json.loads(row.notified) if row.notified is not None else None
    except ValueError:
        told = None  # unreadable: tell every action, as before this was tracked
    notified = frozenset(str(i) for i in told) if isinstance(told, list) else None
    return StateView(State(row.state), row.active_at, row.fired_at, row.resolved_at, row.last_sent_at, notified,
                     row.origin, row.clear_since, _times(row.changes), row.flapping_since, row.stale_since,
                     row.reason, row.silenced_since, row.silenced_until, _ack(row))


def _ack(row: Any) -> Acknowledgement | None:
    if row.ack_by is None or row.ack_at is None:
        return None
    return Acknowledgement(row.ack_by, row.ack_at, row.ack_comment or "")


def _times(text: str | None) -> tuple[int, ...]:
    try:
        got = json.loads(text) if text else []
    except ValueError:
        return ()  # unreadable: flap detection starts over
    return tuple(int(t) for t in got if isinstance(t, int)) if isinstance(got, list) else ()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else exc.__class__.__name__


def open_store(url: str) -> Store:
    """Open (creating if needed) and migrate the database at `url`."""
    store = Store(url)
    store.migrate()
    return store
