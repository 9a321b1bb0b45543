"""``generic``: smsrecon's own documented JSON report, for any gateway without an adapter.

One object or an array of objects (docs/carriers.md):
``{"message_id"?, "carrier_message_id"?, "status", "occurred_at"?, "parts"?, "part"?,
"cost"?, "currency"?, "error_code"?}`` with at least one of the two ids. ``status`` is an
SMPP receipt stat (``"DELIVRD"``) or an Altegio code (``1`` or ``"1"``); ``cost`` is the
message's total as a decimal string. Unknown keys are refused: in a format we define, an
unknown key is a typo that would otherwise drop data silently.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pipeline.ingest.adapters import statuses
from pipeline.ingest.adapters.base import CarrierContext, Parsed, ParseError, RawRequest
from pipeline.ingest.adapters.fields import (
    optional_text,
    parse_currency,
    parse_decimal,
    parse_int,
    parse_json,
)
from pipeline.ingest.adapters.ids import normalise_carrier_message_id
from pipeline.ingest.adapters.report import Report, to_event
from pipeline.ingest.adapters.times import parse_iso_datetime

FORMAT = "generic"
KEYS = frozenset(
    {
        "message_id",
        "carrier_message_id",
        "status",
        "occurred_at",
        "parts",
        "part",
        "cost",
        "currency",
        "error_code",
    }
)
MAX_REPORTS = 1000


def parse(request: RawRequest, carrier: CarrierContext) -> Parsed:
    if request.body.strip():
        document = parse_json(request)
    elif request.query:
        document = dict(request.query)
    else:
        raise ParseError("body", "empty (a JSON object or array is expected)")
    items = document if isinstance(document, list) else [document]
    if not items:
        raise ParseError("body", "an empty array carries no report")
    if len(items) > MAX_REPORTS:
        raise ParseError("body", f"more than {MAX_REPORTS} reports in one request")
    events = []
    for index, item in enumerate(items):
        prefix = f"[{index}]." if isinstance(document, list) else ""
        try:
            events.append(to_event(read_report(item, carrier), request, carrier))
        except ParseError as exc:
            raise ParseError(prefix + exc.field, exc.reason) from None
    return Parsed(events=events)


def read_report(item: Any, carrier: CarrierContext) -> Report:
    if not isinstance(item, dict):
        raise ParseError("report", f"must be a JSON object, got {type(item).__name__}")
    unknown = sorted(set(item) - KEYS)
    if unknown:
        raise ParseError(unknown[0], "unknown key")
    message_id = optional_text(item.get("message_id"), "message_id")
    carrier_id = optional_text(item.get("carrier_message_id"), "carrier_message_id")
    if message_id is None and carrier_id is None:
        raise ParseError("message_id", "required (or carrier_message_id)")
    raw_status, status = read_status(item.get("status"))
    occurred = optional_text(item.get("occurred_at"), "occurred_at")
    cost = None if item.get("cost") is None else parse_decimal(item["cost"], "cost")
    if cost is not None and cost < 0:
        raise ParseError("cost", "must not be negative")
    currency = None
    if item.get("currency") is not None:
        currency = parse_currency(item["currency"], "currency")
    if cost is not None and currency is None:
        raise ParseError("currency", "required when cost is given")
    parts = None if item.get("parts") is None else parse_int(item["parts"], "parts", minimum=1)
    part = None if item.get("part") is None else parse_int(item["part"], "part", minimum=1)
    if parts is not None and part is not None and part > parts:
        raise ParseError("part", f"{part} is beyond parts ({parts})")
    return Report(
        format=FORMAT,
        raw_status=raw_status,
        status=status,
        raw=_jsonable(item),
        message_id=message_id,
        carrier_message_id=None if carrier_id is None else normalise_carrier_message_id(carrier_id),
        error_code=optional_text(item.get("error_code"), "error_code"),
        parts=parts,
        part=part,
        cost=cost,
        cost_scope="message" if cost is not None else None,
        currency=currency,
        done_at=None
        if occurred is None
        else parse_iso_datetime(occurred, carrier.timezone, "occurred_at"),
        raw_done=occurred,
    )


def read_status(value: Any) -> tuple[str, int]:
    """An Altegio code (``1``, ``"16"``) or an SMPP stat (``"DELIVRD"``, any case)."""
    text = optional_text(value, "status")
    if text is None:
        raise ParseError("status", "required")
    if text.isascii() and text.isdigit():
        code = int(text) if len(text) <= 4 else -1  # bounded before int()
        if code not in statuses.ALTEGIO_CODES:
            raise ParseError("status", f"{text[:20]} is not an Altegio code (1, 2, 4, 8, 16, 52)")
        return text, code
    stat = text.upper()
    if stat not in statuses.SMPP_STATS:
        raise ParseError("status", f"unknown status {text[:20]!r} (an SMPP stat or Altegio code)")
    return stat, statuses.SMPP_STATS[stat]


def _jsonable(item: dict[str, Any]) -> dict[str, Any]:
    """Decimals read from JSON numbers are kept as strings in ``raw``, never floats."""
    return {key: str(value) if isinstance(value, Decimal) else value for key, value in item.items()}
