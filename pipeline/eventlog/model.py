"""Event values: what a writer hands the log, and what a reader gets back."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pipeline.times import display_time_text, iso_time_text

MAX_TYPE = 64

#: Every event type smsrecon writes or reads (docs/events.md). The log refuses others: an
#: unknown type could never be un-written, and no reader would ever look at it.
EVENT_TYPES = frozenset(
    {
        "message.accepted",
        "message.refused",
        "carrier.submitted",
        "carrier.status",
        "carrier.invoiced",
        "carrier.invoice",
        "carrier.invoice_closed",
        "dispatch.acknowledged",
        "dispatch.failed",
        "mismatch.acknowledged",
        "fx.rate",
        "report.generated",
        "period.closed",
        "period.reopened",
        "prices.recorded",
        "prices.repriced",
        "events.archived",
    }
)
MAX_ID = 128
#: Payload key saying where ``occurred_at`` came from; present only as ``RECEIVED``, on an
#: event whose source gave no time, so it carries our receive time (docs/events.md).
TIME_SOURCE = "time_source"
RECEIVED = "received"
MAX_SOURCE = 128


class EventError(ValueError):
    """An event that cannot be stored; the message names the field and the reason."""


def utc_now() -> datetime:
    return datetime.now(UTC)


#: Values stored as they are. Exact types, not isinstance: a bool is an int, and a subclass
#: of str (an enum member, say) would not round-trip as the same value.
_PLAIN = frozenset({str, int, bool, type(None)})


def to_json_value(value: Any, path: str = "payload") -> Any:
    """Payloads are plain JSON; Decimals become strings so that no digit is lost to floats."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        # The hot path (every ingested report): plain values are copied without a call, and
        # a path string is built only for a value that needs converting or refusing.
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise EventError(f"{path}: object keys must be strings")
            out[key] = item if type(item) in _PLAIN else to_json_value(item, f"{path}.{key}")
        return out
    if kind is list or kind is tuple:
        return [
            item if type(item) in _PLAIN else to_json_value(item, f"{path}[{i}]")
            for i, item in enumerate(value)
        ]
    return _convert(value, path)


def _convert(value: Any, path: str) -> Any:
    if isinstance(value, bool):  # subclasses of the plain types, stored as the plain value
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, float):
        raise EventError(f"{path}: floats are not stored (use a decimal string)")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise EventError(f"{path}: not a finite decimal")
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise EventError(f"{path}: naive datetime")
        return display_time_text(value)
    if isinstance(value, dict):
        return to_json_value(dict(value), path)
    if isinstance(value, (list, tuple)):
        return to_json_value(list(value), path)
    raise EventError(f"{path}: {type(value).__name__} is not a JSON value")


def _check_id(name: str, value: str | None, limit: int = MAX_ID) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise EventError(f"{name}: must be a string, got {type(value).__name__}")
    if not value or len(value) > limit:
        raise EventError(f"{name}: must be 1 to {limit} characters")


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event not yet stored. ``dedup_key`` is derived from the content when not given."""

    type: str
    occurred_at: datetime
    source: str
    payload: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    carrier: str | None = None
    carrier_message_id: str | None = None
    dedup_key: str | None = None

    def __post_init__(self) -> None:
        _check_id("type", self.type, MAX_TYPE)
        if self.type not in EVENT_TYPES:
            raise EventError(
                f"type: unknown event type {self.type!r} (one of {', '.join(sorted(EVENT_TYPES))})"
            )
        _check_id("source", self.source, MAX_SOURCE)
        _check_id("message_id", self.message_id)
        _check_id("carrier", self.carrier, MAX_TYPE)
        _check_id("carrier_message_id", self.carrier_message_id)
        _check_id("dedup_key", self.dedup_key)
        if not isinstance(self.occurred_at, datetime) or self.occurred_at.tzinfo is None:
            raise EventError("occurred_at: must be a timezone-aware datetime")
        if not isinstance(self.payload, dict):
            raise EventError("payload: must be an object")
        object.__setattr__(self, "occurred_at", self.occurred_at.astimezone(UTC))
        object.__setattr__(self, "payload", to_json_value(self.payload))
        if self.dedup_key is None:
            object.__setattr__(self, "dedup_key", derive_dedup_key(self))


def derive_dedup_key(event: NewEvent) -> str:
    """A content hash: the same fact, however often it arrives, gets the same key."""
    canonical = json.dumps(
        [
            event.type,
            event.message_id,
            event.carrier,
            event.carrier_message_id,
            iso_time_text(event.occurred_at),
            event.payload,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


MAX_ERROR = 300


def describe_error(exc: BaseException) -> str:
    """A short, bounded description: the exception's type and the first line of its text."""
    lines = str(exc).strip().splitlines()
    described = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return described[:MAX_ERROR]


@dataclass(frozen=True, slots=True)
class UnreadableEvent:
    """A stored row no reader can decode into a ``StoredEvent`` (a time no calendar holds,
    a payload that is not a JSON object): shown as it is stored, never folded.

    Only raw SQL or an older version can have put one in the log; since the log is
    append-only it stays there, so every reader shows it rather than failing on it.
    """

    position: int
    type: str | None
    message_id: str | None
    carrier: str | None
    carrier_message_id: str | None
    #: The stored texts of the two times.
    occurred_at: str | None
    recorded_at: str | None
    source: str | None
    #: The decoded JSON when it parsed, else the stored text.
    payload: Any
    dedup_key: str | None
    error: str

    def as_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "type": self.type,
            "message_id": self.message_id,
            "carrier": self.carrier,
            "carrier_message_id": self.carrier_message_id,
            "occurred_at": self.occurred_at,
            "recorded_at": self.recorded_at,
            "source": self.source,
            "payload": self.payload,
            "dedup_key": self.dedup_key,
            "unreadable": self.error,
        }


@dataclass(frozen=True, slots=True)
class StoredEvent:
    position: int
    type: str
    message_id: str | None
    carrier: str | None
    carrier_message_id: str | None
    occurred_at: datetime
    recorded_at: datetime
    source: str
    payload: dict[str, Any]
    dedup_key: str

    def as_json(self) -> dict[str, Any]:
        """Every column, times in RFC 3339 UTC: the ``jsonl`` output format."""
        return {
            "position": self.position,
            "type": self.type,
            "message_id": self.message_id,
            "carrier": self.carrier,
            "carrier_message_id": self.carrier_message_id,
            "occurred_at": to_json_value(self.occurred_at),
            "recorded_at": to_json_value(self.recorded_at),
            "source": self.source,
            "payload": self.payload,
            "dedup_key": self.dedup_key,
        }
