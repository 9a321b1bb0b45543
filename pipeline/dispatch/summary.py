"""What one dispatch run did, per message: the summary line of ``smsrecon dispatch``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from pipeline.dispatch.record import Resolution


@dataclass
class DispatchSummary:
    """Counts of one run, per message (``requests`` counts HTTP requests)."""

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
