"""Events the projector cannot read or apply: skipped with an ``unreadable_event`` mismatch.

The log is append-only, so a row no version of the fold can use (a time that does not
parse, a payload of the wrong shape, a number too large for any column) can never be
mended. Halting on it would stop every later event from being projected and dispatched;
instead the projector records where it is and why, skips it, and a person decides (see
docs/projector.md). The same rule runs live and on replay, so both skip the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.exc import InterfaceError, InternalError, OperationalError

from pipeline.mismatches import open_mismatch

if TYPE_CHECKING:
    from pipeline.projector.store import ProjectionTables

KIND = "unreadable_event"
#: ``opened_at`` of an unreadable first event, when neither it nor the log has a time.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ERROR = 300


@dataclass(frozen=True, slots=True)
class UnreadableRow:
    """A log row the reader could not decode into an event (a time or payload no fold reads)."""

    position: int
    error: str
    #: Its ``recorded_at`` when that much could be read (the mismatch's ``opened_at``).
    recorded_at: datetime | None = None
    message_id: str | None = None
    type: str | None = None


def is_database_failure(exc: BaseException) -> bool:
    """Whether the failure is the database's or another projector's, not the event's.

    Those must propagate: the batch rolls back and is tried again on the next run. Any
    other exception (a data error included: a value no column takes) is the event's.
    """
    from pipeline.projector.store import CheckpointMoved

    return isinstance(
        exc, (OperationalError, InterfaceError, InternalError, CheckpointMoved, MemoryError)
    )


def describe_error(exc: BaseException) -> str:
    """A short, bounded description: the exception's type and the first line of its text."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return described[:MAX_ERROR]


def record_unreadable(
    conn: Connection,
    tables: ProjectionTables,
    position: int,
    error: str,
    *,
    now: datetime | None,
    event: Any = None,
) -> int:
    """Open the mismatch for the event at ``position``; 1 when a row was opened."""
    detail: dict[str, Any] = {"position": position, "error": error[:MAX_ERROR]}
    message_id = getattr(event, "message_id", None)
    event_type = getattr(event, "type", None)
    if isinstance(event_type, str):
        detail["type"] = event_type[:64]
    open_mismatch(
        conn,
        message_id=message_id if isinstance(message_id, str) else None,
        subject=f"event:{position}",
        kind=KIND,
        origin="projector",
        detail=detail,
        now=now or EPOCH,
        position=position,
        table=tables.mismatches,
    )
    return 1
