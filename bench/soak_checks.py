"""What the soak reads from the database: lag and backlog while it runs, and the end checks.

Read-only, from the driver's own connection: on SQLite a deferred read transaction in WAL
mode never blocks ``run``'s writers. Every probe is bounded by the log's size at most (the
backlog is one join over ``message_state``), which the soak's few tens of thousands of
messages keep cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from bench.soak_traffic import Planned
from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.dispatch.payload import payment_sum_text
from pipeline.dispatch.tables import deliveries
from pipeline.projector.store import CHECKPOINT
from pipeline.projector.tables import message_state, projector_checkpoints

ms = message_state
d = deliveries


@dataclass(frozen=True)
class Probe:
    events: int  # the last position in the log
    lag_events: int  # events after the projector's checkpoint
    lag_seconds: float  # age of the oldest event not yet projected (0 when none)
    backlog: int  # messages whose current payload Altegio has not acknowledged
    held: int  # of those, parked or expired for exactly this payload


def _undelivered():  # type: ignore[no-untyped-def]
    return and_(
        ms.c.payload_hash.is_not(None),
        or_(d.c.acked_hash.is_(None), d.c.acked_hash != ms.c.payload_hash),
    )


def probe(db: Database) -> Probe:
    joined = ms.outerjoin(d, d.c.message_id == ms.c.message_id)
    with db.read() as conn:
        last = conn.scalar(select(func.max(events.c.position))) or 0
        checkpoint = (
            conn.scalar(
                select(projector_checkpoints.c.position).where(
                    projector_checkpoints.c.name == CHECKPOINT
                )
            )
            or 0
        )
        lag = (
            conn.scalar(
                select(func.count()).select_from(events).where(events.c.position > checkpoint)
            )
            or 0
        )
        oldest = conn.scalar(
            select(events.c.recorded_at)
            .where(events.c.position > checkpoint)
            .order_by(events.c.position)
            .limit(1)
        )
        backlog = conn.scalar(select(func.count()).select_from(joined).where(_undelivered())) or 0
        held = (
            conn.scalar(
                select(func.count())
                .select_from(joined)
                .where(_undelivered(), d.c.held_hash == ms.c.payload_hash)
            )
            or 0
        )
    age = 0.0 if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())
    return Probe(int(last), int(lag), age, int(backlog), int(held))


@dataclass
class StoredCheck:
    answered: int
    missing: list[str]


def check_stored(db: Database, keys: set[str]) -> StoredCheck:
    """Every dedup key the client got a 2xx for is an event in the log."""
    wanted = sorted(keys)
    found: set[str] = set()
    with db.read() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found.update(
                conn.scalars(select(events.c.dedup_key).where(events.c.dedup_key.in_(chunk)))
            )
    return StoredCheck(len(wanted), [k for k in wanted if k not in found])


@dataclass
class DeliveredCheck:
    projected: int  # messages with a complete payload
    unacked: list[str]  # acknowledged hash differs from the current payload's
    differs: list[str]  # the sandbox's last status for the id is not the projection
    never_received: list[str]  # the sandbox has nothing for the id
    wrong_final: list[str]  # a finished message not at its planned status and parts
    strangers: list[str]  # ids the sandbox received that no projection has
    sandbox_items: int
    sandbox_outcomes: dict[str, int]
    overlapping: int


FIELDS = ("status", "payment_sum", "currency_iso", "parts_amount")


def check_delivered(
    db: Database, received: dict[str, Any], finished: list[Planned]
) -> DeliveredCheck:
    """Every message's latest projection is acknowledged and is the last thing the sandbox
    recorded for it; every message the client finished ended as planned."""
    last: dict[str, dict[str, Any]] = {}
    for item in received["items"]:  # in arrival order: the last one wins
        last[item["id"]] = item
    with db.read() as conn:
        rows = conn.execute(
            select(
                ms.c.message_id,
                ms.c.status,
                ms.c.payment_sum,
                ms.c.currency_iso,
                ms.c.parts_amount,
                ms.c.payload_hash,
                d.c.acked_hash,
            )
            .select_from(ms.outerjoin(d, d.c.message_id == ms.c.message_id))
            .where(ms.c.payload_hash.is_not(None))
        ).all()
        ends = {
            r.message_id: (r.status, r.parts_amount)
            for r in conn.execute(select(ms.c.message_id, ms.c.status, ms.c.parts_amount))
        }
    unacked, differs, never = [], [], []
    for row in rows:
        if row.acked_hash != row.payload_hash:
            unacked.append(row.message_id)
        seen = last.get(row.message_id)
        if seen is None:
            never.append(row.message_id)
            continue
        expected = {
            "status": row.status,
            "payment_sum": payment_sum_text(row.payment_sum, row.currency_iso),
            "currency_iso": row.currency_iso,
            "parts_amount": row.parts_amount,
        }
        if {k: seen[k] for k in FIELDS} != expected:
            differs.append(row.message_id)
    wrong = [p.message_id for p in finished if ends.get(p.message_id) != (p.final_status, p.parts)]
    strangers = sorted(last.keys() - ends.keys())
    stats = received["stats"]
    return DeliveredCheck(
        projected=len(rows),
        unacked=unacked,
        differs=differs,
        never_received=never,
        wrong_final=wrong,
        strangers=strangers,
        sandbox_items=len(received["items"]),
        sandbox_outcomes=dict(stats["outcomes"]),
        overlapping=len(stats["overlapping_ids"]),
    )
