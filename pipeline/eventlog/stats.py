"""Counts and sizes of the log, for ``events stats`` and the demo."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from pipeline.db.engine import Database
from pipeline.db.tables import events


@dataclass(frozen=True, slots=True)
class LogStats:
    by_type: dict[str, int]
    last_position: int
    database_bytes: int

    @property
    def total(self) -> int:
        return sum(self.by_type.values())


def log_stats(db: Database) -> LogStats:
    with db.read() as conn:
        by_type = dict(
            conn.execute(select(events.c.type, func.count()).group_by(events.c.type)).all()
        )
        last = conn.scalar(select(func.max(events.c.position))) or 0
        size = db.backend.database_size(conn)
    return LogStats(by_type, int(last), size)
