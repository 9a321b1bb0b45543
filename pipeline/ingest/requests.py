"""The provider's own records: accepted messages, carrier submissions and refusals.

``POST /v1/messages``, ``/v1/submissions`` and ``/v1/refusals`` (and ``smsrecon ingest
--format messages|submissions|refusals``) take one JSON object or an array of them. These
pure functions turn each item into one event of docs/events.md, or collect every problem as
``(index, field, reason)`` so that the sender can fix all of them at once. A request is all
or nothing: one bad item refuses the whole request, so a resend never half-duplicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers

from pipeline.eventlog import NewEvent
from pipeline.eventlog.model import MAX_ID, EventError
from pipeline.ingest.adapters.base import DEFAULT_LIMITS, Limits, ParseError
from pipeline.ingest.adapters.report import MAX_PARTS
from pipeline.ingest.adapters.times import MAX_TIME_CHARS, check_window

#: Route kind -> the event type each of its items becomes.
KINDS: tuple[str, ...] = ("messages", "submissions", "refusals")

CHANNELS = ("sms", "whatsapp")
DISPATCH_TYPES = ("service", "adds")
#: Reasons the projector knows; any other non-empty reason is kept verbatim (docs/events.md).
KNOWN_REFUSALS = ("insufficient_funds",)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one item: ``index`` is None when the body itself is wrong."""

    index: int | None
    field: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "reason": self.reason}
        if self.index is not None:
            out = {"index": self.index, **out}
        return out

    def __str__(self) -> str:
        where = f"[{self.index}]." if self.index is not None else ""
        return f"{where}{self.field}: {self.reason}"


class RequestError(ValueError):
    """Every problem found in a request body; nothing of it may be stored."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class _ItemError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def bounded_key(prefix: str, rest: str) -> str:
    """``prefix + rest``, or ``prefix + "sha256:" + hash(rest)`` when it would not fit.

    The events table keeps dedup keys up to 128 characters while ids may be as long; a long
    key is hashed rather than refused, and stays just as stable.
    """
    key = prefix + rest
    if len(key) <= MAX_ID:
        return key
    return prefix + "sha256:" + hashlib.sha256(rest.encode("utf-8")).hexdigest()


def items_of(document: Any) -> list[Any]:
    """One object or an array of them; an empty array is an error (nothing to record)."""
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list):
        if not document:
            raise RequestError([Problem(None, "body", "an empty array")])
        return document
    raise RequestError([Problem(None, "body", "must be a JSON object or an array of objects")])


def parse_items(
    kind: str,
    document: Any,
    *,
    now: datetime,
    source: str,
    carriers: Collection[str] | None = None,
    normalise_id: Callable[[str, str], str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[NewEvent]:
    """Events for every item of a ``kind`` body, or RequestError listing every problem.

    ``carriers`` are the configured carrier names (a submission naming another could never
    be correlated with its reports); ``normalise_id(carrier, id)`` brings a carrier message
    id to the form the carrier's reports use; ``limits`` bound the times (ingest settings).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    items = items_of(document)
    events: list[NewEvent] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise _ItemError("item", "must be a JSON object")
            if kind == "messages":
                events.append(message_accepted(item, now=now, source=source, limits=limits))
            elif kind == "submissions":
                events.append(
                    carrier_submitted(
                        item,
                        now=now,
                        source=source,
                        carriers=carriers,
                        normalise_id=normalise_id,
                        limits=limits,
                    )
                )
            else:
                events.append(message_refused(item, now=now, source=source, limits=limits))
        except _ItemError as exc:
            problems.append(Problem(index, exc.field, exc.reason))
        except EventError as exc:
            field, _, reason = str(exc).partition(": ")
            problems.append(Problem(index, field, reason or str(exc)))
    if problems:
        raise RequestError(problems)
    return events


MESSAGE_FIELDS = {
    "id",
    "phone",
    "text",
    "parts",
    "sender",
    "partner",
    "channel",
    "dispatch_type",
    "delivery_callback_url",
    "free",
    "accepted_at",
}


def message_accepted(
    item: Mapping[str, Any], *, now: datetime, source: str, limits: Limits = DEFAULT_LIMITS
) -> NewEvent:
    _refuse_unknown(item, MESSAGE_FIELDS)
    message_id = _identifier(item, "id")
    phone = normalise_phone(_string(item, "phone", required=True))
    text = _string(item, "text")
    parts = _positive_int(item, "parts")
    if text is None and parts is None:
        raise _ItemError("text", "required (or parts, when the text is not given)")
    channel = _string(item, "channel") or "sms"
    if channel not in CHANNELS:
        raise _ItemError("channel", f"must be one of {', '.join(CHANNELS)}")
    dispatch_type = _string(item, "dispatch_type")
    if dispatch_type is not None and dispatch_type not in DISPATCH_TYPES:
        raise _ItemError("dispatch_type", f"must be one of {', '.join(DISPATCH_TYPES)}")
    free = item.get("free", False)
    if free is None:
        free = False
    if not isinstance(free, bool):
        raise _ItemError("free", "must be true or false")
    payload: dict[str, Any] = {
        "partner": _string(item, "partner") or "default",
        "phone": phone,
        "channel": channel,
        "free": free,
    }
    optional = {
        "text": text,
        "parts": parts,
        "sender": _string(item, "sender"),
        "dispatch_type": dispatch_type,
        "delivery_callback_url": _string(item, "delivery_callback_url"),
    }
    payload.update({key: value for key, value in optional.items() if value is not None})
    return NewEvent(
        type="message.accepted",
        message_id=message_id,
        occurred_at=_time(item, "accepted_at", now, limits),
        source=source,
        payload=payload,
        dedup_key=bounded_key("accepted:", message_id),
    )


SUBMISSION_FIELDS = {
    "message_id", "carrier", "carrier_message_id", "id_base", "parts", "part", "submitted_at",
}  # fmt: skip

#: ``id_base`` of a submission: the base the SMSC wrote its submit_sm_resp id in, when the
#: id is a number its receipts may quote in another base (Kannel's ``msg-id-type``).
ID_BASES = {"hex": 16, "decimal": 10}


def carrier_submitted(
    item: Mapping[str, Any],
    *,
    now: datetime,
    source: str,
    carriers: Collection[str] | None = None,
    normalise_id: Callable[[str, str, int | None], str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> NewEvent:
    _refuse_unknown(item, SUBMISSION_FIELDS)
    message_id = _identifier(item, "message_id")
    carrier = _identifier(item, "carrier")
    if carriers is not None and carrier not in carriers:
        known = ", ".join(sorted(carriers)) or "none"
        raise _ItemError("carrier", f"not a configured carrier (configured: {known})")
    carrier_message_id = _identifier(item, "carrier_message_id")
    as_submitted = carrier_message_id
    id_base = _string(item, "id_base")
    base = None
    if id_base is not None:
        base = ID_BASES.get(id_base.strip().lower())
        if base is None:
            raise _ItemError("id_base", f"must be hex or decimal, got {id_base[:10]!r}")
    if normalise_id is not None:
        try:
            carrier_message_id = normalise_id(carrier, carrier_message_id, base)
        except ValueError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            raise _ItemError("carrier_message_id", reason) from None
    payload: dict[str, Any] = {}
    if base is not None:
        # The id as the SMSC wrote it, for the audit trail; the column holds it in decimal.
        payload["submitted_id"] = as_submitted
        payload["id_base"] = id_base.strip().lower()  # type: ignore[union-attr]
    for name in ("parts", "part"):
        value = _positive_int(item, name)
        if value is not None:
            payload[name] = value
    return NewEvent(
        type="carrier.submitted",
        message_id=message_id,
        carrier=carrier,
        carrier_message_id=carrier_message_id,
        occurred_at=_time(item, "submitted_at", now, limits),
        source=source,
        payload=payload,
        dedup_key=bounded_key("submitted:", f"{carrier}:{carrier_message_id}"),
    )


REFUSAL_FIELDS = {"message_id", "reason", "detail", "refused_at"}


def message_refused(
    item: Mapping[str, Any], *, now: datetime, source: str, limits: Limits = DEFAULT_LIMITS
) -> NewEvent:
    _refuse_unknown(item, REFUSAL_FIELDS)
    message_id = _identifier(item, "message_id")
    payload: dict[str, Any] = {"reason": _string(item, "reason", required=True)}
    detail = _string(item, "detail")
    if detail is not None:
        payload["detail"] = detail
    return NewEvent(
        type="message.refused",
        message_id=message_id,
        occurred_at=_time(item, "refused_at", now, limits),
        source=source,
        payload=payload,
        dedup_key=bounded_key("refused:", message_id),
    )


def normalise_phone(raw: str) -> str:
    """E.164 (``+79161234567``). Digits without ``+`` are read as already international,
    which is how Altegio and the gateways write them; a number of impossible length for its
    country is refused rather than billed against the wrong prefix."""
    candidate = raw.strip()
    if not candidate.startswith("+"):
        candidate = "+" + candidate
    try:
        number = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        raise _ItemError("phone", f"not a phone number: {raw!r}") from None
    if not phonenumbers.is_possible_number(number):
        raise _ItemError("phone", f"not a possible phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _refuse_unknown(item: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise _ItemError(unknown[0], "unknown field")


def _string(item: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise _ItemError(name, "required")
        return None
    if not isinstance(value, str):
        raise _ItemError(name, f"must be a string, got {_json_type(value)}")
    return value


def _identifier(item: Mapping[str, Any], name: str) -> str:
    """Identifiers are strings; an integer is accepted and kept as its decimal text."""
    value = item.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        raise _ItemError(name, "required")
    if not isinstance(value, str):
        raise _ItemError(name, f"must be a string, got {_json_type(value)}")
    if len(value) > MAX_ID or value != value.strip():
        raise _ItemError(name, f"must be 1 to {MAX_ID} characters without surrounding spaces")
    return value


def _positive_int(item: Mapping[str, Any], name: str) -> int | None:
    """A part count or number: 1 to MAX_PARTS, from a JSON integer or ASCII digits (the
    text's length checked before ``int()``)."""
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 3:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PARTS:
        raise _ItemError(name, f"must be a positive integer up to {MAX_PARTS}")
    return value


def _time(item: Mapping[str, Any], name: str, default: datetime, limits: Limits) -> datetime:
    value = item.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise _ItemError(name, "must be an RFC 3339 string")
    if len(value) > MAX_TIME_CHARS or not value.isascii():
        raise _ItemError(name, f"not an RFC 3339 time: {value[:40]!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _ItemError(name, f"not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise _ItemError(name, f"has no time zone (add Z or an offset): {value!r}")
    try:
        return check_window(parsed, limits, name)
    except ParseError as exc:
        raise _ItemError(name, exc.reason) from None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
