"""SQL at the projector's edge: load and save message facts, correlations, held reports, and
the checkpoint. Every function runs inside the caller's transaction.

All of them take a ``ProjectionTables``: the live tables, or a shadow set that
``replay`` folds into before comparing or swapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Index, MetaData, Table, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from pipeline.db.tables import events
from pipeline.eventlog import StoredEvent
from pipeline.eventlog.read import row_to_event
from pipeline.projector.derive import MessageView, payload_hash
from pipeline.projector.fold import parse_time_text
from pipeline.projector.message import MessageFacts
from pipeline.projector.tables import (
    message_state,
    mismatches,
    projector_checkpoints,
    projector_correlations,
    projector_held,
)

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


LIVE = ProjectionTables(
    message_state, mismatches, projector_correlations, projector_held, projector_checkpoints
)

SHADOW_SUFFIX = "__replay"


def shadow_tables() -> ProjectionTables:
    """Copies of the live tables under other names, for replay to fold into."""
    meta = MetaData()

    def copy(table: Table, *indexes: tuple[str, ...]) -> Table:
        name = table.name + SHADOW_SUFFIX
        columns: list[Any] = [Column(c.name, c.type, primary_key=c.primary_key) for c in table.c]
        shadow = Table(name, meta, *columns)
        for i, cols in enumerate(indexes):
            Index(f"ix_{name}_{i}", *[shadow.c[c] for c in cols])
        return shadow

    return ProjectionTables(
        copy(message_state),
        copy(mismatches, ("subject", "kind", "status"), ("subject", "kind", "first_position")),
        copy(projector_correlations),
        copy(projector_held, ("carrier", "carrier_message_id"), ("message_id",)),
        copy(projector_checkpoints),
    )


def _insert(conn: Connection, table: Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# -- checkpoint ---------------------------------------------------------------------------


def read_checkpoint(conn: Connection, tables: ProjectionTables) -> tuple[int, datetime | None]:
    """(position, event clock); creates the row at 0 the first time."""
    cp = tables.checkpoints
    row = conn.execute(select(cp.c.position, cp.c.clock).where(cp.c.name == CHECKPOINT)).first()
    if row is not None:
        return int(row.position), row.clock
    from pipeline.eventlog.model import utc_now

    conn.execute(
        _insert(conn, cp)
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
                updated_at=_time_text_of(row.updated_at),
            )
    return out


def _time_text_of(value: datetime | None) -> str | None:
    from pipeline.projector.fold import time_text

    return time_text(value) if value is not None else None


def state_row(facts: MessageFacts, view: MessageView) -> dict[str, Any]:
    accepted = facts.accepted
    payload = facts.payload or view.payload
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
        "accepted_at": datetime.fromisoformat(accepted.accepted_at) if accepted else None,
        "last_position": facts.last_position,
        "version": facts.version,
        "payload_hash": payload_hash(payload),
        "updated_at": parse_time_text(facts.updated_at) if facts.updated_at else None,
        "fold_state": facts.to_json(),
    }


def save_states(conn: Connection, tables: ProjectionTables, rows: Sequence[dict]) -> None:
    if not rows:
        return
    st = tables.state
    stmt = _insert(conn, st)
    stmt = stmt.on_conflict_do_update(
        index_elements=["message_id"],
        set_={c.name: stmt.excluded[c.name] for c in st.c if c.name != "message_id"},
    )
    conn.execute(stmt, list(rows))


# -- correlations and held reports --------------------------------------------------------


def load_correlations(
    conn: Connection, tables: ProjectionTables, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    co = tables.correlations
    wanted = sorted(set(pairs))
    out: dict[tuple[str, str], str] = {}
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start : start + IN_CHUNK]
        cond = tuple_(co.c.carrier, co.c.carrier_message_id).in_(chunk)
        for row in conn.execute(
            select(co.c.carrier, co.c.carrier_message_id, co.c.message_id).where(cond)
        ):
            out[(row.carrier, row.carrier_message_id)] = row.message_id
    return out


def save_correlations(conn: Connection, tables: ProjectionTables, rows: Sequence[dict]) -> None:
    if rows:
        stmt = _insert(conn, tables.correlations).on_conflict_do_nothing(
            index_elements=["carrier", "carrier_message_id"]
        )
        conn.execute(stmt, list(rows))


def held_for(
    conn: Connection, tables: ProjectionTables, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[Any]]:
    """Held (uncorrelated) reports for these carrier ids, in position order."""
    held = tables.held
    wanted = sorted(set(pairs))
    out: dict[tuple[str, str], list[Any]] = {}
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start : start + IN_CHUNK]
        cond = tuple_(held.c.carrier, held.c.carrier_message_id).in_(chunk)
        stmt = select(held).where(held.c.kind == "uncorrelated", cond).order_by(held.c.position)
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
