"""Closed months of the log written to Parquet, and the record of it in the log itself.

A month is a month of ``recorded_at`` (when smsrecon stored the event, our clock), the
partition key of the partitioned log (``pipeline.db.partitions``): it closes when the
calendar does, and nothing is recorded into it afterwards. A month of ``occurred_at`` never
closes: a late report of last year is still recorded today.

The file holds every column exactly: times as UTC microsecond timestamps, the payload as
the JSON text the database stores. It is written page by page (bounded memory), to
``FILE.partial``, flushed, hashed (SHA-256) and renamed; then an ``events.archived`` event
records the months with their counts and first and last positions, the hash and the file.
That event is what ``smsrecon events detach`` checks before it detaches a month, and what a
rebuild reads to name the files to restore. Failure policy: a run that dies leaves only
``FILE.partial`` (overwritten next time) or a renamed file without its event, which nothing
trusts; run it again with ``--force``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, Text, cast, func, select

from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.eventlog.append import append_in
from pipeline.eventlog.model import NewEvent, utc_now
from pipeline.eventlog.read import DECODE_ERRORS
from pipeline.times import parse_stored_time

ARCHIVED = "events.archived"
#: Rows per page read and per Parquet row group.
PAGE = 10_000
HASH_CHUNK = 1 << 20
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")

SCHEMA = pa.schema(
    [
        pa.field("position", pa.int64(), nullable=False),
        pa.field("type", pa.string()),
        pa.field("message_id", pa.string()),
        pa.field("carrier", pa.string()),
        pa.field("carrier_message_id", pa.string()),
        pa.field("occurred_at", pa.timestamp("us", tz="UTC")),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC")),
        pa.field("source", pa.string()),
        #: The JSON text as the database stores it.
        pa.field("payload", pa.string()),
        pa.field("dedup_key", pa.string()),
        #: Set only on a row whose time no reader can decode (an UnreadableEvent): the
        #: stored text, with the timestamp column left null.
        pa.field("occurred_at_stored", pa.string()),
        pa.field("recorded_at_stored", pa.string()),
    ]
)


class ArchiveError(ValueError):
    """An archive that cannot be made or trusted; the message says why and what to do."""


class ArchiveExists(ArchiveError):
    """The target file exists and overwriting was not asked for."""


def parse_month(text: str) -> date:
    found = _MONTH.match(text.strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
        raise ArchiveError(f"{text!r} is not a month: write YYYY-MM, e.g. 2026-01")
    return date(int(found.group(1)), int(found.group(2)), 1)


def month_text(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def month_start(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def current_month(now: datetime | None = None) -> date:
    now = (now or utc_now()).astimezone(UTC)
    return date(now.year, now.month, 1)


@dataclass(frozen=True, slots=True)
class MonthSummary:
    month: str
    count: int
    first_position: int
    last_position: int

    def as_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "count": self.count,
            "first_position": self.first_position,
            "last_position": self.last_position,
        }


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One ``events.archived`` event, as read back from the log."""

    position: int
    file: str
    path: str
    sha256: str
    size: int
    start: str | None
    before: str
    count: int
    months: list[MonthSummary]

    def line(self) -> str:
        return f"{self.path} (sha256 {self.sha256})"


def archive_records(conn: Connection) -> list[ArchiveRecord]:
    """Every archive the log records, oldest first."""
    rows = conn.execute(
        select(events.c.position, events.c.payload)
        .where(events.c.type == ARCHIVED)
        .order_by(events.c.position)
    ).all()
    out = []
    for position, p in rows:
        out.append(
            ArchiveRecord(
                position=position,
                file=p["file"],
                path=p["path"],
                sha256=p["sha256"],
                size=int(p["bytes"]),
                start=p.get("from"),
                before=p["before"],
                count=int(p["count"]),
                months=[
                    MonthSummary(m["month"], int(m["count"]), int(m["first_position"]),
                                 int(m["last_position"]))
                    for m in p["months"]
                ],
            )
        )  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class ArchivePlan:
    #: First month archived (None: from the oldest event).
    start: date | None
    #: First month not archived.
    before: date
    count: int


def plan_archive(
    db: Database, before: date, start: date | None = None, *, now: datetime | None = None
) -> ArchivePlan:
    """Which months to write: from ``start`` (default: where the last archive stopped, or
    the oldest event) up to ``before``, refusing a month that is not closed."""
    current = current_month(now)
    if before > current:
        last_closed = month_text(date(current.year - (current.month == 1),
                                      (current.month - 2) % 12 + 1, 1))  # fmt: skip
        raise ArchiveError(
            f"--before {month_text(before)} would include {month_text(current)}, which is not "
            f"closed (events are still recorded into it): the latest is --before "
            f"{month_text(current)}, which archives up to {last_closed}"
        )
    with db.read() as conn:
        if start is None:
            done = [parse_month(r.before) for r in archive_records(conn)]
            start = max(done) if done else None
        if start is not None and start >= before:
            raise ArchiveError(
                f"nothing to archive: the months before {month_text(before)} are archived "
                f"from {month_text(start)} on (give --from to write them again)"
            )
        count = int(conn.scalar(select(func.count()).where(_in_range(start, before))) or 0)
    if count == 0:
        since = f" from {month_text(start)}" if start else ""
        raise ArchiveError(f"no events recorded{since} before {month_text(before)}")
    return ArchivePlan(start, before, count)


def _in_range(start: date | None, before: date) -> Any:
    where = events.c.recorded_at < month_start(before)
    if start is not None:
        where = where & (events.c.recorded_at >= month_start(start))
    return where


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    path: Path
    sha256: str
    size: int
    count: int
    months: list[MonthSummary]
    #: Position of the ``events.archived`` event (None: the same archive was recorded).
    event_position: int | None

    def line(self) -> str:
        first, last = self.months[0], self.months[-1]
        span = first.month if first is last else f"{first.month} … {last.month}"
        return (
            f"archived {self.count} events of {span} to {self.path}: {self.size} bytes, "
            f"sha256 {self.sha256}"
        )


_COLUMNS = (
    events.c.position, events.c.type, events.c.message_id, events.c.carrier,
    events.c.carrier_message_id, events.c.occurred_at, events.c.recorded_at, events.c.source,
    cast(events.c.payload, Text).label("payload"), events.c.dedup_key,
)  # fmt: skip
_TEXT_COLUMNS = (
    *_COLUMNS[:5],
    cast(events.c.occurred_at, Text).label("occurred_at"),
    cast(events.c.recorded_at, Text).label("recorded_at"),
    *_COLUMNS[7:],
)


def _page(conn: Connection, where: Any, after: int) -> list[dict[str, Any]]:
    """One page in position order; a page with a time no reader can decode is read again
    as text, and each such time kept as its stored text."""

    def query(columns: tuple[Any, ...]) -> Any:
        stmt = select(*columns).where(where & (events.c.position > after))
        return conn.execute(stmt.order_by(events.c.position).limit(PAGE))

    try:
        rows = [dict(row._mapping) for row in query(_COLUMNS)]
        for row in rows:
            row["occurred_at_stored"] = row["recorded_at_stored"] = None
        return rows
    except DECODE_ERRORS:
        pass
    rows = []
    for row in query(_TEXT_COLUMNS):
        out = dict(row._mapping)
        for name in ("occurred_at", "recorded_at"):
            stored = out[name]
            out[f"{name}_stored"] = None
            try:
                out[name] = parse_stored_time(stored)
            except (ValueError, TypeError, OverflowError):
                out[name], out[f"{name}_stored"] = None, None if stored is None else str(stored)
        rows.append(out)
    return rows


def write_archive(
    db: Database,
    target: Path,
    plan: ArchivePlan,
    *,
    force: bool = False,
    source: str = "cli:events archive",
    on_rows: Callable[[int], None] | None = None,
) -> ArchiveResult:
    """Write the planned months to ``target`` and record the archive in the log."""
    if target.exists() and not force:
        raise ArchiveExists(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)  # a leftover of an archive that died
    where = _in_range(plan.start, plan.before)
    months: dict[str, list[int]] = {}  # month -> [count, first, last]
    count = 0
    try:
        metadata = {
            b"smsrecon.from": (month_text(plan.start) if plan.start else "").encode(),
            b"smsrecon.before": month_text(plan.before).encode(),
        }
        writer = pq.ParquetWriter(partial, SCHEMA.with_metadata(metadata))
        try:
            after = 0
            while True:
                # One short read transaction per page: nothing is held open for the run.
                with db.read() as conn:
                    rows = _page(conn, where, after)
                if not rows:
                    break
                for row in rows:
                    recorded = row["recorded_at"]
                    key = month_text(recorded) if recorded is not None else "unreadable"
                    seen = months.setdefault(key, [0, row["position"], row["position"]])
                    seen[0] += 1
                    seen[2] = row["position"]
                writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
                count += len(rows)
                after = rows[-1]["position"]
                if on_rows is not None:
                    on_rows(len(rows))
        finally:
            writer.close()
        digest, size = _flush_and_hash(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    _flush_directory(target.parent)
    summaries = [MonthSummary(m, *months[m]) for m in sorted(months)]
    position = _record(db, target, digest, size, plan, count, summaries, source)
    return ArchiveResult(target, digest, size, count, summaries, position)


def _record(
    db: Database,
    target: Path,
    digest: str,
    size: int,
    plan: ArchivePlan,
    count: int,
    months: list[MonthSummary],
    source: str,
) -> int | None:
    path = str(target.resolve())
    payload = {
        "file": target.name,
        "path": path,
        "sha256": digest,
        "bytes": size,
        "from": month_text(plan.start) if plan.start else None,
        "before": month_text(plan.before),
        "count": count,
        "first_position": months[0].first_position if months else None,
        "last_position": max((m.last_position for m in months), default=None),
        "months": [m.as_json() for m in months],
    }
    key = hashlib.sha256(f"{digest}|{path}".encode()).hexdigest()
    event = NewEvent(ARCHIVED, utc_now(), source, payload, dedup_key=f"{ARCHIVED}:{key}")
    with db.write() as conn:
        result = append_in(conn, [event])
    return result.positions[0] if result.appended else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _flush_and_hash(path: Path) -> tuple[str, int]:
    # The rename must not reach the disk before the data it names does.
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    return file_sha256(path), path.stat().st_size


def _flush_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- what an archive stands for, once a month of it has left the log ----------------------


@dataclass(frozen=True, slots=True)
class MissingMonth:
    month: MonthSummary
    #: Events of the month still in the log.
    present: int
    #: The archives that hold it, oldest first.
    archives: list[ArchiveRecord]

    def line(self) -> str:
        m = self.month
        files = "; ".join(a.line() for a in self.archives)
        return (
            f"{m.month}: positions {m.first_position}-{m.last_position}, {m.count} events "
            f"archived, {self.present} in the log; in {files}"
        )


def missing_months(db: Database) -> list[MissingMonth]:
    """The archived months whose events are no longer all in the log (a detached
    partition): what a fold from scratch would miss. Each count reads only the month's
    positions (the primary key), and on a partitioned log only its partition."""
    out = []
    with db.read() as conn:
        records = archive_records(conn)
        by_month: dict[str, tuple[MonthSummary, list[ArchiveRecord]]] = {}
        for record in records:
            for m in record.months:
                if m.month == "unreadable":
                    continue
                summary, holders = by_month.setdefault(m.month, (m, []))
                holders.append(record)
        for name in sorted(by_month):
            summary, holders = by_month[name]
            month = parse_month(name)
            present = int(
                conn.scalar(
                    select(func.count()).where(
                        events.c.position.between(summary.first_position, summary.last_position),
                        _in_range(month, next_month(month)),
                    )
                )
                or 0
            )
            if present < summary.count:
                out.append(MissingMonth(summary, present, holders))
    return out


def month_in_log(conn: Connection, month: date) -> MonthSummary:
    """The month's events as the log holds them now."""
    count, first, last = conn.execute(
        select(func.count(), func.min(events.c.position), func.max(events.c.position)).where(
            _in_range(month, next_month(month))
        )
    ).one()
    return MonthSummary(month_text(month), int(count or 0), int(first or 0), int(last or 0))


def find_archive(conn: Connection, path: Path, month: date) -> tuple[ArchiveRecord, MonthSummary]:
    """The recorded archive of ``month`` whose hash is that of the file at ``path``."""
    if not path.is_file():
        raise ArchiveError(f"{path}: no such file")
    digest = file_sha256(path)
    wanted = month_text(month)
    for record in reversed(archive_records(conn)):
        if record.sha256 != digest:
            continue
        for summary in record.months:
            if summary.month == wanted:
                return record, summary
    raise ArchiveError(
        f"no events.archived event records {path.name} (sha256 {digest}) with {wanted}: "
        f"archive the month first (smsrecon events archive --before ...), and keep that file"
    )
