"""The adapter contract: a raw HTTP request in, ``carrier.status`` events (or a ParseError) out.

Every format module exposes ``parse(request, carrier) -> Parsed`` and is listed in
``registry``. Adapters are pure: the time a report was received and the carrier's zone come
in through ``CarrierContext``, so the same request always parses to the same events (and the
same dedup keys), whether it arrives live, from a file, or is replayed out of quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from pipeline.eventlog import NewEvent


@dataclass(frozen=True, slots=True)
class RawRequest:
    """An HTTP request as the gateway sent it, before any interpretation."""

    method: str  # "GET" | "POST"
    path: str  # "/v1/dlr/mts"
    query: list[tuple[str, str]]  # decoded query pairs, in order
    headers: dict[str, str]  # header names lower-cased
    body: bytes


@dataclass(frozen=True, slots=True)
class Limits:
    """What ingest accepts as plausible (``ingest.min_year``, ``max_year``, ``max_amount``).

    A time outside the years, or a price or cost above the amount, is refused as bad input
    rather than stored: one such event once stopped every later projection.
    """

    min_year: int = 2000
    max_year: int = 2100
    max_amount: Decimal = Decimal("100000")


#: The defaults of the ingest settings.
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class CarrierContext:
    """What an adapter needs to know about the configured carrier (``carriers.<name>``)."""

    name: str  # configured carrier name (carriers.<name>)
    timezone: ZoneInfo  # for carrier times written without a zone
    received_at: datetime  # tz-aware UTC; used when a report has no done date
    limits: Limits = DEFAULT_LIMITS  # the plausible times and amounts (ingest settings)


@dataclass(frozen=True, slots=True)
class Parsed:
    """The events one request carries and the answer its gateway expects."""

    events: list[NewEvent]  # pipeline.eventlog.NewEvent, type "carrier.status"
    reply_status: int = 200
    reply_body: str = "OK"  # Jasmin needs exactly "ACK/Jasmin"
    reply_content_type: str = "text/plain"


class ParseError(ValueError):
    """A report that cannot be understood. Names the field and why, never echoes a secret."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
