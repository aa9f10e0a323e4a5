"""The trees' workers as the checks saw them (answers and pings): what the console and `rrdalarm trees` show."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Float, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from rrdalarm.model.records import WorkerSeen
from rrdalarm.store.database import Base, Store

FORGET_AFTER_S = 7 * 86400
"""A worker not seen for this long is dropped from the list (it was moved or renamed)."""


class TreeWorker(Base):
    """One worker of one tree: its last heartbeat, and what it did in the last check it served."""

    __tablename__ = "tree_workers"
    __table_args__ = (UniqueConstraint("tree", "worker", name="uq_tree_workers"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree: Mapped[str] = mapped_column(String(64))
    worker: Mapped[str] = mapped_column(String(255))
    seen_at: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[int] = mapped_column(Integer)
    shard_duration_s: Mapped[float | None] = mapped_column(Float)
    tree_duration_s: Mapped[float | None] = mapped_column(Float)


def record_workers(store: Store, seen: Sequence[WorkerSeen]) -> None:
    """Write the workers a check saw (one transaction), and forget those long gone."""
    if not seen:
        return
    newest = int(max(w.seen_at for w in seen))
    with store.session() as s:
        rows = {(r.tree, r.worker): r for r in s.scalars(select(TreeWorker).where(
            TreeWorker.tree.in_({w.tree for w in seen})))}
        for w in seen:
            row = rows.get((w.tree, w.worker[:255]))
            if row is None:
                row = TreeWorker(tree=w.tree, worker=w.worker[:255])
                s.add(row)
            row.seen_at, row.files = int(w.seen_at), w.files
            row.shard_duration_s, row.tree_duration_s = w.shard_duration_s, w.tree_duration_s
        s.execute(delete(TreeWorker).where(TreeWorker.seen_at < newest - FORGET_AFTER_S))


def tree_workers(store: Store) -> list[WorkerSeen]:
    """Every worker known, by tree then name."""
    with store.session() as s:
        rows = s.scalars(select(TreeWorker).order_by(TreeWorker.tree, TreeWorker.worker)).all()
        return [WorkerSeen(r.tree, r.worker, float(r.seen_at), r.files, r.shard_duration_s, r.tree_duration_s)
                for r in rows]
