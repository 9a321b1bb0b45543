"""Partner circuits: after a 401 (or a callback URL that does not exist) stop sending.

A refused token refuses every request, so retrying each message would only hammer Altegio
with requests that cannot succeed ("request storm"). The circuit is opened once per partner;
nothing is sent for the partner until ``probe_at``; then a single claim wins the probe
(``claim._win_probes``) and sends one status. An acknowledgement closes the circuit and
resolves its mismatch; another refusal moves ``probe_at`` a cool-down ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from pipeline.db.backend import backend_of
from pipeline.db.engine import Database
from pipeline.dispatch.tables import partner_circuits

pc = partner_circuits


@dataclass(frozen=True, slots=True)
class Circuit:
    partner: str
    state: str
    reason: str | None
    opened_at: datetime | None
    probe_at: datetime | None
    last_status_code: int | None
    last_error: str | None


def upsert_open(
    conn: Connection,
    *,
    partner: str,
    reason: str,
    probe_at: datetime,
    status: int | None,
    error: str | None,
    now: datetime,
) -> None:
    """Open the circuit, or keep it open with a new probe time.

    Failure policy: runs in the caller's transaction with the failed attempt's record.
    """
    values = {
        "partner": partner,
        "state": "open",
        "reason": reason,
        "opened_at": now,
        "probe_at": probe_at,
        "closed_at": None,
        "last_status_code": status,
        "last_error": (error or "")[:500] or None,
        "updated_at": now,
    }
    stmt = backend_of(conn).insert(pc).values(values)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["partner"],
        set_={
            "state": "open",
            "reason": excluded.reason,
            # Keep when it first opened while it stays open.
            "opened_at": _case_open(excluded.opened_at),
            "probe_at": excluded.probe_at,
            "closed_at": None,
            "last_status_code": excluded.last_status_code,
            "last_error": excluded.last_error,
            "updated_at": excluded.updated_at,
        },
    )
    conn.execute(stmt)


def _case_open(new_value):  # type: ignore[no-untyped-def]
    from sqlalchemy import case

    return case((pc.c.state == "open", pc.c.opened_at), else_=new_value)


def list_circuits(db: Database) -> list[Circuit]:
    with db.read() as conn:
        rows = conn.execute(select(pc).order_by(pc.c.partner)).all()
    return [
        Circuit(
            r.partner, r.state, r.reason, r.opened_at, r.probe_at, r.last_status_code, r.last_error
        )
        for r in rows
    ]
