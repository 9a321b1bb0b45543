"""The dispatcher's plain types: what flows from claim to route to answer to record.

No I/O and no SQL here: the claim module fills ``ClaimedItem``/``Claim``, the router turns
each into ``Routed`` or ``Refusal``, an answer is an ``Outcome``, ``settle`` makes one
``Resolution`` per message, the record module writes those, and ``DispatchSummary`` counts
them. The pure rules (``settle``, ``routes``) take their types from here alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pipeline.dispatch.payload import StatusPayload


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    """One message's state as read at claim time, with the lease that covers it."""

    message_id: str
    partner: str
    delivery_callback_url: str | None
    status: int | None
    is_final: bool
    payment_sum: Decimal | None
    currency_iso: str | None
    parts_amount: int | None
    payload_hash: str
    version: int
    #: This attempt's number (1 for the first claim of the message).
    attempt: int
    #: Consecutive failures before this attempt (the backoff exponent).
    failures: int
    first_pending_at: datetime
    #: True when this single item is the probe of the partner's open circuit.
    probe: bool = False


@dataclass(frozen=True, slots=True)
class Claim:
    owner: str
    lease_until: datetime
    items: list[ClaimedItem]
    #: The highest message id the scan reached (probes aside): the next claim of the same
    #: pass starts after it. None when the scan found nothing.
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Routed:
    """A claimed message ready to go: its payload, URL and the partner's token."""

    item: ClaimedItem
    payload: StatusPayload
    url: str
    token: str
    #: The URL with the token masked, for logs, rows and events.
    masked_url: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """A claimed message that must not be sent; ``kind`` is the mismatch it opens."""

    item: ClaimedItem
    kind: str
    error: str
    url: str = ""


#: What to do with the items of one request.
Action = Literal[
    "acknowledged",  # 2xx: remember the payload hash
    "split",  # 400 / 404 / 413: bisect to find the offending items (single item: park)
    "park",  # 403 and other refusals: park until the payload changes
    "open_circuit",  # 401: the partner's token is wrong
    "retry",  # 408 / 429 / 5xx / network: back off and try again
]


@dataclass(frozen=True, slots=True)
class Outcome:
    """Altegio's answer to one request, and what it means for the request's items."""

    action: Action
    #: HTTP status, or None when there was no answer (timeout, reset, refused).
    http_status: int | None
    #: Altegio's error code from the body (5, 10, 15, 20, 30) when it sent one.
    altegio_code: int | None = None
    #: A one-line description: Altegio's message, or the network error. Token-free only
    #: after masking, which the caller does (it knows the token).
    text: str = ""
    #: Seconds from Retry-After, when the server said.
    retry_after: float | None = None
    #: The mismatch kind for split / park / open_circuit.
    kind: str | None = None

    @property
    def transient(self) -> bool:
        return self.action == "retry"


#: What became of one claimed message.
Result = Literal[
    "acknowledged",  # Altegio took it
    "retry",  # transient failure: due again at next_attempt_at
    "parked",  # refused: waits for a new payload (or `smsrecon resend`)
    "expired",  # unacknowledged past dispatcher.max_age
    "circuit",  # the partner's circuit is open: waits for the probe
    "deferred",  # not sent at all (lease too short, circuit opened meanwhile)
]


@dataclass(frozen=True, slots=True)
class Resolution:
    item: ClaimedItem
    result: Result
    #: The answer that decided it; None when decided here (bad URL, unknown partner).
    outcome: Outcome | None
    #: The callback URL, token masked.
    url: str
    #: The mismatch kind opened (parked, expired, circuit), if any.
    kind: str | None = None
    #: Token-masked description for last_error and the mismatch.
    error: str | None = None
    next_attempt_at: datetime | None = None
    #: For "circuit": when the partner's probe is due.
    probe_at: datetime | None = None
    #: More detail for the mismatch, if any.
    extra: Mapping[str, Any] | None = None


@dataclass
class DispatchSummary:
    """Counts of one run, per message (``requests`` counts HTTP requests): the summary
    line of ``smsrecon dispatch``."""

    claimed: int = 0
    sent: int = 0
    requests: int = 0
    acknowledged: int = 0
    retried: int = 0
    parked: int = 0
    expired: int = 0
    circuit: int = 0
    deferred: int = 0

    def add(self, other: DispatchSummary) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def needs_attention(self) -> bool:
        """Something a person must look at: a message parked or expired, a circuit open."""
        return bool(self.parked or self.expired or self.circuit)

    def line(self) -> str:
        return (
            f"dispatch: sent {self.sent}, acknowledged {self.acknowledged}, "
            f"retried {self.retried}, parked {self.parked}, expired {self.expired}, "
            f"held by circuit {self.circuit}, deferred {self.deferred} "
            f"({self.requests} requests)"
        )

    def count(self, resolutions: Sequence[Resolution]) -> None:
        """Add each message's result to its counter."""
        for res in resolutions:
            match res.result:
                case "acknowledged":
                    self.acknowledged += 1
                case "retry":
                    self.retried += 1
                case "parked":
                    self.parked += 1
                case "expired":
                    self.expired += 1
                case "circuit":
                    self.circuit += 1
                case "deferred":
                    self.deferred += 1
