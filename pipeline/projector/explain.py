"""``explain``: one message's audit trail, and its state at any point of the log.

Re-folds the message's events with the same pure fold the projector uses, showing what
each one changed. The sections after the trail (mismatches here, the dispatcher's delivery
attempts in ``pipeline.dispatch.explain``) are passed in by the caller: the one list of
them is ``pipeline.cli.explain_command.SECTIONS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from pipeline.db.tables import events
from pipeline.eventlog import StoredEvent
from pipeline.eventlog.model import UnreadableEvent, describe_error
from pipeline.eventlog.read import DECODE_ERRORS, read_rows_leniently, row_to_event
from pipeline.mismatches import mismatches_for
from pipeline.projector.derive import FoldRules, MessageView, derive_view, payload_hash
from pipeline.projector.finance import current_lines, message_carrier
from pipeline.projector.fold import MESSAGE_EVENTS, fold_event
from pipeline.projector.message import MessageFacts
from pipeline.projector.reference import LiveBook
from pipeline.projector.store import LIVE, load_facts
from pipeline.projector.tables import projector_correlations


@dataclass(frozen=True)
class AsOf:
    """Where to stop: at a log position, or at a recorded time (None: the whole log)."""

    position: int | None = None
    time: datetime | None = None

    def includes(self, event: StoredEvent | UnreadableEvent) -> bool:
        if self.position is not None and event.position > self.position:
            return False
        if isinstance(event, UnreadableEvent):  # no time to compare: only its position
            return self.time is None or self.position is not None
        return not (self.time is not None and event.recorded_at > self.time)


@dataclass
class Section:
    title: str
    #: JSON-ready rows; ``lines`` is their text rendering.
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


#: (conn, message_id, as_of) -> a section, or None when it has nothing to say.
SectionProvider = Callable[[Connection, str, AsOf], Section | None]


def message_events(conn: Connection, message_id: str) -> list[StoredEvent | UnreadableEvent]:
    """The message's own events and the reports correlated to it by carrier id."""
    pairs = conn.execute(
        select(projector_correlations.c.carrier, projector_correlations.c.carrier_message_id).where(
            projector_correlations.c.message_id == message_id
        )
    ).all()
    # ORed equalities, not a row-value IN: SQLite plans those as one index search per
    # term (ix_events_message_id, ix_events_carrier_message), the IN as a scan of the log.
    cond = or_(
        events.c.message_id == message_id,
        *(
            and_(events.c.carrier == carrier, events.c.carrier_message_id == carrier_message_id)
            for carrier, carrier_message_id in pairs
        ),
    )
    try:
        rows = conn.execute(select(events).where(cond).order_by(events.c.position))
        return [row_to_event(r) for r in rows]
    except DECODE_ERRORS:
        return read_rows_leniently(conn, cond)


def _effect(before: dict[str, Any], after: dict[str, Any]) -> str:
    changes = [f"{k} {before.get(k)!r} -> {v!r}" for k, v in after.items() if before.get(k) != v]
    return ", ".join(changes) if changes else "no change"


def _visible(facts: MessageFacts, view: Any) -> dict[str, Any]:
    return {
        "status": view.status,
        "is_final": view.is_final,
        "parts_amount": view.parts_amount,
        "parts_source": view.parts_source,
        "payment_sum": None if view.payment_sum is None else format(view.payment_sum, "f"),
        "currency_iso": view.currency_iso,
        "carrier_cost": None if view.carrier_cost is None else format(view.carrier_cost, "f"),
        "version": facts.version,
        "problems": sorted(view.conditions),
    }


def explain_message(
    conn: Connection,
    message_id: str,
    rules: FoldRules,
    as_of: AsOf = AsOf(),
    sections: Sequence[SectionProvider] = (),
) -> dict[str, Any] | None:
    """The trail as a JSON-ready document, with ``sections`` in their order after it; None
    when the log knows nothing of the message."""
    found = [e for e in message_events(conn, message_id) if as_of.includes(e)]
    if not found:
        return None
    # The projector folds a report held for its correlation when the correlation arrives.
    submitted_at = {
        (e.carrier, e.carrier_message_id): e.position
        for e in found
        if e.type == "carrier.submitted"
    }

    def fold_order(e: StoredEvent | UnreadableEvent) -> tuple[int, int, int]:
        if e.message_id is None:
            released = submitted_at.get((e.carrier, e.carrier_message_id), 0)
            if released > e.position:
                return (released, 1, e.position)
        return (e.position, 0, e.position)

    # Rates, invoice versions and closings as the projection holds them now.
    rules.finance.book = LiveBook(conn, LIVE)
    facts = MessageFacts(message_id)
    view: MessageView | None = None
    visible: dict[str, Any] = {}
    trail = []
    for event in sorted(found, key=fold_order):
        if isinstance(event, UnreadableEvent):
            trail.append(_entry(event, f"unreadable, skipped: {event.error}"))
            continue
        if event.type not in MESSAGE_EVENTS:
            trail.append(_entry(event, "no effect on the message's state"))
            continue
        try:
            folded = fold_event(facts, event, rules)
            now = _visible(folded.facts, folded.view)
        except Exception as exc:  # the projector skips it too (pipeline.projector.unreadable)
            trail.append(_entry(event, f"unreadable, skipped: {describe_error(exc)}"))
            continue
        trail.append(_entry(event, _effect(visible, now)))
        facts, visible, view = folded.facts, now, folded.view
    if view is not None and as_of == AsOf():
        # A repricing (``prices.repriced``) is no event of the message: the projection
        # holds which version it named, as a fact of the message.
        stored = load_facts(conn, LIVE, [message_id]).get(message_id)
        if stored is not None and stored.repriced:
            facts.repriced = dict(stored.repriced)
            view = derive_view(facts, rules)
    shown = []
    if view is not None and view.finance is not None:
        shown.append(_money_section(facts, view, rules))
    for provider in sections:
        section = provider(conn, message_id, as_of)
        if section is not None:
            shown.append({"title": section.title, "rows": section.rows, "lines": section.lines})
    return {
        "message_id": message_id,
        "as_of": {
            "position": as_of.position,
            "time": as_of.time.isoformat() if as_of.time else None,
        },
        "events": trail,
        "state": {**visible, "payload_hash": payload_hash(facts.payload or ())}
        if facts.payload
        else visible,
        "sections": shown,
    }


def _entry(event: StoredEvent | UnreadableEvent, effect: str) -> dict[str, Any]:
    def shown(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    return {
        "position": event.position,
        "type": event.type,
        "occurred_at": shown(event.occurred_at),
        "recorded_at": shown(event.recorded_at),
        "carrier": event.carrier,
        "carrier_message_id": event.carrier_message_id,
        "payload": event.payload,
        "effect": effect,
    }


def _amount(value: Any, currency: str | None) -> str | None:
    return None if value is None else f"{format(value, 'f')} {currency or '?'}"


def _money_section(facts: MessageFacts, view: MessageView, rules: FoldRules) -> dict[str, Any]:
    """The three costs, the revenue, the margin and every invoice line, as of the trail's
    last event (rates, versions and closings as the projection holds them now)."""
    money = view.finance
    assert money is not None
    counted = {(x.invoice_id, x.version, x.line) for x in current_lines(facts, rules.finance.book)}
    lines = [
        {
            "invoice_id": x.invoice_id,
            "version": x.version,
            "line": x.line,
            "carrier_message_id": x.carrier_message_id,
            "parts": x.parts,
            "cost": x.amount,
            "currency": x.currency,
            "position": x.position,
            "counts": (x.invoice_id, x.version, x.line) in counted,
        }
        for x in sorted(facts.lines.values(), key=lambda x: x.position)
    ]

    def pair(m: Any) -> str | None:
        return None if m is None else _amount(m.amount, m.currency)

    target = rules.finance.reporting_currency
    row = {
        **_tables_used(facts, rules),
        "carrier_cost_expected": pair(money.expected),
        "carrier_cost_reported": pair(money.reported),
        "carrier_cost_invoiced": pair(money.invoiced),
        "carrier_cost": pair(money.cost),
        "carrier_cost_source": money.cost_source,
        "revenue_acknowledged": _amount(money.acked_payment_sum, money.acked_currency),
        "margin": pair(money.margin),
        "revenue_reporting": _amount(money.revenue_reporting, target),
        "cost_reporting": _amount(money.cost_reporting, target),
        "margin_reporting": _amount(money.margin_reporting, target),
        "fx_missing": money.fx_missing,
        "invoice_lines": lines,
    }
    text = [f"{key}: {value}" for key, value in row.items() if key != "invoice_lines"]
    text += [
        f"invoice {x['invoice_id']} v{x['version']} line {x['line']}: {x['cost']} "
        f"{x['currency']}, {x['parts']} part(s)"
        + ("" if x["counts"] else " (superseded by a later version)")
        for x in lines
    ] or ["no invoice line"]
    return {"title": "Money", "rows": [row], "lines": text}


def _tables_used(facts: MessageFacts, rules: FoldRules) -> dict[str, Any]:
    """Which price tables priced the message: ``billing v3`` (v0: the configured one, the
    log having recorded none), and the carrier's rate card likewise."""
    if facts.accepted is None:
        return {"tariff": None, "rate_card": None}
    carrier = message_carrier(facts)
    card = rules.finance.rate_card(carrier, facts) if carrier else None
    repriced = {scope: f"repriced at position {at}" for scope, (_v, at) in facts.repriced.items()}
    out = {
        "tariff": rules.sale_table(facts).label,
        "rate_card": card.label if card is not None and card.rules else None,
    }
    if repriced:
        out["repriced"] = repriced
    return out


def mismatch_section(conn: Connection, message_id: str, as_of: AsOf) -> Section | None:
    rows = []
    for m in mismatches_for(conn, message_id):
        if as_of.position is not None and (m.first_position or 0) > as_of.position:
            continue
        if as_of.time is not None and m.opened_at > as_of.time:
            continue
        rows.append(
            {"id": m.id, "kind": m.kind, "origin": m.origin, "status": m.status,
             "opened_at": m.opened_at.isoformat(),
             "resolved_at": m.resolved_at.isoformat() if m.resolved_at else None,
             "amount_at_stake": _amount(m.amount_at_stake, m.amount_currency),
             "invoice_id": m.invoice_id, "detail": m.detail, "note": m.note}
        )  # fmt: skip
    lines = [
        f"#{r['id']} {r['kind']} ({r['origin']}) {r['status']} since {r['opened_at']}"
        + (f", at stake {r['amount_at_stake']}" if r["amount_at_stake"] else "")
        + (f", invoice {r['invoice_id']}" if r["invoice_id"] else "")
        + (f", closed {r['resolved_at']}" if r["resolved_at"] else "")
        + (f": {r['note']}" if r["note"] else "")
        for r in rows
    ]
    return Section("Mismatches", rows, lines or ["none"])


def render_text(doc: dict[str, Any]) -> str:
    out = [f"message {doc['message_id']}"]
    if doc["as_of"]["position"] is not None or doc["as_of"]["time"]:
        out.append(f"as of {doc['as_of']['position'] or doc['as_of']['time']}")
    out.append("")
    out.append("Events")
    for e in doc["events"]:
        ids = f" {e['carrier']}/{e['carrier_message_id']}" if e["carrier"] else ""
        out.append(f"  {e['position']:>8}  {e['occurred_at']}  {e['type']}{ids}")
        out.append(f"            {e['effect']}")
    out.append("")
    out.append("State")
    for key, value in doc["state"].items():
        out.append(f"  {key}: {value}")
    for section in doc["sections"]:
        out.append("")
        out.append(section["title"])
        out += [f"  {line}" for line in section["lines"]]
    return "\n".join(out)
