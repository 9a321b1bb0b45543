"""Builders for the events the projector folds (shapes from docs/events.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.eventlog import NewEvent, StoredEvent
from pipeline.projector.derive import FoldRules
from pipeline.projector.fold import fold_event
from pipeline.projector.message import MessageFacts

T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def accepted(
    mid: str,
    minute: float = 0,
    *,
    text: str | None = "Hello",
    phone: str = "+79161234567",
    partner: str = "default",
    free: bool = False,
    **extra: Any,
) -> NewEvent:
    payload = {
        "partner": partner,
        "phone": phone,
        "channel": "sms",
        "dispatch_type": "service",
        "free": free,
        **extra,
    }
    if text is not None:
        payload["text"] = text
    return NewEvent(
        "message.accepted", at(minute), "test", payload, message_id=mid, dedup_key=f"accepted:{mid}"
    )


def refused(mid: str, minute: float = 0) -> NewEvent:
    return NewEvent(
        "message.refused",
        at(minute),
        "test",
        {"reason": "insufficient_funds"},
        message_id=mid,
        dedup_key=f"refused:{mid}",
    )


def submitted(
    mid: str, cmid: str, minute: float = 1, *, carrier: str = "mts", **payload: Any
) -> NewEvent:
    return NewEvent(
        "carrier.submitted",
        at(minute),
        "test",
        payload,
        message_id=mid,
        carrier=carrier,
        carrier_message_id=cmid,
        dedup_key=f"submitted:{carrier}:{cmid}",
    )


def report(
    cmid: str | None,
    status: int,
    minute: float = 2,
    *,
    mid: str | None = None,
    carrier: str = "mts",
    **payload: Any,
) -> NewEvent:
    body = {"format": "generic", "raw_status": str(status), "status": status, **payload}
    key = f"dlr:{carrier}:{cmid or mid}:{payload.get('part', '-')}:{status}:{minute}"
    return NewEvent(
        "carrier.status",
        at(minute),
        "test",
        body,
        message_id=mid,
        carrier=carrier,
        carrier_message_id=cmid,
        dedup_key=key,
    )


def stored(events: list[NewEvent], start: int = 1) -> list[StoredEvent]:
    """Give events log positions (in list order), as if appended one by one."""
    return [
        StoredEvent(
            position=start + i,
            type=e.type,
            message_id=e.message_id,
            carrier=e.carrier,
            carrier_message_id=e.carrier_message_id,
            occurred_at=e.occurred_at,
            recorded_at=e.occurred_at,
            source=e.source,
            payload=e.payload,
            dedup_key=e.dedup_key or "",
        )
        for i, e in enumerate(events)
    ]


def fold_all(message_id: str, events: list[StoredEvent], rules: FoldRules | None = None):  # type: ignore[no-untyped-def]
    """Fold a message's events purely, in the given order: (facts, view)."""
    rules = rules or FoldRules()
    facts = MessageFacts(message_id)
    view = None
    for event in events:
        folded = fold_event(facts, event, rules)
        facts, view = folded.facts, folded.view
    return facts, view
