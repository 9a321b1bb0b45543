"""``smsrecon ingest``'s work: file records through the parse path into the log or quarantine."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append
from pipeline.eventlog.model import utc_now
from pipeline.ingest import quarantine
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

    Failure policy: events go in chunks of CHUNK per transaction. If the run dies midway,
    running it again stores only what is missing (dedup keys), but a bad record already
    quarantined is quarantined again (one more open entry, resolved by the same replay).
    """
    fmt = format_of(settings, target)
    caps = quarantine.Caps(
        max_entry_bytes=settings.ingest.quarantine_max_entry_bytes,
        max_open_entries=settings.ingest.quarantine_max_open_entries,
    )
    pending: list[NewEvent] = []
    for record in records:
        summary.read += 1
        received_at = utc_now()
        try:
            outcome = interpret(
                settings, target, record.request, received_at=received_at, source=source
            )
        except InputError as exc:
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
        else:
            pending.extend(outcome.events)
            if len(pending) >= CHUNK:
                _flush(db, pending, summary)
        advance(1)
    _flush(db, pending, summary)
    return summary


def _flush(db: Database, pending: list[NewEvent], summary: ImportSummary) -> None:
    if not pending:
        return
    result = append(db, pending)
    summary.appended += len(result.appended)
    summary.duplicates += len(result.duplicates)
    pending.clear()
