"""SQL at the projector's edge: load and save message facts, correlations, held reports, and
the checkpoint. Every function runs inside the caller's transaction.

All of them take a ``ProjectionTables``: the live tables, or a shadow set that
``replay`` folds into before comparing or swapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, Connection, Index, MetaData, Table, and_, delete, select, update

from pipeline.db.backend import Backend, backend_of
from pipeline.db.codec import RowCodec, row_codec
from pipeline.db.tables import events
from pipeline.domain.money import currency_exponent, to_minor, to_nano
from pipeline.domain.region import country_of
from pipeline.eventlog import StoredEvent
from pipeline.eventlog.model import UnreadableEvent
from pipeline.eventlog.read import read_rows_leniently, row_to_event
from pipeline.projector.derive import MessageView, payload_hash
from pipeline.projector.fold import parse_time_text
from pipeline.projector.message import MessageFacts
from pipeline.projector.tables import (
    fx_rates,
    invoice_lines,
    invoices,
    message_state,
    mismatches,
    price_tables,
    projector_checkpoints,
    projector_correlations,
    projector_held,
)
from pipeline.times import parse_iso_time_text

CHECKPOINT = "message_state"
IN_CHUNK = 500


class CheckpointMoved(RuntimeError):
    """Another projector stored a checkpoint after we read ours: our batch is rolled back."""


@dataclass(frozen=True)
class ProjectionTables:
    state: Table
    mismatches: Table
    correlations: Table
    held: Table
    checkpoints: Table
    invoices: Table
    invoice_lines: Table
    fx_rates: Table
    price_tables: Table

    def all(self) -> list[Table]:
        """Every table of the set, in the order they are created (and dropped reversed)."""
        return [getattr(self, f.name) for f in fields(self)]


LIVE = ProjectionTables(
    message_state,
    mismatches,
    projector_correlations,
    projector_held,
    projector_checkpoints,
    invoices,
    invoice_lines,
    fx_rates,
    price_tables,
)

SHADOW_SUFFIX = "__replay"


def shadow_tables(suffix: str = SHADOW_SUFFIX) -> ProjectionTables:
    """Copies of the live tables under other names, for replay to fold into (``suffix``
    names another set: each worker of a parallel fold has its own)."""
    meta = MetaData()

    def copy(table: Table, *indexes: tuple[str, ...]) -> Table:
        name = table.name + suffix
        columns: list[Any] = [
            Column(c.name, c.type, primary_key=c.primary_key, autoincrement=c.autoincrement)
            for c in table.c
        ]
        shadow = Table(name, meta, *columns)
        for i, cols in enumerate(indexes):
            Index(f"ix_{name}_{i}", *[shadow.c[c] for c in cols])
        return shadow

    return ProjectionTables(
        copy(message_state, ("accepted_at",), ("carrier", "submitted_at")),
        copy(
            mismatches,
            ("subject", "kind", "status"),
            ("subject", "kind", "first_position"),
            ("invoice_id",),
        ),
        copy(projector_correlations),
        copy(projector_held, ("carrier", "carrier_message_id"), ("message_id",)),
        copy(projector_checkpoints),
        copy(invoices),
        copy(invoice_lines, ("message_id",), ("position",)),
        copy(fx_rates),
        copy(price_tables, ("scope", "position")),
    )


# -- checkpoint ---------------------------------------------------------------------------


def read_checkpoint(conn: Connection, tables: ProjectionTables) -> tuple[int, datetime | None]:
    """(position, event clock); creates the row at 0 the first time."""
    cp = tables.checkpoints
    row = conn.execute(select(cp.c.position, cp.c.clock).where(cp.c.name == CHECKPOINT)).first()
    if row is not None:
        return int(row.position), row.clock
    from pipeline.eventlog.model import utc_now

    conn.execute(
        backend_of(conn)
        .insert(cp)
        .values(name=CHECKPOINT, position=0, clock=None, updated_at=utc_now())
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return 0, None


def store_checkpoint(
    conn: Connection,
    tables: ProjectionTables,
    *,
    old: int,
    new: int,
    clock: datetime | None,
    now: datetime,
) -> None:
    """Compare-and-set: stored only if nobody moved it since we read ``old``.

    Failure policy: a zero row count means another projector is ahead; we raise, the
    caller's transaction rolls back, and none of this batch's writes happened.
    """
    cp = tables.checkpoints
    result = conn.execute(
        update(cp)
        .where(cp.c.name == CHECKPOINT, cp.c.position == old)
        .values(position=new, clock=clock, updated_at=now)
    )
    if result.rowcount != 1:
        raise CheckpointMoved(f"the checkpoint moved past {old} while this batch was folded")


# -- message facts ------------------------------------------------------------------------


def load_facts(
    conn: Connection, tables: ProjectionTables, message_ids: Iterable[str]
) -> dict[str, MessageFacts]:
    """The stored facts of exactly these messages (memory stays bounded by the batch)."""
    st = tables.state
    ids = sorted(set(message_ids))
    out: dict[str, MessageFacts] = {}
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        rows = conn.execute(
            select(
                st.c.message_id, st.c.fold_state, st.c.version, st.c.last_position, st.c.updated_at
            ).where(st.c.message_id.in_(chunk))
        )
        for row in rows:
            out[row.message_id] = MessageFacts.from_json(
                row.message_id,
                row.fold_state,
                version=row.version,
                last_position=row.last_position,
                updated_at=row.updated_at,
            )
    return out


def state_row(facts: MessageFacts, view: MessageView) -> dict[str, Any]:
    """The message_state row of one message, as Python values by column name."""
    accepted = facts.accepted
    payload = facts.payload or view.payload
    money = view.finance
    assert money is not None, "a state row is written from a full view"
    expected, reported, invoiced, margin = (
        money.expected,
        money.reported,
        money.invoiced,
        money.margin,
    )
    price, currency = view.payment_sum, view.currency_iso
    acked, acked_currency = money.acked_payment_sum, money.acked_currency
    return {
        "message_id": facts.message_id,
        "partner": accepted.partner if accepted else None,
        "phone": accepted.phone if accepted else None,
        "channel": accepted.channel if accepted else None,
        "dispatch_type": accepted.dispatch_type if accepted else None,
        "delivery_callback_url": accepted.delivery_callback_url if accepted else None,
        "free": bool(accepted.free) if accepted else False,
        "carrier": view.carrier,
        "carrier_message_id": view.carrier_message_id,
        "status": view.status,
        "status_at": parse_time_text(view.status_at) if view.status_at else None,
        "is_final": view.is_final,
        "parts_amount": view.parts_amount,
        "parts_source": view.parts_source,
        "payment_sum": view.payment_sum,
        "currency_iso": view.currency_iso,
        "carrier_cost": view.carrier_cost,
        "carrier_cost_currency": view.carrier_cost_currency,
        "carrier_cost_source": money.cost_source,
        "carrier_cost_expected": expected.amount if expected else None,
        "carrier_cost_expected_currency": expected.currency if expected else None,
        "carrier_cost_reported": reported.amount if reported else None,
        "carrier_cost_reported_currency": reported.currency if reported else None,
        "carrier_cost_invoiced": invoiced.amount if invoiced else None,
        "carrier_cost_invoiced_currency": invoiced.currency if invoiced else None,
        "acked_payment_sum": money.acked_payment_sum,
        "acked_currency_iso": money.acked_currency,
        "acked_status": money.acked_status,
        "margin": margin.amount if margin else None,
        "margin_currency": margin.currency if margin else None,
        "revenue_reporting": money.revenue_reporting,
        "cost_reporting": money.cost_reporting,
        "margin_reporting": money.margin_reporting,
        "fx_missing": money.fx_missing,
        # The integer columns, once per message per batch (conversions are memoised).
        "payment_sum_minor": _minor(price, currency),
        "currency_exponent": currency_exponent(currency) if currency else None,
        "acked_payment_sum_minor": _minor(acked, acked_currency),
        "acked_currency_exponent": currency_exponent(acked_currency) if acked_currency else None,
        "carrier_cost_nano": _nano(view.carrier_cost),
        "carrier_cost_expected_nano": _nano(expected.amount) if expected else None,
        "carrier_cost_reported_nano": _nano(reported.amount) if reported else None,
        "carrier_cost_invoiced_nano": _nano(invoiced.amount) if invoiced else None,
        "margin_nano": _nano(margin.amount) if margin else None,
        "revenue_reporting_nano": _nano(money.revenue_reporting),
        "cost_reporting_nano": _nano(money.cost_reporting),
        "margin_reporting_nano": _nano(money.margin_reporting),
        "country": country_of(accepted.phone) if accepted else None,
        "accepted_at": parse_iso_time_text(accepted.accepted_at) if accepted else None,
        "submitted_at": parse_time_text(money.submitted_at) if money.submitted_at else None,
        "last_position": facts.last_position,
        "version": facts.version,
        "payload_hash": payload_hash(payload),
        "updated_at": facts.updated_at,
        "fold_state": facts.to_json(),
    }


def _minor(amount: Decimal | None, currency: str | None) -> int | None:
    return None if amount is None or not currency else to_minor(amount, currency)


def _nano(amount: Decimal | None) -> int | None:
    return None if amount is None else to_nano(amount)


@lru_cache(maxsize=8)
def _codec(backend: Backend, table: Table) -> RowCodec:
    return row_codec(backend, table)


def save_states(conn: Connection, tables: ProjectionTables, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert the rows in one driver ``executemany`` (INSERT ... ON CONFLICT DO UPDATE).

    Through the driver because SQLAlchemy's per-row parameter processing cost more than
    deriving the row; the table's codec (``pipeline.db.codec``) binds exactly what the
    column types would.
    """
    if not rows:
        return
    backend = backend_of(conn)
    encode = _codec(backend, tables.state).encode_into
    encoded = [encode(row) for row in rows]
    backend.upsert(conn, tables.state, encoded, "message_id")


def save_lines(conn: Connection, tables: ProjectionTables, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert invoice lines by (invoice_id, version, line): a held line is stored unclaimed
    and stored again with its message once a submission claims it."""
    if not rows:
        return
    backend = backend_of(conn)
    encode = _codec(backend, tables.invoice_lines).encode_into
    backend.upsert(
        conn,
        tables.invoice_lines,
        [encode(dict(row)) for row in rows],
        ("invoice_id", "version", "line"),
    )


# -- correlations and held reports --------------------------------------------------------


def load_correlations(
    conn: Connection, tables: ProjectionTables, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    co = tables.correlations
    out: dict[tuple[str, str], str] = {}
    for carrier, ids in _by_carrier(pairs):
        cond = and_(co.c.carrier == carrier, co.c.carrier_message_id.in_(ids))
        for row in conn.execute(
            select(co.c.carrier, co.c.carrier_message_id, co.c.message_id).where(cond)
        ):
            out[(row.carrier, row.carrier_message_id)] = row.message_id
    return out


def _by_carrier(pairs: Iterable[tuple[str, str]]) -> Iterable[tuple[str, list[str]]]:
    """(carrier, up to IN_CHUNK ids) groups of the pairs.

    ``carrier = ? AND carrier_message_id IN (...)`` searches the (carrier,
    carrier_message_id) index on both engines; a row-value ``IN (VALUES ...)`` makes
    SQLite scan the whole table, which made every batch cost in proportion to the log.
    """
    grouped: dict[str, set[str]] = {}
    for carrier, cmid in pairs:
        grouped.setdefault(carrier, set()).add(cmid)
    for carrier in sorted(grouped):
        ids = sorted(grouped[carrier])
        for start in range(0, len(ids), IN_CHUNK):
            yield carrier, ids[start : start + IN_CHUNK]


def save_correlations(conn: Connection, tables: ProjectionTables, rows: Sequence[dict]) -> None:
    """The batch's new correlations; one already stored for the carrier id stays."""
    if rows:
        backend_of(conn).insert_or_skip(
            conn, tables.correlations, rows, ("carrier", "carrier_message_id")
        )


def held_for(
    conn: Connection, tables: ProjectionTables, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[Any]]:
    """Held (uncorrelated) reports for these carrier ids, in position order."""
    held = tables.held
    out: dict[tuple[str, str], list[Any]] = {}
    for carrier, ids in _by_carrier(pairs):
        cond = and_(held.c.carrier == carrier, held.c.carrier_message_id.in_(ids))
        stmt = (
            select(held)
            .where(held.c.kind.in_(("uncorrelated", "uncorr_invoice")), cond)
            .order_by(held.c.position)
        )
        for row in conn.execute(stmt):
            out.setdefault((row.carrier, row.carrier_message_id), []).append(row)
    return out


def due_timers(conn: Connection, tables: ProjectionTables, until: datetime) -> list[Any]:
    held = tables.held
    stmt = (
        select(held)
        .where(held.c.expired.is_(False), held.c.deadline <= until)
        .order_by(held.c.deadline, held.c.position)
    )
    return list(conn.execute(stmt))


def save_held(conn: Connection, tables: ProjectionTables, rows: Sequence[dict]) -> None:
    if rows:
        conn.execute(tables.held.insert(), list(rows))


def mark_expired(conn: Connection, tables: ProjectionTables, positions: Sequence[int]) -> None:
    held = tables.held
    for start in range(0, len(positions), IN_CHUNK):
        chunk = list(positions[start : start + IN_CHUNK])
        conn.execute(update(held).where(held.c.position.in_(chunk)).values(expired=True))


def release(conn: Connection, tables: ProjectionTables, positions: Sequence[int]) -> None:
    held = tables.held
    for start in range(0, len(positions), IN_CHUNK):
        chunk = list(positions[start : start + IN_CHUNK])
        conn.execute(delete(held).where(held.c.position.in_(chunk)))


# -- reading the log ----------------------------------------------------------------------

_EVENT_COLUMNS = (
    "position, type, message_id, carrier, carrier_message_id, occurred_at, recorded_at, "
    "source, payload, dedup_key"
)


def read_events(conn: Connection, *, after: int, limit: int) -> list[StoredEvent | UnreadableEvent]:
    """Up to ``limit`` events after ``after``, in position order, in ``conn``'s transaction.

    The same gap-free query as ``pipeline.eventlog.read_in`` (see its module), but through
    the driver's own cursor: SQLAlchemy's per-row result processing cost more than folding
    the row, so the projector keeps this reader of its own; it decodes with the backend's
    own loaders (``Backend.load_time``/``load_json``), the ones the column types mirror.
    Times come back tz-aware UTC and the payload decoded, exactly as ``read_in`` gives
    them. A batch with a row in another form (a time with an offset of its own, a short
    year an older version wrote) or one no reader can decode is read again by
    ``read_rows_leniently``, the latter as an ``UnreadableEvent``.
    """
    backend = backend_of(conn)
    cursor = conn.connection.cursor()
    try:
        cursor.execute(
            backend.driver_sql(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE position > :after "
                "ORDER BY position LIMIT :limit"
            ),
            {"after": after, "limit": limit},
        )
        rows = cursor.fetchall()
    except (*backend.driver_errors(conn), RecursionError):  # a time or a nesting it cannot load
        rows = None
    finally:
        cursor.close()
    if rows is not None:
        time, loads = backend.load_time, backend.load_json
        try:
            out = [
                StoredEvent(p, t, m, c, cm, time(o), time(r), s, loads(d), k)
                for p, t, m, c, cm, o, r, s, d, k in rows
            ]
            if all(type(e.payload) is dict for e in out):
                return out
        except (TypeError, ValueError, RecursionError):
            pass
    return read_rows_leniently(conn, events.c.position > after, limit=limit)


def events_at(conn: Connection, positions: Sequence[int]) -> list[StoredEvent]:
    out: list[StoredEvent] = []
    ordered = sorted(positions)
    for start in range(0, len(ordered), IN_CHUNK):
        chunk = ordered[start : start + IN_CHUNK]
        out += [
            row_to_event(r)
            for r in conn.execute(select(events).where(events.c.position.in_(chunk)))
        ]
    return sorted(out, key=lambda e: e.position)
