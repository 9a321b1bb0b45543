"""``smsrecon ingest``'s work: file records through the parse path into the log or quarantine."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append
from pipeline.eventlog.model import utc_now
from pipeline.ingest import quarantine
from pipeline.ingest.faults import classify_failure, failure_text, unparseable
from pipeline.ingest.files import FileRecord
from pipeline.ingest.routing import InputError, Target, format_of, interpret

#: Events appended per transaction.
CHUNK = 1000


@dataclass
class ImportSummary:
    read: int = 0
    appended: int = 0
    duplicates: int = 0
    quarantined: int = 0
    #: Refused records the quarantine's caps did not keep (too large, or it is full).
    not_kept: int = 0


class ImportUnavailable(Exception):
    """The database failed (not the records): what was committed before stays, the rest
    was not stored. The message is one safe line (no SQL, no row values)."""


@dataclass(frozen=True, slots=True)
class _Parsed:
    record: FileRecord
    events: list[NewEvent]


def import_records(
    db: Database,
    settings: Settings,
    records: Iterable[FileRecord],
    *,
    target: Target,
    source: str,
    summary: ImportSummary,
    advance: Callable[[int], None] = lambda n: None,
) -> ImportSummary:
    """Parse each record; append good events in chunks, quarantine each bad record.

    Failure policy: events go in chunks of CHUNK per transaction. A record whose content
    the database refuses does not fail its chunk: the chunk is retried record by record,
    and that record is quarantined with its location like one that failed to parse. A
    database failure ends the import with ImportUnavailable; running it again stores only
    what is missing (dedup keys), but a bad record already quarantined is quarantined
    again (one more open entry, resolved by the same replay).
    """
    fmt = format_of(settings, target)
    caps = quarantine.Caps(
        max_entry_bytes=settings.ingest.quarantine_max_entry_bytes,
        max_open_entries=settings.ingest.quarantine_max_open_entries,
    )
    pending: list[_Parsed] = []
    pending_events = 0

    def refuse(record: FileRecord, exc: InputError, received_at: datetime) -> None:
        try:
            quarantine.save(
                db,
                record.request,
                received_at=received_at,
                source=source,
                error=f"{exc.error} ({source.removeprefix('file:')}, {record.location})",
                detail=exc.detail,
                carrier=target.carrier,
                fmt=fmt,
                caps=caps,
            )
        except quarantine.NotKept:
            summary.not_kept += 1
        else:
            summary.quarantined += 1

    for record in records:
        summary.read += 1
        received_at = utc_now()
        try:
            outcome = interpret(
                settings, target, record.request, received_at=received_at, source=source
            )
        except InputError as exc:
            refuse(record, exc, received_at)
        except Exception as exc:
            refused = unparseable(exc)
            if refused is None:
                raise
            refuse(record, refused, received_at)
        else:
            pending.append(_Parsed(record, outcome.events))
            pending_events += len(outcome.events)
            if pending_events >= CHUNK:
                _flush(db, pending, summary, refuse)
                pending_events = 0
        advance(1)
    _flush(db, pending, summary, refuse)
    return summary


def _flush(
    db: Database,
    pending: list[_Parsed],
    summary: ImportSummary,
    refuse: Callable[[FileRecord, InputError, datetime], None],
) -> None:
    if not pending:
        return
    try:
        _append(db, [event for parsed in pending for event in parsed.events], summary)
    except Exception as exc:
        if classify_failure(exc) != "content":
            raise ImportUnavailable(failure_text(exc)) from None
        for parsed in pending:
            try:
                _append(db, parsed.events, summary)
            except Exception as one:
                if classify_failure(one) != "content":
                    raise ImportUnavailable(failure_text(one)) from None
                reason = [{"field": "events", "reason": failure_text(one)}]
                refuse(
                    parsed.record,
                    InputError("the event log refused this record's content", reason),
                    utc_now(),
                )
    pending.clear()


def _append(db: Database, events: list[NewEvent], summary: ImportSummary) -> None:
    result = append(db, events)
    summary.appended += len(result.appended)
    summary.duplicates += len(result.duplicates)
