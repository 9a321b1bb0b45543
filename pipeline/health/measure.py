"""The I/O edge of health: what ``decide`` needs, read from the database.

Every read is an index lookup or a scan of a small working set, never of the log or the
read model: the head is ``max(position)`` (the primary key), the first unprojected event is
one row after the checkpoint by primary key, the oldest waiting delivery comes through
``ix_deliveries_state`` over pending and in-flight rows only, and the circuits are one row
per partner. The write probe is the backend's (``Backend.probe_write``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from pipeline.db.engine import Database
from pipeline.dispatch.tables import deliveries, partner_circuits
from pipeline.eventlog.model import utc_now
from pipeline.health.decide import Measurements, OpenCircuit
from pipeline.projector.lag import read_lag

#: Stored states of a delivery that is still on its way to Altegio.
WAITING_STATES = ("pending", "in_flight")


def measure(
    db: Database, *, probe_timeout: float, clock: Callable[[], datetime] = utc_now
) -> Measurements:
    probe = db.backend.probe_write(db, timeout=probe_timeout)
    free = db.backend.free_bytes(db)
    now = clock()
    try:
        with db.read() as conn:
            lag = read_lag(conn)
            # A row claimed at least once waits since first_pending_at; one made by a claim
            # but not yet claimed itself, since it was made (updated_at).
            oldest_waiting = conn.scalar(
                select(
                    func.min(func.coalesce(deliveries.c.first_pending_at, deliveries.c.updated_at))
                ).where(deliveries.c.state.in_(WAITING_STATES))
            )
            circuits = tuple(
                OpenCircuit(row.partner, row.reason, row.opened_at)
                for row in conn.execute(
                    select(
                        partner_circuits.c.partner,
                        partner_circuits.c.reason,
                        partner_circuits.c.opened_at,
                    )
                    .where(partner_circuits.c.state == "open")
                    .order_by(partner_circuits.c.partner)
                )
            )
    except (SQLAlchemyError, OSError) as exc:
        return Measurements(
            now=now,
            write_problem=probe.problem,
            write_detail=probe.detail,
            free_bytes=free,
            read_error=_first_line(exc),
        )
    return Measurements(
        now=now,
        write_problem=probe.problem,
        write_detail=probe.detail,
        free_bytes=free,
        head_position=lag.head,
        checkpoint_position=lag.checkpoint,
        oldest_unprojected_at=lag.oldest_unprojected,
        oldest_pending_delivery_at=oldest_waiting,
        open_circuits=circuits,
    )


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"[:300]
