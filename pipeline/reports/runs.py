"""Pinned report runs: save one as of the projector's checkpoint, rebuild it from the log.

A run is the canonical CSV of a report read from one snapshot of the projection, with the
checkpoint read in that same snapshot: the rows are exactly the log up to that position.
Saving stores the CSV (compressed) and its SHA-256 in ``report_runs`` and appends a
``report.generated`` event, in one transaction. Verifying folds the log up to the pinned
position into a scratch projection (``fold_into_shadow``), runs the same definition on it,
and compares hashes; the live projection is never touched.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from pipeline.db.engine import Database
from pipeline.eventlog.append import append_in
from pipeline.eventlog.model import RECEIVED, TIME_SOURCE, NewEvent, utc_now
from pipeline.projector.board import Remote
from pipeline.projector.derive import FoldRules
from pipeline.projector.lock import projector_lock
from pipeline.projector.replay import fold_into_shadow
from pipeline.projector.store import CHECKPOINT, LIVE, ProjectionTables
from pipeline.reports.catalog import REPORTS
from pipeline.reports.formats import csv_line
from pipeline.reports.model import Report, ReportParams
from pipeline.reports.table import report_runs


class RunNotFound(LookupError):
    """No saved run has that id."""


class Pinned:
    """Accumulates a report's canonical CSV as its rows stream by: count, hash, gzip."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.rows = 0
        self._digest = hashlib.sha256()
        self._buffer = io.BytesIO()
        # mtime=0: the same CSV always compresses to the same bytes.
        self._gz = gzip.GzipFile(fileobj=self._buffer, mode="wb", mtime=0)

    def through(self, rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """Yield ``rows`` unchanged while recording their canonical lines."""
        self._feed(csv_line(self.report.names))
        for row in rows:
            self._feed(csv_line(row))
            self.rows += 1
            yield row

    def _feed(self, line: str) -> None:
        data = line.encode("utf-8")
        self._digest.update(data)
        self._gz.write(data)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def canonical_gz(self) -> bytes:
        self._gz.close()
        return self._buffer.getvalue()


def as_of(conn: Connection, tables: ProjectionTables = LIVE) -> int:
    """The projection's checkpoint, read in the report's own snapshot (0 before any)."""
    cp = tables.checkpoints
    found = conn.scalar(select(cp.c.position).where(cp.c.name == CHECKPOINT))
    return int(found or 0)


@dataclass(frozen=True)
class Run:
    id: int
    report: str
    version: int
    params: ReportParams
    as_of_position: int
    rows: int
    sha256: str
    period: str | None = None
    event_position: int | None = None

    def event_payload(self) -> dict[str, Any]:
        return {
            "run_id": self.id,
            "report": self.report,
            "version": self.version,
            "params": self.params.as_json(),
            "as_of_position": self.as_of_position,
            "rows": self.rows,
            "sha256": self.sha256,
            "period": self.period,
            # Our own act, not message time: the projector's event clock must not move for
            # it (a report saved today over a backfilled month would expire every timer).
            TIME_SOURCE: RECEIVED,
        }


def store_run(
    conn: Connection,
    pinned: Pinned,
    params: ReportParams,
    position: int,
    *,
    period: str | None = None,
) -> Run:
    """Insert the run and append its ``report.generated`` event in the caller's transaction.

    Failure policy: both or neither; a crash before commit leaves no run and no event.
    """
    report = pinned.report
    now = utc_now()
    values = {
        "report": report.name,
        "version": report.version,
        "params": params.as_json(),
        "as_of_position": position,
        "rows": pinned.rows,
        "sha256": pinned.sha256,
        "canonical_gz": pinned.canonical_gz(),
        "period": period,
        "created_at": now,
    }
    run_id = int(conn.execute(insert(report_runs).values(**values)).inserted_primary_key[0])
    run = Run(run_id, report.name, report.version, params, position, pinned.rows, pinned.sha256,
              period)  # fmt: skip
    event = NewEvent(
        "report.generated",
        now,
        "smsrecon report",
        run.event_payload(),
        dedup_key=f"report.generated:{run_id}",
    )
    stored = append_in(conn, [event]).positions
    event_position = stored[0] if stored else None
    conn.execute(
        update(report_runs).where(report_runs.c.id == run_id).values(event_position=event_position)
    )
    return dataclasses.replace(run, event_position=event_position)


def load_run(conn: Connection, run_id: int) -> tuple[Run, bytes]:
    row = conn.execute(select(report_runs).where(report_runs.c.id == run_id)).first()
    if row is None:
        raise RunNotFound(f"no saved report run {run_id}")
    run = Run(
        int(row.id),
        row.report,
        int(row.version),
        ReportParams.from_json(row.params),
        int(row.as_of_position),
        int(row.rows),
        row.sha256,
        row.period,
        row.event_position,
    )
    return run, bytes(row.canonical_gz)


def pinned_lines(canonical_gz: bytes) -> Iterator[str]:
    with gzip.open(io.BytesIO(canonical_gz), "rt", encoding="utf-8", newline="") as text:
        yield from text


@dataclass(frozen=True)
class Verdict:
    run: Run
    sha256: str
    rows: int
    #: Canonical lines only in the pinned run / only in the rebuild (empty when equal).
    only_pinned: list[str]
    only_rebuilt: list[str]

    @property
    def equal(self) -> bool:
        return self.sha256 == self.run.sha256


def verify_run(
    db: Database,
    rules: FoldRules,
    run_id: int,
    *,
    grace_seconds: float,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    workers: int = 1,
    remote: Remote | None = None,
) -> Verdict:
    """Rebuild the run from the log up to its pinned position and compare.

    Held under the projector lock, as ``replay`` is: the scratch tables have one name.
    """
    with db.read() as conn:
        run, canonical_gz = load_run(conn, run_id)
    report = REPORTS[run.report]
    with projector_lock(db, wait=True):
        shadow = fold_into_shadow(
            db,
            rules,
            grace_seconds=grace_seconds,
            batch_size=batch_size,
            upto=run.as_of_position,
            on_batch=on_batch,
            workers=workers,
            remote=remote,
        )
        try:
            with db.snapshot() as conn:
                pinned = Pinned(report)
                for _ in pinned.through(report.rows(conn, shadow, run.params)):
                    pass
                rebuilt_gz = pinned.canonical_gz()
        finally:
            drop_scratch(db, shadow)
    only_pinned: list[str] = []
    only_rebuilt: list[str] = []
    if pinned.sha256 != run.sha256:
        before, after = Counter(pinned_lines(canonical_gz)), Counter(pinned_lines(rebuilt_gz))
        only_pinned = sorted((before - after).elements())
        only_rebuilt = sorted((after - before).elements())
    return Verdict(run, pinned.sha256, pinned.rows, only_pinned, only_rebuilt)


def drop_scratch(db: Database, shadow: ProjectionTables) -> None:
    with db.write() as conn:
        for name in (f.name for f in dataclasses.fields(shadow)):
            getattr(shadow, name).drop(conn, checkfirst=True)


def run_report(
    db: Database,
    report: Report,
    params: ReportParams,
    write: Callable[[Iterator[tuple[Any, ...]]], int],
    *,
    save: bool = False,
) -> tuple[int, int, Run | None]:
    """Compute ``report`` from one snapshot of the live projection and hand its rows to
    ``write``; with ``save``, pin them. Returns (rows, as-of position, run or None)."""
    with db.snapshot() as conn:
        position = as_of(conn)
        rows: Iterator[tuple[Any, ...]] = report.rows(conn, LIVE, params)
        pinned = Pinned(report) if save else None
        if pinned is not None:
            rows = pinned.through(rows)
        count = write(rows)
    if pinned is None:
        return count, position, None
    with db.write() as conn:
        return count, position, store_run(conn, pinned, params, position)
