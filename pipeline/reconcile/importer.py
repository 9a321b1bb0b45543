"""Invoice files into the log: the I/O edges (files, quarantine, the event log).

The file is read twice, streamed both times, so memory stays bounded whatever its size:
once for its SHA-256, its invoice id, period and line count (what decides a no-op, a
refusal or a new version), then again to append its lines in chunks of CHUNK. The header
event goes last, so an import cut short and run again appends only what is missing (the
dedup keys) and then the header.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from pipeline.config import CarrierSettings, Settings
from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.eventlog import NewEvent, StoredEvent, append
from pipeline.eventlog.model import utc_now
from pipeline.eventlog.read import read_rows_leniently
from pipeline.ingest import quarantine
from pipeline.ingest.adapters import bounded
from pipeline.ingest.adapters.base import Limits, ParseError, RawRequest
from pipeline.reconcile.lines import (
    InvoiceLine,
    closed_key,
    day_period,
    header_key,
    line_event,
    parse_line,
)
from pipeline.reconcile.rows import InvoiceRefused, open_file, read_rows

#: Events appended per transaction.
CHUNK = 1000


@dataclass
class InvoiceSummary:
    read: int = 0
    appended: int = 0
    duplicates: int = 0
    quarantined: int = 0
    not_kept: int = 0
    #: Quarantined lines of older versions this version resolved.
    superseded: int = 0


@dataclass
class _Survey:
    """What the first pass learns of the file."""

    sha256: str = ""
    invoice_id: str | None = None
    lines: int = 0
    rows: int = 0
    first: datetime | None = None
    last: datetime | None = None
    currencies: set[str] = field(default_factory=set)
    total: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What importing a file will do, decided before anything is written: ``already`` is
    the version the same file was imported as (nothing to do), else ``version`` is new."""

    path: Path
    fmt: str
    carrier: str
    invoice_id: str
    version: int
    already: int | None
    survey: _Survey
    period: tuple[datetime, datetime] | None
    total: Decimal | None


def _lines(
    path: Path, fmt: str, carrier: CarrierSettings, limits: Limits, invoice_id: str | None
) -> Iterator[tuple[int, InvoiceLine | ParseError, str]]:
    """Each row parsed, with its row in the file (the header is row 1 of a CSV: where a
    person looks); a line of another invoice than the file's first is an error."""
    wanted = invoice_id
    for number, (row, fields, raw) in enumerate(
        read_rows(path, fmt, carrier.invoice, invoice_id is not None), start=1
    ):
        if isinstance(fields, ParseError):
            yield row, fields, raw
            continue
        try:
            line = parse_line(number, fields, carrier.invoice, limits)
        except (ParseError, bounded.Refused) as exc:
            found = exc if isinstance(exc, ParseError) else ParseError("row", exc.reason)
            yield row, found, raw
            continue
        if wanted is None:
            wanted = line.invoice_id
        if line.invoice_id is not None and line.invoice_id != wanted:
            yield row, ParseError("invoice_id", "not the file's invoice id"), raw
        else:
            yield row, line, raw


def survey(
    path: Path, fmt: str, carrier: CarrierSettings, limits: Limits, invoice_id: str | None
) -> _Survey:
    """The first pass: the file's SHA-256 and what its good lines say."""
    digest = hashlib.sha256()
    with open_file(path) as binary:
        for block in iter(lambda: binary.read(1 << 20), b""):
            digest.update(block)
    found = _Survey(sha256=digest.hexdigest(), invoice_id=invoice_id)
    for _row, line, _raw in _lines(path, fmt, carrier, limits, invoice_id):
        found.rows += 1
        if isinstance(line, ParseError):
            continue
        found.lines += 1
        if found.invoice_id is None:
            found.invoice_id = line.invoice_id
        found.first = line.billed_at if found.first is None else min(found.first, line.billed_at)
        found.last = line.billed_at if found.last is None else max(found.last, line.billed_at)
        found.currencies.add(line.currency)
        if found.total is None and line.total is not None:
            found.total = line.total
    return found


def invoice_headers(db: Database, invoice_id: str) -> list[StoredEvent]:
    """The ``carrier.invoice`` events of one invoice, oldest version first."""
    where = (events.c.type == "carrier.invoice") & events.c.dedup_key.like(
        f"invoice:{_like(invoice_id)}:v%", escape="\\"
    )
    with db.read() as conn:
        # Each row decoded on its own: a header no reader can decode is no version.
        found = read_rows_leniently(conn, where)
    return [
        e for e in found if type(e) is StoredEvent and e.payload.get("invoice_id") == invoice_id
    ]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def plan_import(
    db: Database,
    settings: Settings,
    path: Path,
    *,
    carrier: str,
    fmt: str,
    invoice_id: str | None = None,
    period: tuple[datetime, datetime] | None = None,
    total: Decimal | None = None,
    supersede: bool = False,
) -> Plan:
    """Read the file once and decide: a no-op, a refusal (InvoiceRefused) or a version."""
    configured = settings.carriers[carrier]
    found = survey(path, fmt, configured, _limits(settings), invoice_id)
    if found.invoice_id is None:
        if found.rows == 0:
            raise InvoiceRefused(f"{path.name}: empty file: no invoice lines")
        raise InvoiceRefused(f"{path.name}: no line names its invoice id (use --invoice-id)")
    invoice = found.invoice_id
    headers = invoice_headers(db, invoice)
    versions = [int(h.payload["version"]) for h in headers]
    for header in headers:
        if header.payload.get("sha256") == found.sha256:
            version = int(header.payload["version"])
            return Plan(path, fmt, carrier, invoice, version, version, found, period, total)
    for header in headers:
        owner = header.payload.get("carrier")
        if owner != carrier:
            raise InvoiceRefused(f"invoice {invoice} belongs to carrier {owner}, not {carrier}")
    if headers and not supersede:
        raise InvoiceRefused(
            f"invoice {invoice} is already imported (version {max(versions)}) from another "
            "file: --supersede records this one as its new version"
        )
    if period is None and found.first and found.last:
        period = day_period(found.first, found.last)
    if total is None:
        total = found.total
    version = 1 + max(versions, default=0)
    return Plan(path, fmt, carrier, invoice, version, None, found, period, total)


def _limits(settings: Settings) -> Limits:
    ingest = settings.ingest
    return Limits(ingest.min_year, ingest.max_year, ingest.max_amount)


def import_invoice(
    db: Database,
    settings: Settings,
    plan: Plan,
    *,
    advance: Callable[[int], None] = lambda n: None,
) -> InvoiceSummary:
    """Append the planned version: its lines in chunks, bad ones quarantined, then its
    header (last, so an import cut short and run again completes it)."""
    assert plan.already is None, "the same file is imported already"
    configured = settings.carriers[plan.carrier]
    summary = InvoiceSummary()
    source = f"file:{plan.path.name}"[:128]
    _append_lines(db, settings, plan, configured, source, summary, advance)
    found = plan.survey
    currency = configured.invoice.currency or (
        next(iter(found.currencies)) if len(found.currencies) == 1 else None
    )
    header = NewEvent(
        type="carrier.invoice",
        occurred_at=utc_now(),
        source=source,
        carrier=plan.carrier,
        payload={
            "invoice_id": plan.invoice_id,
            "carrier": plan.carrier,
            "version": plan.version,
            "period_from": plan.period[0] if plan.period else None,
            "period_to": plan.period[1] if plan.period else None,
            "currency": currency,
            "total": plan.total,
            "lines": summary.appended + summary.duplicates,
            "sha256": found.sha256,
            "file": plan.path.name[:128],
        },
        dedup_key=header_key(plan.invoice_id, plan.version),
    )
    stored = append(db, [header])
    summary.superseded = resolve_superseded(
        db, plan.carrier, plan.invoice_id, plan.version, stored.positions
    )
    return summary


def resolve_superseded(
    db: Database, carrier: str, invoice_id: str, version: int, positions: list[int]
) -> int:
    """Resolve the quarantined lines of the invoice's older versions: a corrected file
    imported as a new version is what fixes a bad invoice line (a quarantined line cannot
    be replayed on its own: it was part of a file). Returns how many were resolved."""
    resolved = 0
    for entry in quarantine.entries(db, status="open"):
        if entry.carrier != carrier or not (entry.format or "").startswith("invoice-"):
            continue
        found = entry.detail[0] if isinstance(entry.detail, list) and entry.detail else {}
        if not isinstance(found, dict) or found.get("invoice_id") != invoice_id:
            continue
        if not isinstance(found.get("version"), int) or found["version"] >= version:
            continue
        note = f"superseded by invoice {invoice_id} version {version}"
        with db.write() as conn:
            resolved += quarantine.resolve_in(conn, entry.id, positions, note)
    return resolved


def _append_lines(
    db: Database,
    settings: Settings,
    plan: Plan,
    configured: CarrierSettings,
    source: str,
    summary: InvoiceSummary,
    advance: Callable[[int], None],
) -> None:
    path, fmt, carrier = plan.path, plan.fmt, plan.carrier
    caps = quarantine.Caps(
        max_entry_bytes=settings.ingest.quarantine_max_entry_bytes,
        max_open_entries=settings.ingest.quarantine_max_open_entries,
    )
    pending: list[NewEvent] = []

    def flush() -> None:
        if pending:
            result = append(db, pending)
            summary.appended += len(result.appended)
            summary.duplicates += len(result.duplicates)
            pending.clear()

    lines = _lines(path, fmt, configured, _limits(settings), plan.invoice_id)
    for row, line, raw in lines:
        summary.read += 1
        if isinstance(line, ParseError):
            request = RawRequest(
                "POST", f"/invoice/{carrier}", [], {}, raw.encode("utf-8", "surrogatepass")
            )
            try:
                quarantine.save(
                    db,
                    request,
                    received_at=utc_now(),
                    source=source,
                    error=f"invalid invoice line ({path.name}, row {row})",
                    detail=[
                        {
                            "row": row,
                            "field": line.field,
                            "reason": line.reason,
                            "invoice_id": plan.invoice_id,
                            "version": plan.version,
                        }
                    ],
                    carrier=carrier,
                    fmt=f"invoice-{fmt}",
                    caps=caps,
                )
            except quarantine.NotKept:
                summary.not_kept += 1
            else:
                summary.quarantined += 1
        else:
            pending.append(
                line_event(
                    line,
                    invoice_id=plan.invoice_id,
                    carrier=carrier,
                    version=plan.version,
                    source=source,
                )
            )
            if len(pending) >= CHUNK:
                flush()
        advance(1)
    flush()


def close_invoice(db: Database, invoice_id: str) -> bool:
    """Append ``carrier.invoice_closed``; False when it was closed already."""
    headers = invoice_headers(db, invoice_id)
    if not headers:
        raise InvoiceRefused(f"no invoice {invoice_id} was imported")
    latest = headers[-1].payload
    closed = NewEvent(
        type="carrier.invoice_closed",
        occurred_at=utc_now(),
        source="cli:close-invoice",
        carrier=latest.get("carrier"),
        payload={
            "invoice_id": invoice_id,
            "carrier": latest.get("carrier"),
            "version": latest.get("version"),
        },
        dedup_key=closed_key(invoice_id),
    )
    return bool(append(db, [closed]).appended)
