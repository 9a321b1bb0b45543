"""Events the projector cannot read or apply: skipped with an ``unreadable_event`` mismatch.

The log is append-only, so a row no version of the fold can use (a time that does not
parse, a payload of the wrong shape, a number too large for any column) can never be
mended. Halting on it would stop every later event from being projected and dispatched;
instead the projector records where it is and why, skips it, and a person decides (see
docs/projector.md). The same rule runs live and on replay, so both skip the same events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import InterfaceError, InternalError, OperationalError

from pipeline.eventlog.model import MAX_ERROR, UnreadableEvent, describe_error
from pipeline.mismatches import open_mismatch
from pipeline.mismatches.kinds import KIND_UNREADABLE_EVENT, ORIGIN_PROJECTOR
from pipeline.projector.store import CheckpointMoved, ProjectionTables
from pipeline.times import parse_stored_time

__all__ = ["KIND", "UnreadableEvent", "describe_error", "is_database_failure", "record_unreadable"]

KIND = KIND_UNREADABLE_EVENT
#: ``opened_at`` of an unreadable first event, when neither it nor the log has a time.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_database_failure(exc: BaseException) -> bool:
    """Whether the failure is the database's or another projector's, not the event's.

    Those must propagate: the batch rolls back and is tried again on the next run. Any
    other exception (a data error included: a value no column takes) is the event's.
    """
    return isinstance(
        exc, (OperationalError, InterfaceError, InternalError, CheckpointMoved, MemoryError)
    )


def record_unreadable(
    conn: Connection,
    tables: ProjectionTables,
    position: int,
    error: str,
    *,
    now: datetime | None,
    event: Any = None,
) -> int:
    """Open the mismatch for the event at ``position``; 1 when a row was opened.

    ``opened_at`` is the event's ``recorded_at`` when it can be read, else ``now`` (the
    log's clock), else ``EPOCH``: a function of the log, so that a rebuild reproduces it.
    """
    detail: dict[str, Any] = {"position": position, "error": error[:MAX_ERROR]}
    try:
        opened_at = parse_stored_time(getattr(event, "recorded_at", None))
    except ValueError:
        opened_at = now or EPOCH
    message_id = getattr(event, "message_id", None)
    event_type = getattr(event, "type", None)
    if isinstance(event_type, str):
        detail["type"] = event_type[:64]
    open_mismatch(
        conn,
        message_id=message_id if isinstance(message_id, str) else None,
        subject=f"event:{position}",
        kind=KIND,
        origin=ORIGIN_PROJECTOR,
        detail=detail,
        now=opened_at,
        position=position,
        table=tables.mismatches,
    )
    return 1
