"""How far the projector is behind the log, read by index lookups only.

Health and the metrics collector ask it at every probe and scrape, so it never counts the
events behind: the head is ``max(position)`` (the primary key), the oldest unprojected
event is the one row after the checkpoint by primary key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from pipeline.db.tables import events
from pipeline.projector.store import CHECKPOINT
from pipeline.projector.tables import projector_checkpoints


@dataclass(frozen=True)
class Lag:
    head: int
    checkpoint: int
    #: When the first event after the checkpoint was recorded; None when none waits.
    oldest_unprojected: datetime | None

    @property
    def events(self) -> int:
        """Log positions after the checkpoint (an upper bound on the events: positions a
        rolled-back append took are never filled)."""
        return max(0, self.head - self.checkpoint)


def read_lag(conn: Connection) -> Lag:
    head = int(conn.scalar(select(func.max(events.c.position))) or 0)
    checkpoint = int(
        conn.scalar(
            select(projector_checkpoints.c.position).where(
                projector_checkpoints.c.name == CHECKPOINT
            )
        )
        or 0
    )
    oldest = conn.scalar(
        select(events.c.recorded_at)
        .where(events.c.position > checkpoint)
        .order_by(events.c.position)
        .limit(1)
    )
    return Lag(head, checkpoint, oldest)
