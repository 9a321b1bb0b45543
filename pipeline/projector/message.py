"""What the projector remembers about one message between events (JSON in ``fold_state``).

Only facts live here, each kept so that the order events arrive in cannot change it (a max,
a min, or a keyed map); everything Altegio or finance sees is *derived* from these facts by
``pipeline.projector.derive``. That split is what makes the fold order-independent and
replay equal to incremental projection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.domain.status import Stamp, Track


@dataclass(slots=True)
class Accepted:
    partner: str
    phone: str | None
    channel: str
    dispatch_type: str | None
    delivery_callback_url: str | None
    free: bool
    text: str | None
    parts: int | None
    accepted_at: str
    position: int


@dataclass(slots=True)
class Submission:
    carrier: str
    carrier_message_id: str
    part: int | None
    parts: int | None
    stamp: Stamp


@dataclass(slots=True)
class Cost:
    amount: str
    currency: str | None
    stamp: Stamp


@dataclass(slots=True)
class BilledLine:
    """One invoice line that bills the message (``carrier.invoiced``)."""

    invoice_id: str
    version: int
    line: int
    carrier: str | None
    carrier_message_id: str | None
    parts: int
    amount: str
    currency: str | None
    position: int


@dataclass(slots=True)
class Acked:
    """What Altegio acknowledged last (the latest ``dispatch.acknowledged`` in the log)."""

    payment_sum: str | None
    currency_iso: str | None
    status: int | None
    position: int


@dataclass(slots=True)
class MessageFacts:
    message_id: str
    accepted: Accepted | None = None
    refused: tuple[str, Stamp] | None = None  # (reason, stamp)
    #: "carrier:carrier_message_id" -> the submission.
    submissions: dict[str, Submission] = field(default_factory=dict)
    #: Raw report keys: "part:N", "cmid:CARRIER:ID" or "message" -> track.
    tracks: dict[str, Track] = field(default_factory=dict)
    #: The latest DLR that stated a part count: (parts, stamp).
    dlr_parts: tuple[int, Stamp] | None = None
    #: cost_scope "part": latest cost per raw part key; "message": the latest message cost.
    part_costs: dict[str, Cost] = field(default_factory=dict)
    message_cost: Cost | None = None
    #: "invoice:version:line" -> the line, every version (the latest of an invoice counts).
    lines: dict[str, BilledLine] = field(default_factory=dict)
    acked: Acked | None = None
    #: scope -> (table version, position of the ``prices.repriced`` that named it): the
    #: latest repricing of the message per scope, which prices it instead of the table in
    #: force at its acceptance.
    repriced: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Mismatch kinds whose condition currently holds -> their detail (for open/resolve).
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The grace timer for "reports but no message.accepted": [held position, deadline].
    unaccepted_timer: tuple[int, str] | None = None
    #: The ``stale`` timer while the message is not final: [held position, deadline].
    stale_timer: tuple[int, str] | None = None
    # Bookkeeping of the visible row.
    payload: tuple[Any, ...] | None = None
    version: int = 0
    last_position: int = 0
    #: The ``recorded_at`` of the last event folded (the row's ``updated_at``).
    updated_at: datetime | None = None
    #: Whether the last derivation found the message final (not stored: derived again).
    final: bool = False
    #: (rules, epoch, derivation) of the last ``fold_into`` (not stored, not copied): the
    #: row reuses it (``derive.row_view``).
    derived: Any = field(default=None, compare=False, repr=False)

    def copy(self) -> MessageFacts:
        return MessageFacts(
            message_id=self.message_id,
            accepted=self.accepted,
            refused=self.refused,
            submissions=dict(self.submissions),
            tracks=dict(self.tracks),
            dlr_parts=self.dlr_parts,
            part_costs=dict(self.part_costs),
            message_cost=self.message_cost,
            lines=dict(self.lines),
            acked=self.acked,
            repriced=dict(self.repriced) if self.repriced else {},
            conditions=dict(self.conditions),
            unaccepted_timer=self.unaccepted_timer,
            stale_timer=self.stale_timer,
            payload=self.payload,
            version=self.version,
            last_position=self.last_position,
            updated_at=self.updated_at,
            final=self.final,
        )

    # -- JSON (the fold_state column) ------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data = self._json()
        if (
            self.repriced
        ):  # absent until repriced: rows of messages never repriced stay as they were
            data["repriced"] = {k: list(v) for k, v in self.repriced.items()}
        return data

    def _json(self) -> dict[str, Any]:
        return {
            "accepted": _accepted(self.accepted) if self.accepted else None,
            "refused": [self.refused[0], list(self.refused[1])] if self.refused else None,
            "submissions": {k: _submission(v) for k, v in self.submissions.items()},
            "tracks": {k: v.to_json() for k, v in self.tracks.items()},
            "dlr_parts": [self.dlr_parts[0], list(self.dlr_parts[1])] if self.dlr_parts else None,
            "part_costs": {k: _cost_json(v) for k, v in self.part_costs.items()},
            "message_cost": _cost_json(self.message_cost) if self.message_cost else None,
            "lines": {k: _dc(v) for k, v in self.lines.items()},
            "acked": _dc(self.acked),
            "conditions": self.conditions,
            "unaccepted_timer": list(self.unaccepted_timer) if self.unaccepted_timer else None,
            "stale_timer": list(self.stale_timer) if self.stale_timer else None,
            "payload": list(self.payload) if self.payload is not None else None,
        }

    @classmethod
    def from_json(
        cls,
        message_id: str,
        data: dict[str, Any],
        *,
        version: int,
        last_position: int,
        updated_at: datetime | None,
    ) -> MessageFacts:
        refused = data.get("refused")
        dlr_parts = data.get("dlr_parts")
        payload = data.get("payload")
        return cls(
            message_id=message_id,
            accepted=Accepted(**data["accepted"]) if data.get("accepted") else None,
            refused=(refused[0], _stamp(refused[1])) if refused else None,
            submissions={
                k: Submission(**{**v, "stamp": _stamp(v["stamp"])})
                for k, v in data.get("submissions", {}).items()
            },
            tracks={k: Track.from_json(v) for k, v in data.get("tracks", {}).items()},
            dlr_parts=(dlr_parts[0], _stamp(dlr_parts[1])) if dlr_parts else None,
            part_costs={k: _cost(v) for k, v in data.get("part_costs", {}).items()},
            message_cost=_cost(data.get("message_cost")),
            lines={k: BilledLine(**v) for k, v in data.get("lines", {}).items()},
            acked=Acked(**data["acked"]) if data.get("acked") else None,
            repriced={k: (int(v[0]), int(v[1])) for k, v in data.get("repriced", {}).items()},
            conditions=dict(data.get("conditions", {})),
            unaccepted_timer=_timer(data.get("unaccepted_timer")),
            stale_timer=_timer(data.get("stale_timer")),
            payload=tuple(payload) if payload is not None else None,
            version=version,
            last_position=last_position,
            updated_at=updated_at,
        )


def _timer(value: Any) -> tuple[int, str] | None:
    return (int(value[0]), str(value[1])) if value else None


def _stamp(value: list[Any]) -> Stamp:
    return (value[0], int(value[1]))


def _cost(value: dict[str, Any] | None) -> Cost | None:
    if not value:
        return None
    return Cost(value["amount"], value["currency"], _stamp(value["stamp"]))


# The three documents every message has, spelled out: they are written once per message per
# batch, and a literal costs a fraction of ``_dc``'s walk over the slots (same document: a
# test compares them).


def _accepted(a: Accepted) -> dict[str, Any]:
    return {
        "partner": a.partner,
        "phone": a.phone,
        "channel": a.channel,
        "dispatch_type": a.dispatch_type,
        "delivery_callback_url": a.delivery_callback_url,
        "free": a.free,
        "text": a.text,
        "parts": a.parts,
        "accepted_at": a.accepted_at,
        "position": a.position,
    }


def _submission(s: Submission) -> dict[str, Any]:
    return {
        "carrier": s.carrier,
        "carrier_message_id": s.carrier_message_id,
        "part": s.part,
        "parts": s.parts,
        "stamp": list(s.stamp),
    }


def _cost_json(c: Cost) -> dict[str, Any]:
    return {"amount": c.amount, "currency": c.currency, "stamp": list(c.stamp)}


def _dc(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    out = {name: getattr(value, name) for name in value.__slots__}
    if "stamp" in out:
        out["stamp"] = list(out["stamp"])
    return out
