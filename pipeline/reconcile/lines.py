"""One invoice row (column name -> text) to one invoice line: pure, no file or database.

Numbers go through ``ingest.adapters.bounded`` (money from text to Decimal, never a float),
times through the plausible years and amounts of ``ingest`` (``Limits``): an invoice is
untrusted input like a delivery report, and one absurd line must cost only itself.

A field's value is text (CSV, a text cell), a Decimal (a JSON number, a numeric cell: the
layout's decimal separator is a matter of text and does not apply) or, for ``billed_at``, a
zoneless datetime (a spreadsheet date cell, in the layout's time zone).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.config import InvoiceSettings
from pipeline.eventlog import NewEvent
from pipeline.ingest.adapters import bounded
from pipeline.ingest.adapters.base import Limits, ParseError

#: Parts of one message: the UDH counts to 255.
MAX_PARTS = 255
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)
#: An invoice id short enough for the dedup keys built on it (``line_key``).
MAX_INVOICE_ID = 80


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """A billed line; ``number`` counts the file's records from 1, header and blank lines
    not counted, so the same invoice as CSV or as JSON lines gives the same events."""

    number: int
    invoice_id: str | None
    carrier_message_id: str | None
    message_id: str | None
    billed_at: datetime
    destination: str | None
    parts: int
    cost: Decimal
    currency: str
    total: Decimal | None


def missing_columns(header: list[str], layout: InvoiceSettings, *, have_id: bool) -> list[str]:
    """The file's column names the layout needs and the header lacks (wrong columns)."""
    columns = layout.columns
    wanted = [columns.billed_at, columns.cost]
    if not have_id:
        wanted.append(columns.invoice_id)
    if layout.currency is None:
        wanted.append(columns.currency)
    missing = [name for name in wanted if name not in header]
    if columns.message_id not in header and columns.carrier_message_id not in header:
        missing.append(f"{columns.message_id} or {columns.carrier_message_id}")
    return missing


def parse_line(
    number: int, fields: Mapping[str, Any], layout: InvoiceSettings, limits: Limits
) -> InvoiceLine:
    """``fields`` (the file's names) as a line, or ParseError naming our field and why."""
    columns = layout.columns

    def text(name: str) -> str | None:
        value = fields.get(getattr(columns, name))
        if value is None:
            return None
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            value = format(value, "f") if isinstance(value, Decimal) else str(value)
        if not isinstance(value, str):
            raise ParseError(name, f"must be text or a number, got {type(value).__name__}")
        value = bounded.check_text(value, name).strip()
        if len(value) > 128:
            raise ParseError(name, "longer than 128 characters")
        return value or None

    message_id, carrier_message_id = text("message_id"), text("carrier_message_id")
    if message_id is None and carrier_message_id is None:
        raise ParseError("message_id", "neither message_id nor carrier_message_id is given")
    billed = fields.get(columns.billed_at)
    if isinstance(billed, datetime):
        billed_at = to_utc(billed, layout, limits)
    else:
        billed_text = text("billed_at")
        if billed_text is None:
            raise ParseError("billed_at", "missing")
        billed_at = parse_time(billed_text, layout, limits)

    def amount(name: str, bound: Limits | None) -> Decimal | None:
        value = fields.get(getattr(columns, name))
        if isinstance(value, Decimal):
            return check_amount(bounded.bounded_decimal(value, name), name, bound)
        written = text(name)
        return None if written is None else parse_amount(written, name, layout, bound)

    cost = amount("cost", limits)
    if cost is None:
        raise ParseError("cost", "missing")
    parts_text = text("parts")
    parts = 1 if parts_text is None else bounded.integer(parts_text, "parts")
    if not 1 <= parts <= MAX_PARTS:
        raise ParseError("parts", f"must be 1 to {MAX_PARTS}")
    currency = text("currency") or layout.currency
    if currency is None or not _CURRENCY.fullmatch(currency):
        raise ParseError("currency", "must be an ISO 4217 code such as RUB")
    total = amount("total", None)
    invoice_id = text("invoice_id")
    if invoice_id is not None and len(invoice_id) > MAX_INVOICE_ID:
        raise ParseError("invoice_id", f"longer than {MAX_INVOICE_ID} characters")
    return InvoiceLine(
        number=number,
        invoice_id=invoice_id,
        carrier_message_id=carrier_message_id,
        message_id=message_id,
        billed_at=billed_at,
        destination=text("destination"),
        parts=parts,
        cost=cost,
        currency=currency,
        total=total,
    )


def parse_amount(text: str, field: str, layout: InvoiceSettings, limits: Limits | None) -> Decimal:
    """A decimal written with the layout's separator; a line's cost is at most max_amount
    either way (a credit note is negative)."""
    if layout.decimal_separator == ",":
        if "." in text:
            raise ParseError(field, "a '.' in an amount written with ',' as decimal separator")
        text = text.replace(",", ".")
    return check_amount(bounded.decimal(text, field), field, limits)


def check_amount(amount: Decimal, field: str, limits: Limits | None) -> Decimal:
    if limits is not None and abs(amount) > limits.max_amount:
        raise ParseError(field, f"beyond {limits.max_amount} (ingest.max_amount)")
    return amount


def parse_time(text: str, layout: InvoiceSettings, limits: Limits) -> datetime:
    """billed_at as an aware UTC time: ISO 8601 or ``date_format``, zoneless in ``timezone``."""
    if len(text) > 64:
        raise ParseError("billed_at", "longer than 64 characters")
    try:
        if layout.date_format:
            moment = datetime.strptime(text, layout.date_format)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError("billed_at", "not a time in the expected format") from None
    return to_utc(moment, layout, limits)


def to_utc(moment: datetime, layout: InvoiceSettings, limits: Limits) -> datetime:
    """``moment`` in UTC, read in the layout's time zone when it has none; a plausible year."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(layout.timezone))
    if not limits.min_year <= moment.year <= limits.max_year:
        raise ParseError(
            "billed_at",
            f"year outside {limits.min_year}..{limits.max_year} (ingest.min_year/max_year)",
        )
    return moment.astimezone(UTC)


def day_period(first: datetime, last: datetime) -> tuple[datetime, datetime]:
    """[from, to): the UTC days the lines fall in, the day after the last one excluded."""
    start = first.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = last.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, end + timedelta(days=1)


def line_key(invoice_id: str, version: int, number: int) -> str:
    return f"invoice:{invoice_id}:v{version}:line:{number}"


def header_key(invoice_id: str, version: int) -> str:
    return f"invoice:{invoice_id}:v{version}"


def closed_key(invoice_id: str) -> str:
    return f"invoice:{invoice_id}:closed"


def line_event(
    line: InvoiceLine, *, invoice_id: str, carrier: str, version: int, source: str
) -> NewEvent:
    """The ``carrier.invoiced`` event of a line, in the payload the projector's fold reads."""
    payload: dict[str, Any] = {
        "carrier": carrier,
        "cost": line.cost,
        "currency": line.currency,
        "parts": line.parts,
        "invoice_id": invoice_id,
        "version": version,
        "line": line.number,
    }
    if line.carrier_message_id is not None:
        payload["carrier_message_id"] = line.carrier_message_id
    if line.message_id is not None:
        payload["message_id"] = line.message_id
    if line.destination is not None:
        payload["destination"] = line.destination
    return NewEvent(
        type="carrier.invoiced",
        occurred_at=line.billed_at,
        source=source,
        payload=payload,
        message_id=line.message_id,
        carrier=carrier,
        carrier_message_id=line.carrier_message_id,
        dedup_key=line_key(invoice_id, version, line.number),
    )
