"""The message fold: ``fold_event(facts, event, rules) -> (facts, view)``, a pure function.

The edge (``pipeline.projector.project``) finds which message an event belongs to, loads its
facts, calls this, and writes the result; nothing here reads a clock, a database or a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pipeline.domain.status import KNOWN_STATUSES, Stamp, Track, report_status
from pipeline.eventlog import StoredEvent
from pipeline.projector.derive import FoldRules, MessageView, _core, derive_view
from pipeline.projector.message import (
    Accepted,
    Acked,
    BilledLine,
    Cost,
    MessageFacts,
    Submission,
)
from pipeline.times import fold_time_text, iso_time_text, parse_fold_time_text

#: Event types that change a message's facts; others (dispatch.*, mismatch.*) do not.
MESSAGE_EVENTS = frozenset(
    {
        "message.accepted",
        "message.refused",
        "carrier.submitted",
        "carrier.status",
        "carrier.invoiced",
        "dispatch.acknowledged",
    }
)


#: More parts than any message has (the UDH counts to 255): a larger count is not a count.
MAX_COUNT = 10_000
#: Digits of a cost as a plain decimal: more than any price, and what its column holds.
MAX_COST_TEXT = 32


class FoldError(ValueError):
    """An event whose payload no fold can apply (the projector skips it as unreadable)."""


#: The fold's stamps and timers are ``pipeline.times``' fold text.
time_text = fold_time_text
parse_time_text = parse_fold_time_text


@dataclass(frozen=True, slots=True)
class Folded:
    facts: MessageFacts
    view: MessageView
    #: The visible payload changed (version rose).
    changed: bool


def report_key(event: StoredEvent) -> str:
    """The raw track a report belongs to: its part, else its carrier id, else the message."""
    part = event.payload.get("part")
    if isinstance(part, int) and not isinstance(part, bool) and part >= 1:
        return f"part:{part}"
    if event.carrier and event.carrier_message_id:
        return f"cmid:{event.carrier}:{event.carrier_message_id}"
    return "message"


def _int(value: Any, name: str = "parts") -> int | None:
    """A count, when the field holds one; other types are no count (older events vary)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        if value > MAX_COUNT:
            raise FoldError(f"{name}: {str(value)[:20]} is not a plausible count")
        return value
    return None


def _text(payload: dict[str, Any], name: str) -> Any:
    """A text field, which a row column will hold: a string or nothing."""
    value = payload.get(name)
    if value is not None and type(value) is not str:
        raise FoldError(f"{name}: a {type(value).__name__}, not a string")
    return value


def _currency(payload: dict[str, Any], name: str) -> str | None:
    """An ISO 4217 code, as its three-letter column holds it, or nothing."""
    value = _text(payload, name)
    if value is not None and not (len(value) == 3 and value.isascii() and value.isupper()):
        raise FoldError(f"{name}: not an ISO 4217 code such as RUB")
    return value


def _cost(value: Any) -> str:
    """A cost as the decimal text ingest stores; absurd sizes (``1E+5000000``) are refused
    before any arithmetic, so no row grows by megabytes."""
    if type(value) is int:
        value = str(value)
    if type(value) is not str or len(value) > MAX_COST_TEXT:
        raise FoldError(f"cost: not a decimal amount of at most {MAX_COST_TEXT} characters")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise FoldError("cost: not a decimal amount") from None
    if not amount.is_finite() or not -MAX_COST_TEXT < amount.adjusted() < MAX_COST_TEXT // 2:
        raise FoldError("cost: not a plausible amount")
    if amount.as_tuple().exponent < -MAX_COST_TEXT // 2:  # type: ignore[operator]
        raise FoldError("cost: more decimals than any currency or tariff has")
    return value


def apply_fact(facts: MessageFacts, event: StoredEvent) -> MessageFacts:
    """The facts after one event (a new object; ``facts`` is not changed)."""
    out = facts.copy()
    apply_fact_into(out, event)
    return out


def apply_fact_into(out: MessageFacts, event: StoredEvent) -> None:
    """Apply one event to ``out`` in place (the projector's batch owns its facts)."""
    payload = event.payload
    if event.type == "message.accepted":
        if out.accepted is None or event.position < out.accepted.position:
            out.accepted = Accepted(
                partner=str(_text(payload, "partner") or "default"),
                phone=_text(payload, "phone"),
                channel=str(_text(payload, "channel") or "sms"),
                dispatch_type=_text(payload, "dispatch_type"),
                delivery_callback_url=_text(payload, "delivery_callback_url"),
                free=bool(payload.get("free", False)),
                text=_text(payload, "text"),
                parts=_int(payload.get("parts")),
                accepted_at=iso_time_text(event.occurred_at),
                position=event.position,
            )
        return
    # Every other fact is stamped with (carrier time, position).
    stamp: Stamp = (time_text(event.occurred_at), event.position)
    if event.type == "message.refused":
        if out.refused is None or stamp[1] < out.refused[1][1]:
            out.refused = (str(_text(payload, "reason") or "refused"), stamp)
    elif event.type == "carrier.submitted":
        if event.carrier and event.carrier_message_id:
            key = f"{event.carrier}:{event.carrier_message_id}"
            known = out.submissions.get(key)
            if known is None or stamp[1] < known.stamp[1]:
                out.submissions[key] = Submission(
                    event.carrier,
                    event.carrier_message_id,
                    _int(payload.get("part"), "part"),
                    _int(payload.get("parts")),
                    stamp,
                )
    elif event.type == "carrier.status":
        _apply_report(out, event, stamp)
    elif event.type == "carrier.invoiced":
        line = billed_line(event)
        out.lines[f"{line.invoice_id}:{line.version}:{line.line}"] = line
    elif event.type == "dispatch.acknowledged" and (
        out.acked is None or event.position > out.acked.position
    ):
        status, money = payload.get("status"), payload.get("payment_sum")
        out.acked = Acked(
            payment_sum=None if money is None else _cost(money),
            currency_iso=_currency(payload, "currency_iso"),
            status=status if type(status) is int else None,
            position=event.position,
        )


def billed_line(event: StoredEvent) -> BilledLine:
    """A ``carrier.invoiced`` event as the line it bills. One written by hand without the
    importer's invoice id, version and line number is a line of its own (its position)."""
    payload = event.payload
    cost = payload.get("cost")
    if cost is None:
        raise FoldError("cost: an invoice line without a cost")
    invoice_id = _text(payload, "invoice_id")
    version = payload.get("version")
    number = payload.get("line")
    if invoice_id is None or type(version) is not int or type(number) is not int:
        invoice_id, version, number = f"event:{event.position}", 1, 1
    if len(invoice_id) > 80 or not 1 <= version <= MAX_COUNT or not 1 <= number < 2**31:
        raise FoldError("invoice line: an invoice id over 80 characters, or a bad number")
    return BilledLine(
        invoice_id=invoice_id,
        version=version,
        line=number,
        carrier=event.carrier,
        carrier_message_id=event.carrier_message_id,
        parts=_int(payload.get("parts")) or 1,
        amount=_cost(cost),
        currency=_currency(payload, "currency"),
        position=event.position,
    )


def _apply_report(out: MessageFacts, event: StoredEvent, stamp: Stamp) -> None:
    payload = event.payload
    key = report_key(event)
    status = payload.get("status")
    if isinstance(status, int) and status in KNOWN_STATUSES:
        out.tracks[key] = report_status(out.tracks.get(key, Track()), status, stamp)
    parts = _int(payload.get("parts"))
    _int(payload.get("part"), "part")
    if parts is not None and (out.dlr_parts is None or stamp > out.dlr_parts[1]):
        out.dlr_parts = (parts, stamp)
    cost = payload.get("cost")
    if cost is not None:
        entry = Cost(_cost(cost), _currency(payload, "currency"), stamp)
        scope = payload.get("cost_scope") or ("part" if key.startswith("part:") else "message")
        if scope == "part":
            known = out.part_costs.get(key)
            if known is None or stamp > known.stamp:
                out.part_costs[key] = entry
        elif out.message_cost is None or stamp > out.message_cost.stamp:
            out.message_cost = entry


def fold_event(facts: MessageFacts, event: StoredEvent, rules: FoldRules) -> Folded:
    """Apply one event and derive the message's view; the version rises iff the payload moved.

    Pure: ``facts`` is not changed (``explain`` and the property tests rely on that).
    """
    out = facts.copy()
    changed = fold_into(out, event, rules)
    return Folded(out, derive_view(out, rules), changed)


def fold_into(facts: MessageFacts, event: StoredEvent, rules: FoldRules) -> bool:
    """``fold_event`` in place, without the full view: whether the payload changed.
    The projector's hot path.

    The visible payload and the mismatch conditions are derived after *every* event,
    because ``version`` counts every change of the payload in log order and a condition
    opens or resolves at the event that caused it (see docs/projector.md). The rest of the
    view (carrier, cost, status time) depends on the facts alone, so the caller derives it
    once, from the facts its last event left (``derive_view``).
    """
    if event.type in MESSAGE_EVENTS:
        apply_fact_into(facts, event)
    core = _core(facts, rules)
    facts.derived = (rules, rules.epoch, core)
    payload = (core.status, core.money, core.currency, core.parts)
    conditions = core.conditions
    facts.final = core.is_final
    changed = payload != facts.payload
    if changed:
        facts.payload = payload
        facts.version += 1
    facts.conditions = conditions
    if event.position > facts.last_position:
        facts.last_position = event.position
    facts.updated_at = event.recorded_at
    return changed
