"""``infobip``: Infobip's SMS delivery-report webhook, ``{"results": [...]}``.

Up to 100 reports per request, one event each. A report carries ``messageId`` (Infobip's id;
the sender may choose it when sending), ``smsCount`` (the message's parts), ``price``
(``pricePerMessage`` and ``currency``), ``doneAt`` and the ``status`` / ``error`` objects.
``pricePerMessage`` is the price of one SMS part, so the message's carrier cost is
``pricePerMessage × smsCount`` (cost_scope ``message``). ``callbackData`` is free text the
sender attached; it is kept in ``raw`` but not taken as our message id, because Infobip
documents no meaning for it: correlation goes through ``carrier.submitted`` (or a
``message_id`` query parameter on the notify URL).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pipeline.ingest.adapters import statuses
from pipeline.ingest.adapters.base import CarrierContext, Parsed, ParseError, RawRequest
from pipeline.ingest.adapters.fields import (
    first,
    optional_text,
    parse_currency,
    parse_decimal,
    parse_int,
    parse_json,
)
from pipeline.ingest.adapters.ids import normalise_carrier_message_id
from pipeline.ingest.adapters.report import Report, to_event
from pipeline.ingest.adapters.times import parse_iso_datetime

FORMAT = "infobip"
MAX_RESULTS = 100


def parse(request: RawRequest, carrier: CarrierContext) -> Parsed:
    document = parse_json(request)
    if not isinstance(document, dict):
        raise ParseError("body", "must be a JSON object with results[]")
    results = document.get("results")
    if not isinstance(results, list) or not results:
        raise ParseError("results", "required: a non-empty array of reports")
    if len(results) > MAX_RESULTS:
        raise ParseError("results", f"{len(results)} reports; Infobip sends at most {MAX_RESULTS}")
    message_id = (first(request.query, "message_id") or "").strip() or None
    if message_id is not None and len(results) > 1:
        raise ParseError("message_id", "names one message but the request has several reports")
    events = []
    for index, result in enumerate(results):
        try:
            report = read_result(result, carrier, message_id)
        except ParseError as exc:
            raise ParseError(f"results[{index}].{exc.field}", exc.reason) from None
        events.append(to_event(report, request, carrier))
    return Parsed(events=events)


def read_result(result: Any, carrier: CarrierContext, message_id: str | None) -> Report:
    if not isinstance(result, dict):
        raise ParseError("result", "must be a JSON object")
    infobip_id = optional_text(result.get("messageId"), "messageId")
    if infobip_id is None:
        raise ParseError("messageId", "required")
    raw_status, status = read_status(result.get("status"))
    parts = None
    if result.get("smsCount") is not None:
        parts = parse_int(result["smsCount"], "smsCount", minimum=1)
    cost, scope, currency = read_price(result.get("price"), parts)
    done = optional_text(result.get("doneAt"), "doneAt")
    return Report(
        format=FORMAT,
        raw_status=raw_status,
        status=status,
        raw=_plain(result),
        message_id=message_id,
        carrier_message_id=normalise_carrier_message_id(infobip_id, field="messageId"),
        error_code=read_error(result.get("error")),
        parts=parts,
        cost=cost,
        cost_scope=scope,
        currency=currency,
        done_at=None if done is None else parse_iso_datetime(done, carrier.timezone, "doneAt"),
        raw_done=done,
    )


def read_status(value: Any) -> tuple[str, int]:
    """``status.name`` when a name has its own row, else the group (by name or id)."""
    if not isinstance(value, dict):
        raise ParseError("status", "required: an object with groupName/groupId and name")
    name = optional_text(value.get("name"), "status.name")
    group = optional_text(value.get("groupName"), "status.groupName")
    if group is None and value.get("groupId") is not None:
        group = statuses.INFOBIP_GROUP_IDS.get(parse_int(value["groupId"], "status.groupId"))
    raw_status = name or group
    if raw_status is None:
        raise ParseError("status", "has neither name nor a known group")
    if name is not None and name.upper() in statuses.INFOBIP_NAMES:
        return raw_status, statuses.INFOBIP_NAMES[name.upper()]
    if group is not None and group.upper() in statuses.INFOBIP_GROUPS:
        return raw_status, statuses.INFOBIP_GROUPS[group.upper()]
    raise ParseError("status", f"unknown status group {group!r} (docs/carriers.md)")


def read_price(value: Any, parts: int | None) -> tuple[Decimal | None, str | None, str | None]:
    """The message's cost: pricePerMessage is per SMS part, smsCount the parts."""
    if value is None:
        return None, None, None
    if not isinstance(value, dict):
        raise ParseError("price", "must be an object with pricePerMessage and currency")
    if value.get("pricePerMessage") is None:
        return None, None, None
    per_part = parse_decimal(value["pricePerMessage"], "price.pricePerMessage")
    if per_part < 0:
        raise ParseError("price.pricePerMessage", "must not be negative")
    currency = parse_currency(value.get("currency"), "price.currency")
    if parts is None:
        # Without smsCount only the per-part price is known: say so rather than guess.
        return per_part, "part", currency
    return per_part * parts, "message", currency


def read_error(value: Any) -> str | None:
    """The error id, unless it is Infobip's ``0 NO_ERROR``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ParseError("error", "must be an object")
    if value.get("id") is None:
        return None
    code = parse_int(value["id"], "error.id")
    return None if code == 0 else str(code)


def _plain(value: Any) -> Any:
    """JSON numbers read as Decimal go back into ``raw`` as strings, never floats."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
