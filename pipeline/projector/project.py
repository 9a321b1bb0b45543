"""One projection step: read a batch after the checkpoint, fold it, write it all at once.

``project_batch`` runs inside ONE write transaction: message_state, mismatches, held
reports, correlations and the checkpoint change together or not at all, so a crash at any
point loses nothing and applies nothing twice (the next run re-reads the same batch).

Correlation and the grace period run on *event time*, not on the wall clock: the log's clock
advances with each event to ``min(occurred_at, recorded_at)`` (a carrier clock in the future
cannot push it forward) and never goes back; an event whose time is only our receive time
does not advance it, nor does reference data such as an FX rate (``moves_clock``). A report
that no message claims is held; when the clock passes its ``held_at + grace`` it opens
``unknown_message``. Since the clock is a
function of the log, replay and incremental projection agree however the log is cut.

An event the projector cannot read or apply (a time or payload no version of the fold can
use) never halts it: the batch is rolled back to its savepoint and folded again in pieces
(the events before the failing one, the failing one alone, the rest; one at a time when the
failure came while writing), and an event that fails alone is skipped with an
``unreadable_event`` mismatch (see ``pipeline.projector.unreadable``). The pieces give what
the batch would have (the cut does not matter), so replay skips exactly the same events.
"""

from __future__ import annotations

import gc
import heapq
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from pipeline.domain.money import to_nano
from pipeline.eventlog import StoredEvent
from pipeline.eventlog.model import RECEIVED, TIME_SOURCE, utc_now
from pipeline.mismatches import (
    apply_acknowledgement,
    open_mismatch,
    resolve_mismatch,
    update_detail,
)
from pipeline.mismatches.kinds import (
    KIND_INVOICE_TOTAL_MISMATCH,
    KIND_INVOICE_UNKNOWN_MESSAGE,
    KIND_STALE,
    KIND_UNKNOWN_MESSAGE,
    ORIGIN_INVOICE,
    ORIGIN_PROJECTOR,
)
from pipeline.projector import crashpoints, reference, store
from pipeline.projector.derive import FoldRules, MessageView, derive_view, row_view
from pipeline.projector.finance import INVOICE
from pipeline.projector.fold import (
    MESSAGE_EVENTS,
    FoldError,
    billed_line,
    fold_into,
    parse_time_text,
    time_text,
)
from pipeline.projector.message import MessageFacts
from pipeline.projector.store import ProjectionTables
from pipeline.projector.unreadable import (
    UnreadableEvent,
    describe_error,
    is_database_failure,
    record_unreadable,
)


@dataclass
class BatchResult:
    events: int = 0
    messages_changed: int = 0
    opened: int = 0
    resolved: int = 0
    position: int = 0
    #: The messages whose payload changed (``messages_changed`` counts them).
    changed: set[str] = field(default_factory=set)

    def add(self, other: BatchResult) -> None:
        """Add a later piece of the same batch."""
        self.events += other.events
        self.changed |= other.changed
        self.messages_changed = len(self.changed)
        self.opened += other.opened
        self.resolved += other.resolved
        self.position = other.position


class _FailedAt(Exception):
    """The fold failed at ``batch[index]`` (the cause is the exception it raised)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


@dataclass
class _Batch:
    """Everything one batch is working on (in memory only for the batch's life)."""

    conn: Connection
    tables: ProjectionTables
    rules: FoldRules
    grace: timedelta
    clock: datetime | None
    correlations: dict[tuple[str, str], str]
    facts: dict[str, MessageFacts]
    held: dict[tuple[str, str], list[tuple[int, StoredEvent | None, datetime]]]
    timers: list[tuple[datetime, int, str, str | None, str | None, str | None]]
    #: Messages folded in this batch (insertion-ordered), whose rows are written at the end.
    touched: dict[str, None] = field(default_factory=dict)
    new_correlations: list[dict[str, Any]] = field(default_factory=list)
    released: set[int] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    #: Held rows written at the end of the batch: new ones, released ones, expired ones.
    held_new: dict[int, dict[str, Any]] = field(default_factory=dict)
    held_gone: set[int] = field(default_factory=set)
    held_expired: set[int] = field(default_factory=set)
    #: Invoice lines folded in this batch, by (invoice_id, version, line).
    lines: dict[tuple[str, int, int], dict[str, Any]] = field(default_factory=dict)
    #: The same rows by the position of their event (an unclaimed line's timer names it).
    line_at: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Messages whose rows were written mid-batch and dropped from ``facts`` (reload them).
    evicted: set[str] = field(default_factory=set)
    book: reference.LiveBook | None = None
    result: BatchResult = field(default_factory=BatchResult)
    #: One worker's share of a parallel fold (``pipeline.projector.shard``); None: all of it.
    shard: Any = None


def event_time(event: StoredEvent) -> datetime:
    return min(event.occurred_at, event.recorded_at)


#: Reference data and our own acts, not something that happened to a message: a rate for
#: tomorrow, an invoice's header, a person acknowledging a mismatch or the dispatcher
#: hearing from Altegio today says nothing about how far message time has come (a history
#: backfilled and dispatched today would otherwise expire every timer at once).
CLOCK_NEUTRAL_TYPES = frozenset(
    {
        "fx.rate",
        "carrier.invoice",
        "carrier.invoice_closed",
        "mismatch.acknowledged",
        "dispatch.acknowledged",
        "dispatch.failed",
        "report.generated",
        "period.closed",
        "period.reopened",
        "prices.recorded",
        "prices.repriced",
        "events.archived",
    }
)


def moves_clock(event: StoredEvent) -> bool:
    """Whether the event's time may advance the clock: not when it is only our receive time,
    nor for reference data (``CLOCK_NEUTRAL_TYPES``).

    A receive time says when the event was posted, not when it happened: among history
    posted late it would leap the clock to today, expire every timer at once and hold its
    own report until today + grace. It is at most as late as the events around it when
    posted live, so leaving the clock where the source-timed events put it loses nothing.
    """
    return event.type not in CLOCK_NEUTRAL_TYPES and event.payload.get(TIME_SOURCE) != RECEIVED


def project_batch(
    conn: Connection,
    tables: ProjectionTables,
    rules: FoldRules,
    *,
    grace_seconds: float,
    limit: int,
    upto: int | None = None,
    shard: Any = None,
) -> BatchResult:
    """Fold up to ``limit`` events after the checkpoint (not past ``upto``) in ``conn``;
    with ``shard``, only that worker's share of the messages (``pipeline.projector.shard``)."""
    with cyclic_gc_paused():
        return _project_batch(conn, tables, rules, grace_seconds, limit, upto, shard)


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for one batch (and restore it as it was).

    A batch allocates a few small objects per event (facts, tracks, stamps, rows), freed by
    reference counting; none is in a cycle. The collector still walks them all every few
    hundred allocations, which cost a third of the fold and half of writing its rows
    (profile in docs/benchmarks.md). Memory stays bounded by the batch: anything cyclic is
    collected once the batch is over.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _project_batch(
    conn: Connection,
    tables: ProjectionTables,
    rules: FoldRules,
    grace_seconds: float,
    limit: int,
    upto: int | None,
    shard: Any = None,
) -> BatchResult:
    position, clock = store.read_checkpoint(conn, tables)
    if upto is not None:
        limit = min(limit, max(0, upto - position))
        if limit == 0:
            return BatchResult(position=position)
    if shard is None:
        batch = store.read_events(conn, after=position, limit=limit)
    else:
        batch = shard.read(conn, after=position, limit=limit, upto=upto, clock=clock)
    if upto is not None:
        batch = [e for e in batch if e.position <= upto]
    if not batch:
        return BatchResult(position=position)
    return _fold_resilient(conn, tables, rules, grace_seconds, position, clock, batch, shard)


def _fold_resilient(
    conn: Connection,
    tables: ProjectionTables,
    rules: FoldRules,
    grace_seconds: float,
    position: int,
    clock: datetime | None,
    batch: list[StoredEvent | UnreadableEvent],
    shard: Any = None,
) -> BatchResult:
    """Fold ``batch``; if an event cannot be applied, fold it in pieces and skip that event.

    Failure policy: each attempt runs in a savepoint, so a failed one leaves nothing behind.
    A failure of the database or of the checkpoint's compare-and-set is not the event's: it
    propagates, and the whole transaction rolls back as before.
    """
    try:
        with conn.begin_nested():
            return _project(conn, tables, rules, grace_seconds, position, clock, batch, shard)
    except _FailedAt as exc:
        failure: BaseException = exc.__cause__ or exc
        at: int | None = exc.index
    except Exception as exc:
        failure, at = exc, None
    if is_database_failure(failure):
        raise failure
    if len(batch) == 1:
        return _skip_event(conn, tables, batch[0], describe_error(failure), position, clock)
    if at is None:  # failed while writing: no event to blame yet
        pieces = [[event] for event in batch]
    else:
        pieces = [p for p in (batch[:at], batch[at : at + 1], batch[at + 1 :]) if p]
    total = BatchResult(position=position)
    for piece in pieces:
        position, clock = store.read_checkpoint(conn, tables)
        total.add(
            _fold_resilient(conn, tables, rules, grace_seconds, position, clock, piece, shard)
        )
    return total


def _project(
    conn: Connection,
    tables: ProjectionTables,
    rules: FoldRules,
    grace_seconds: float,
    position: int,
    clock: datetime | None,
    batch: list[StoredEvent | UnreadableEvent],
    shard: Any = None,
) -> BatchResult:
    readable = [e for e in batch if type(e) is StoredEvent]
    if shard is None:
        work = _prepare(conn, tables, rules, grace_seconds, clock, readable)
    else:
        shard.begin(conn, batch)
        # Another worker's message events are never folded here (``takes``): their
        # correlations, held reports and facts need not be loaded.
        mine = [e for e in readable if e.type not in MESSAGE_EVENTS or shard.owns(e)]
        work = _prepare(conn, tables, rules, grace_seconds, clock, readable, mine)
        work.shard = shard
    for index, event in enumerate(batch):
        try:
            if type(event) is UnreadableEvent:
                _skip_unreadable(work, event)
                continue
            if shard is not None and shard.skips(work, event):
                continue
            _advance_clock(work, event)
            _apply(work, event)
        except Exception as exc:
            raise _FailedAt(index) from exc
        crashpoints.reached("event_folded")
    crashpoints.reached("batch_folded")
    _write(work)
    crashpoints.reached("rows_written")
    store.store_checkpoint(
        conn, tables, old=position, new=batch[-1].position, clock=work.clock, now=utc_now()
    )
    crashpoints.reached("checkpoint_written")
    work.result.events = len(batch)
    work.result.changed = work.changed
    work.result.messages_changed = len(work.changed)
    work.result.position = batch[-1].position
    return work.result


def _skip_event(
    conn: Connection,
    tables: ProjectionTables,
    event: StoredEvent | UnreadableEvent,
    error: str,
    position: int,
    clock: datetime | None,
) -> BatchResult:
    """Skip one event that cannot be applied even alone: its mismatch and the checkpoint.

    The clock stays where it was: an event that cannot be applied gives it no time.
    """
    opened = record_unreadable(conn, tables, event.position, error, now=clock, event=event)
    store.store_checkpoint(
        conn, tables, old=position, new=event.position, clock=clock, now=utc_now()
    )
    return BatchResult(events=1, opened=opened, position=event.position)


def _prepare(
    conn: Connection,
    tables: ProjectionTables,
    rules: FoldRules,
    grace_seconds: float,
    clock: datetime | None,
    batch: list[StoredEvent],
    folded: list[StoredEvent] | None = None,
) -> _Batch:
    """Load, in a few queries, everything the batch's events can touch: the events of
    ``folded`` (default: all of them); the clock moves with every event of the batch."""
    touching = batch if folded is None else folded
    pairs = {
        (e.carrier, e.carrier_message_id)
        for e in touching
        if e.carrier and e.carrier_message_id and e.type in MESSAGE_EVENTS
    }
    # Only correlations stored before this batch: one made by a carrier.submitted inside
    # the batch takes effect at that event, exactly as if the batch had ended there.
    correlations = store.load_correlations(conn, tables, pairs)
    submitted = {
        (e.carrier, e.carrier_message_id)
        for e in touching
        if e.type == "carrier.submitted" and e.carrier and e.carrier_message_id
    }
    held_rows = store.held_for(conn, tables, submitted)
    held_events = {
        e.position: e
        for e in store.events_at(conn, [r.position for rs in held_rows.values() for r in rs])
    }
    held = {
        pair: [(r.position, held_events.get(r.position), r.deadline) for r in rows]
        for pair, rows in held_rows.items()
    }

    ids = {e.message_id for e in touching if e.message_id}
    ids |= {correlations[p] for p in pairs if p in correlations}
    facts = store.load_facts(conn, tables, ids)

    end_clock = max([event_time(e) for e in batch] + ([clock] if clock else []))
    timers = [
        (r.deadline, r.position, r.kind, r.carrier, r.carrier_message_id, r.message_id)
        for r in store.due_timers(conn, tables, end_clock)
    ]
    heapq.heapify(timers)
    book = reference.LiveBook(conn, tables)
    rules.finance.book = book
    rules.reference_changed()
    return _Batch(
        book=book,
        conn=conn,
        tables=tables,
        rules=rules,
        grace=timedelta(seconds=grace_seconds),
        clock=clock,
        correlations=correlations,
        facts=facts,
        held=held,
        timers=timers,
    )


def _skip_unreadable(work: _Batch, row: UnreadableEvent) -> None:
    """A row the log reader could not decode: a mismatch, and nothing else moves."""
    work.result.opened += record_unreadable(
        work.conn, work.tables, row.position, row.error, now=work.clock, event=row
    )


def _advance_clock(work: _Batch, event: StoredEvent) -> None:
    """Move the event clock and open unknown_message for every timer that ran out.

    A clock that has none is started by the first event about messages, even one timed by
    our receive time (a timer needs a clock to start from); never by reference data such
    as ``prices.recorded``, which is stamped today and would put a backfill's timers
    beyond every event of it.
    """
    t = event_time(event)
    if work.clock is None:
        if event.type not in CLOCK_NEUTRAL_TYPES:
            work.clock = t
    elif t > work.clock and moves_clock(event):
        work.clock = t
    while work.timers and work.clock is not None and work.timers[0][0] <= work.clock:
        _deadline, position, kind, carrier, cmid, message_id = heapq.heappop(work.timers)
        if position in work.released:
            continue
        if position in work.held_new:
            work.held_new[position]["expired"] = True
        else:
            work.held_expired.add(position)
        mismatch_kind, origin = TIMER_KINDS[kind]
        uncorrelated = kind in UNCORRELATED
        subject = f"carrier:{carrier}:{cmid}" if uncorrelated else message_id
        if uncorrelated:
            detail: dict[str, Any] = {
                "carrier": carrier,
                "carrier_message_id": cmid,
                "held_position": position,
            }
        elif kind == STALE:
            detail = {"reason": "not final after projector.stale_after", "since": position}
        else:
            detail = {"reason": "reports but no message.accepted", "first_position": position}
        if kind in LINE_TIMERS:
            detail.update(_line_money(work, position))
        _open(work, None if uncorrelated else message_id, subject, mismatch_kind, origin,
              detail, event)  # fmt: skip


#: Held-row kinds: what expires, and the mismatch (kind, origin) it opens then.
STALE = "stale"
UNCORRELATED = frozenset({"uncorrelated", "uncorr_invoice"})
LINE_TIMERS = frozenset({"uncorr_invoice", "unacc_invoice"})
TIMER_KINDS = {
    "uncorrelated": (KIND_UNKNOWN_MESSAGE, ORIGIN_PROJECTOR),
    "unaccepted": (KIND_UNKNOWN_MESSAGE, ORIGIN_PROJECTOR),
    "uncorr_invoice": (KIND_INVOICE_UNKNOWN_MESSAGE, ORIGIN_INVOICE),
    "unacc_invoice": (KIND_INVOICE_UNKNOWN_MESSAGE, ORIGIN_INVOICE),
    STALE: (KIND_STALE, ORIGIN_PROJECTOR),
}


def _start_timer(
    work: _Batch, event: StoredEvent, kind: str, after: timedelta | None = None, **where: Any
) -> datetime:
    assert work.clock is not None
    deadline = work.clock + (work.grace if after is None else after)
    work.held_new[event.position] = {
        "position": event.position,
        "kind": kind,
        "held_at": work.clock,
        "deadline": deadline,
        "expired": False,
        "carrier": where.get("carrier"),
        "carrier_message_id": where.get("carrier_message_id"),
        "message_id": where.get("message_id"),
    }
    entry = (
        deadline,
        event.position,
        kind,
        where.get("carrier"),
        where.get("carrier_message_id"),
        where.get("message_id"),
    )
    heapq.heappush(work.timers, entry)
    return deadline


def _release_rows(work: _Batch, positions: list[int]) -> None:
    for position in positions:
        work.released.add(position)
        if work.held_new.pop(position, None) is None:
            work.held_gone.add(position)


def _ran_out(work: _Batch, deadline: datetime) -> bool:
    """Whether a timer has expired (expiry is processed before each event is applied)."""
    return work.clock is not None and deadline <= work.clock


def _apply(work: _Batch, event: StoredEvent) -> None:
    if event.type == "mismatch.acknowledged":
        _apply_acknowledgement(work, event)
        return
    if event.type in reference.REFERENCE_EVENTS:
        _apply_reference(work, event)
        return
    if event.type not in MESSAGE_EVENTS:
        return
    if work.shard is not None and not work.shard.takes(work, event):
        return
    message_id = event.message_id
    pair = (event.carrier, event.carrier_message_id)
    if message_id is None:
        message_id = work.correlations.get(pair)  # type: ignore[arg-type]
    if event.type == "carrier.invoiced":
        _record_line(work, event, message_id)
    if message_id is None:
        if not (pair[0] and pair[1]):
            raise FoldError("names no message: neither message_id nor a carrier id")
        # Nobody claims this report yet: hold it until its carrier.submitted arrives.
        kind = "uncorr_invoice" if event.type == "carrier.invoiced" else "uncorrelated"
        deadline = _start_timer(work, event, kind, carrier=pair[0], carrier_message_id=pair[1])
        work.held.setdefault(pair, []).append((event.position, event, deadline))  # type: ignore[arg-type]
        return
    _fold(work, message_id, event)
    if event.type == "carrier.submitted" and pair[0] and pair[1]:
        work.correlations.setdefault(pair, message_id)  # type: ignore[arg-type]
        work.new_correlations.append(
            {
                "carrier": pair[0],
                "carrier_message_id": pair[1],
                "message_id": message_id,
                "part": event.payload.get("part")
                if isinstance(event.payload.get("part"), int)
                else None,
                "position": event.position,
            }
        )
        _release(work, pair, message_id, event)


def _release(work: _Batch, pair: tuple[Any, Any], message_id: str, by: StoredEvent) -> None:
    """The correlation arrived: fold the reports held for it, in their log order."""
    waiting = work.held.pop(pair, [])
    if not waiting:
        return
    _release_rows(work, [p for p, _e, _d in waiting])
    for _position, held_event, _deadline in sorted(waiting, key=lambda item: item[0]):
        if held_event is not None:
            if held_event.type == "carrier.invoiced":
                _record_line(work, held_event, message_id)
            _fold(work, message_id, held_event, at=by)
    if any(_ran_out(work, deadline) for _p, _e, deadline in waiting):
        subject = f"carrier:{pair[0]}:{pair[1]}"
        _resolve(work, None, subject, KIND_UNKNOWN_MESSAGE, by, ORIGIN_PROJECTOR)
        _resolve(work, None, subject, KIND_INVOICE_UNKNOWN_MESSAGE, by, ORIGIN_INVOICE)


def _fold(work: _Batch, message_id: str, event: StoredEvent, at: StoredEvent | None = None) -> None:
    """Fold ``event`` into the message; ``at`` is the event being projected (for a held one)."""
    at = at or event
    facts = _facts(work, message_id)
    before_conditions = facts.conditions
    changed = fold_into(facts, event, work.rules)
    if at is not event:
        facts.last_position = max(facts.last_position, at.position)
        facts.updated_at = at.recorded_at
    if changed:
        work.changed.add(message_id)
    if facts.accepted is None and facts.unaccepted_timer is None:
        kind = "unacc_invoice" if event.type == "carrier.invoiced" else "unaccepted"
        deadline = _start_timer(work, at, kind, message_id=message_id)
        facts.unaccepted_timer = (at.position, time_text(deadline))
    elif facts.accepted is not None and facts.unaccepted_timer is not None:
        position, deadline_text = facts.unaccepted_timer
        facts.unaccepted_timer = None
        _release_rows(work, [position])
        if _ran_out(work, parse_time_text(deadline_text)):
            _resolve(work, message_id, message_id, KIND_UNKNOWN_MESSAGE, at, ORIGIN_PROJECTOR)
            _resolve(work, message_id, message_id, KIND_INVOICE_UNKNOWN_MESSAGE, at, ORIGIN_INVOICE)
    _stale_timer(work, facts, at)
    if before_conditions or facts.conditions:
        _diff_conditions(work, message_id, before_conditions, facts.conditions, at)
    work.touched[message_id] = None


def _facts(work: _Batch, message_id: str, *, stored: bool = False) -> MessageFacts:
    """The message's facts in this batch: loaded, reloaded after an eviction, or new;
    ``stored`` for a message the batch did not load (a reference event's fan-out)."""
    facts = work.facts.get(message_id)
    if facts is None:
        if stored or message_id in work.evicted:
            work.evicted.discard(message_id)
            facts = store.load_facts(work.conn, work.tables, [message_id]).get(message_id)
        if facts is None:
            facts = MessageFacts(message_id)
        work.facts[message_id] = facts
    return facts


def _stale_timer(work: _Batch, facts: MessageFacts, at: StoredEvent) -> None:
    """An accepted message not final gets a ``stale`` timer; a final one loses it (and its
    ``stale`` mismatch resolves if the timer had run out)."""
    if facts.accepted is None:
        return
    if facts.stale_timer is None:
        if not facts.final:
            after = timedelta(seconds=work.rules.stale_after)
            deadline = _start_timer(work, at, STALE, after, message_id=facts.message_id)
            facts.stale_timer = (at.position, time_text(deadline))
        return
    if facts.final:
        position, deadline_text = facts.stale_timer
        facts.stale_timer = None
        _release_rows(work, [position])
        if _ran_out(work, parse_time_text(deadline_text)):
            _resolve(work, facts.message_id, facts.message_id, KIND_STALE, at, ORIGIN_PROJECTOR)


def _record_line(work: _Batch, event: StoredEvent, message_id: str | None) -> None:
    """The invoice line's row, claimed by ``message_id`` when one claims it."""
    line = billed_line(event)
    billed_at = event.occurred_at
    cost = Decimal(line.amount)
    work.lines[(line.invoice_id, line.version, line.line)] = work.line_at[event.position] = {
        "invoice_id": line.invoice_id,
        "version": line.version,
        "line": line.line,
        "carrier": (line.carrier or "")[:64],
        "carrier_message_id": line.carrier_message_id,
        "message_id": message_id,
        "billed_at": billed_at,
        "destination": str(event.payload.get("destination") or "")[:128] or None,
        "parts": line.parts,
        "cost": cost,
        "cost_nano": to_nano(cost),
        "currency": line.currency,
        "position": event.position,
    }


def _line_money(work: _Batch, position: int) -> dict[str, Any]:
    """What an unclaimed invoice line bills: its cost is the amount at stake."""
    row = work.line_at.get(position)
    if row is None:
        lines = work.tables.invoice_lines
        found = work.conn.execute(
            select(lines.c.invoice_id, lines.c.line, lines.c.cost, lines.c.currency).where(
                lines.c.position == position
            )
        ).first()
        row = dict(found._mapping) if found is not None else {}
    if not row:
        return {"invoice_line_position": position}
    return {
        "invoice_line_position": position,
        "invoice_id": row["invoice_id"],
        "line": row["line"],
        "amount_at_stake": format(row["cost"], "f"),
        "currency": row["currency"],
    }


def _apply_reference(work: _Batch, event: StoredEvent) -> None:
    """A rate, an invoice header, a closing or a price table: stored, then the messages it
    concerns are derived again at this event. A repricing is a fact of each message in its
    range (the table version that prices it), then the same re-derivation."""
    book = work.book
    assert book is not None
    conn, tables = work.conn, work.tables
    # The book changes below: derivations made before it are not reused for the rows.
    work.rules.reference_changed()
    try:
        if event.type == "fx.rate":
            day, base, quote = book.record_rate(event)
            _flush_states(work)
            reporting = work.rules.finance.reporting_currency
            concerned = reference.concerned_by_rate(conn, tables, day, base, quote, reporting)
        elif event.type == "carrier.invoice":
            _flush_lines(work)
            row = book.record_header(event)
            if row is None:
                return
            _invoice_total(work, row, event)
            _flush_states(work)
            invoice_id, version = row["invoice_id"], row["version"]
            _drop_superseded_unknown(work, invoice_id, version, event)
            concerned = reference.concerned_by_version(conn, tables, invoice_id, version)
        elif event.type == "prices.recorded":
            table, first = book.record_price_table(event)
            if not first:
                return  # a later table prices only messages accepted after it
            _flush_states(work)
            concerned = reference.concerned_by_first_table(conn, tables, table.scope)
        elif event.type == "prices.repriced":
            scope, version, start, end = reference.repricing_of(event)
            if not any(t.version == version for t in book.price_tables(scope)):
                raise reference.ReferenceError(f"prices.repriced: {scope} v{version} unknown")
            _flush_states(work)
            concerned = reference.concerned_by_repricing(conn, tables, scope, start, end)
            for message_id in concerned:
                # Set just before the message's re-derivation: a month of messages is never
                # all in memory at once (``_refold`` writes and lets them go).
                _facts(work, message_id, stored=True).repriced[scope] = (version, event.position)
                _refold(work, message_id, event)
            return
        else:
            row = book.record_closed(event)
            if row is None:
                return
            _flush_states(work)
            concerned = reference.concerned_by_closing(conn, tables, row)
    except reference.ReferenceError as exc:
        raise FoldError(str(exc)) from None
    for message_id in concerned:
        _refold(work, message_id, event)


def _drop_superseded_unknown(work: _Batch, invoice_id: str, version: int, at: StoredEvent) -> None:
    """Lines of an older version that no message claimed no longer count: their
    ``invoice_unknown_message`` resolves, and those still waiting for their carrier id wait
    no more (no timer opens one later)."""
    gone = reference.superseded_unknown_lines(work.conn, work.tables, invoice_id, version)
    for (carrier, cmid), positions in gone.items():
        _release_rows(work, positions)
        waiting = [w for w in work.held.get((carrier, cmid), []) if w[0] not in positions]
        if waiting:
            work.held[(carrier, cmid)] = waiting
        else:
            work.held.pop((carrier, cmid), None)
        subject = f"carrier:{carrier}:{cmid}"
        _resolve(work, None, subject, KIND_INVOICE_UNKNOWN_MESSAGE, at, ORIGIN_INVOICE)


def _invoice_total(work: _Batch, row: dict[str, Any], at: StoredEvent) -> None:
    detail = reference.total_condition(row, work.rules.finance)
    subject = f"invoice:{row['invoice_id']}"
    if detail is None:
        _resolve(work, None, subject, KIND_INVOICE_TOTAL_MISMATCH, at, ORIGIN_INVOICE)
        return
    _open(work, None, subject, KIND_INVOICE_TOTAL_MISMATCH, ORIGIN_INVOICE, detail, at)


def _refold(work: _Batch, message_id: str, at: StoredEvent) -> None:
    """Derive a message again at a reference event: its facts are unchanged, what they
    come to may not be."""
    if work.shard is not None and not work.shard.owns_message(message_id):
        return
    facts = _facts(work, message_id, stored=True)
    before = facts.conditions
    if fold_into(facts, at, work.rules):
        work.changed.add(message_id)
    if before or facts.conditions:
        _diff_conditions(work, message_id, before, facts.conditions, at)
    work.touched[message_id] = None
    if len(work.touched) >= EVICT_AT:
        _flush_states(work, evict=True)


#: Messages a batch keeps in memory before it writes their rows and lets them go (a rate or
#: a closing can concern a whole day or month of messages).
EVICT_AT = 20_000


def _kind_origin(key: str) -> tuple[str, str]:
    """A condition's key as (kind, origin): ``kind@invoice`` is an invoice's."""
    if key.endswith(INVOICE):
        return key[: -len(INVOICE)], ORIGIN_INVOICE
    return key, ORIGIN_PROJECTOR


def _diff_conditions(
    work: _Batch,
    message_id: str,
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    at: StoredEvent,
) -> None:
    for key, detail in after.items():
        kind, origin = _kind_origin(key)
        if key not in before:
            _open(work, message_id, message_id, kind, origin, detail, at)
        elif before[key] != detail:
            update_detail(
                work.conn,
                subject=message_id,
                kind=kind,
                origin=origin,
                detail=detail,
                position=at.position,
                table=work.tables.mismatches,
            )
    for key in before:
        if key not in after:
            kind, origin = _kind_origin(key)
            _resolve(work, message_id, message_id, kind, at, origin)


def _open(
    work: _Batch,
    message_id: str | None,
    subject: str,
    kind: str,
    origin: str,
    detail: dict[str, Any],
    at: StoredEvent,
) -> None:
    """Open (or refresh) a mismatch at the event ``at``: its position and recorded time."""
    open_mismatch(
        work.conn,
        message_id=message_id,
        subject=subject,
        kind=kind,
        origin=origin,
        detail=detail,
        now=at.recorded_at,
        position=at.position,
        table=work.tables.mismatches,
    )
    work.result.opened += 1


def _resolve(
    work: _Batch,
    message_id: str | None,
    subject: str,
    kind: str,
    at: StoredEvent,
    origin: str,
) -> None:
    if resolve_mismatch(
        work.conn,
        message_id=message_id,
        subject=subject,
        kind=kind,
        origin=origin,
        now=at.recorded_at,
        position=at.position,
        table=work.tables.mismatches,
    ):
        work.result.resolved += 1


def _apply_acknowledgement(work: _Batch, event: StoredEvent) -> None:
    """A person's acknowledgement of a projector-owned row, applied in log order."""
    apply_acknowledgement(
        work.conn, event.payload, at=event.occurred_at, table=work.tables.mismatches
    )


def _flush_states(work: _Batch, *, evict: bool = False) -> None:
    """Write the rows of the messages touched so far (the reference queries read them);
    with ``evict``, let their facts go too (``_facts`` reloads one needed again)."""
    # The full view depends on the facts alone: derived once per message, from the facts
    # its last event in the batch left, it is the view that event would have given.
    rows = [
        store.state_row(work.facts[mid], row_view(work.facts[mid], work.rules))
        for mid in work.touched
    ]
    store.save_states(work.conn, work.tables, rows)
    if evict:
        for mid in work.touched:
            del work.facts[mid]
            work.evicted.add(mid)
    work.touched.clear()


def _flush_lines(work: _Batch) -> None:
    store.save_lines(work.conn, work.tables, list(work.lines.values()))
    work.lines.clear()
    work.line_at.clear()


def _write(work: _Batch) -> None:
    _flush_states(work)
    _flush_lines(work)
    crashpoints.reached("state_rows_written")
    store.save_correlations(work.conn, work.tables, work.new_correlations)
    store.save_held(work.conn, work.tables, list(work.held_new.values()))
    store.release(work.conn, work.tables, sorted(work.held_gone))
    store.mark_expired(work.conn, work.tables, sorted(work.held_expired - work.held_gone))


def view_of(facts: MessageFacts, rules: FoldRules) -> MessageView:
    return derive_view(facts, rules)
