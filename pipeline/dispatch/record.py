"""Writing down what happened to each claimed message: one transaction per request result.

Each result updates the message's ``deliveries`` row, appends a ``dispatch.acknowledged`` or
``dispatch.failed`` event and opens or resolves the dispatcher's mismatches, atomically.
Two guards keep a late answer from undoing newer knowledge:
- an acknowledgement only raises ``acked_version`` (an ack of version 3 never replaces one
  of version 4, whoever records it last);
- every other change applies only while this claim still owns the lease; a claim that lost
  its lease (it outlived ``dispatcher.lease``) records its event but leaves the row to the
  claim that owns it now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, or_, select, update

from pipeline.db.engine import Database
from pipeline.dispatch.claim import ClaimedItem
from pipeline.dispatch.outcome import DISPATCH_KINDS, KIND_TOKEN_INVALID, Outcome
from pipeline.dispatch.tables import deliveries, partner_circuits
from pipeline.eventlog import NewEvent, append_in
from pipeline.mismatches import open_mismatch, resolve_mismatch
from pipeline.projector.tables import mismatches

d = deliveries
ORIGIN = "dispatcher"
SOURCE = "dispatcher"

#: What became of one claimed message.
Result = Literal[
    "acknowledged",  # Altegio took it
    "retry",  # transient failure: due again at next_attempt_at
    "parked",  # refused: waits for a new payload (or `smsrecon resend`)
    "expired",  # unacknowledged past dispatcher.max_age
    "circuit",  # the partner's circuit is open: waits for the probe
    "deferred",  # not sent at all (lease too short, circuit opened meanwhile)
]


@dataclass(frozen=True, slots=True)
class Resolution:
    item: ClaimedItem
    result: Result
    #: The answer that decided it; None when decided here (bad URL, unknown partner).
    outcome: Outcome | None
    #: The callback URL, token masked.
    url: str
    #: The mismatch kind opened (parked, expired, circuit), if any.
    kind: str | None = None
    #: Token-masked description for last_error and the mismatch.
    error: str | None = None
    next_attempt_at: datetime | None = None
    #: For "circuit": when the partner's probe is due.
    probe_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def record_resolutions(
    db: Database, resolutions: Sequence[Resolution], *, owner: str, now: datetime
) -> None:
    """Record one request's results (all its items) in one transaction.

    Failure policy: if the process dies before the commit, none of it is recorded; the
    leases run out and the messages are claimed and sent again (the same payload or a newer
    one: Altegio may see a status twice, never an older one after a newer).
    """
    if not resolutions:
        return
    with db.write() as conn:
        record_in(conn, resolutions, owner=owner, now=now)


def record_groups(
    db: Database, groups: Sequence[tuple[str, Sequence[Resolution]]], *, now: datetime
) -> None:
    """Record the results of several requests (each with its claim's owner) at once.

    Failure policy: as ``record_resolutions``; all of it or none of it.
    """
    with db.write() as conn:
        for owner, resolutions in groups:
            record_in(conn, resolutions, owner=owner, now=now)


def record_in(
    conn: Connection, resolutions: Sequence[Resolution], *, owner: str, now: datetime
) -> None:
    deferred = [r for r in resolutions if r.result == "deferred"]
    acked = [r for r in resolutions if r.result == "acknowledged"]
    failed = [r for r in resolutions if r.result not in ("deferred", "acknowledged")]
    if deferred:
        # Never sent: give the attempt back and let the next claim take it at once.
        conn.execute(
            update(d)
            .where(d.c.message_id == bindparam("m_id"), d.c.lease_owner == owner)
            .values(
                state="pending",
                lease_owner=None,
                lease_until=None,
                attempts=d.c.attempts - 1,
                updated_at=now,
            ),
            [{"m_id": r.item.message_id} for r in deferred],
        )
    if acked:
        _record_acks(conn, acked, owner=owner, now=now)
    for res in failed:
        _record_failure(conn, res, owner=owner, now=now)
    events = [_event(res, now) for res in (*acked, *failed)]
    if events:
        append_in(conn, events)
    for partner in sorted({r.item.partner for r in acked}):
        close_circuit(conn, partner, now=now)


def _record_acks(
    conn: Connection, acked: Sequence[Resolution], *, owner: str, now: datetime
) -> None:
    """Acknowledgements, in two statements for the whole request (executemany)."""
    params = [
        {
            "m_id": r.item.message_id,
            "m_hash": r.item.payload_hash,
            "m_version": r.item.version,
            "m_status": r.outcome.http_status if r.outcome else None,
        }
        for r in acked
    ]
    conn.execute(
        update(d)
        .where(
            d.c.message_id == bindparam("m_id"),
            or_(d.c.acked_version.is_(None), d.c.acked_version <= bindparam("m_version")),
        )
        .values(acked_hash=bindparam("m_hash"), acked_version=bindparam("m_version"), acked_at=now),
        [{k: p[k] for k in ("m_id", "m_hash", "m_version")} for p in params],
    )
    conn.execute(
        update(d)
        .where(d.c.message_id == bindparam("m_id"), d.c.lease_owner == owner)
        .values(
            state="acknowledged",
            failures=0,
            last_status_code=bindparam("m_status"),
            last_altegio_code=None,
            last_error=None,
            last_attempt_at=now,
            sent_hash=bindparam("m_hash"),
            sent_version=bindparam("m_version"),
            held_hash=None,
            held_reason=None,
            next_attempt_at=None,
            first_pending_at=None,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        ),
        params,
    )
    # The cause of every per-message dispatcher mismatch is gone once Altegio took it.
    still_open = conn.execute(
        select(mismatches.c.message_id, mismatches.c.kind).where(
            mismatches.c.message_id.in_([r.item.message_id for r in acked]),
            mismatches.c.origin == ORIGIN,
            mismatches.c.status == "open",
            mismatches.c.kind.in_([k for k in DISPATCH_KINDS if k != KIND_TOKEN_INVALID]),
        )
    ).all()
    for message_id, kind in still_open:
        resolve_mismatch(conn, message_id=message_id, kind=kind, now=now)


def _record_failure(conn: Connection, res: Resolution, *, owner: str, now: datetime) -> None:
    item = res.item
    outcome = res.outcome
    values: dict[str, Any] = {
        "last_status_code": outcome.http_status if outcome else None,
        "last_altegio_code": outcome.altegio_code if outcome else None,
        "last_error": (res.error or "")[:500] or None,
        "last_attempt_at": now,
        "sent_hash": item.payload_hash,
        "sent_version": item.version,
        "lease_owner": None,
        "lease_until": None,
        "updated_at": now,
    }
    if res.result in ("retry", "circuit"):
        values.update(state="pending", next_attempt_at=res.next_attempt_at)
        if res.result == "retry":
            values["failures"] = d.c.failures + 1
    else:  # parked / expired: held for exactly this payload
        values.update(
            state=res.result,
            held_hash=item.payload_hash,
            held_reason=res.kind,
            next_attempt_at=None,
            first_pending_at=None,
            failures=0,
        )
    changed = conn.execute(
        update(d).where(d.c.message_id == item.message_id, d.c.lease_owner == owner).values(values)
    ).rowcount
    if not changed or res.kind is None:
        return
    detail = {
        "url": res.url,
        "http_status": values["last_status_code"],
        "altegio_error_code": values["last_altegio_code"],
        "error": res.error,
        "payload_hash": item.payload_hash,
        "version": item.version,
        "attempt": item.attempt,
        **res.extra,
    }
    if res.result == "circuit":
        open_circuit(conn, item.partner, res, now=now)
        open_mismatch(
            conn,
            message_id=None,
            subject=partner_subject(item.partner),
            kind=res.kind,
            origin=ORIGIN,
            detail={"partner": item.partner, **detail},
            now=now,
        )
    else:
        open_mismatch(
            conn, message_id=item.message_id, kind=res.kind, origin=ORIGIN, detail=detail, now=now
        )


def partner_subject(partner: str) -> str:
    """The mismatch subject of a partner-wide problem (its circuit)."""
    return f"partner:{partner}"


def open_circuit(conn: Connection, partner: str, res: Resolution, *, now: datetime) -> None:
    """Open (or keep open) the partner's circuit until ``res.probe_at``."""
    from pipeline.dispatch.circuits import upsert_open

    upsert_open(
        conn,
        partner=partner,
        reason=res.kind or KIND_TOKEN_INVALID,
        probe_at=res.probe_at or now,
        status=res.outcome.http_status if res.outcome else None,
        error=res.error,
        now=now,
    )


def close_circuit(conn: Connection, partner: str, *, now: datetime) -> None:
    """An acknowledgement for the partner proves its token and URL: close an open circuit."""
    closed = conn.execute(
        update(partner_circuits)
        .where(partner_circuits.c.partner == partner, partner_circuits.c.state == "open")
        .values(state="closed", closed_at=now, probe_at=None, updated_at=now)
        .returning(partner_circuits.c.reason)
    ).all()
    for (reason,) in closed:
        resolve_mismatch(
            conn, message_id=None, subject=partner_subject(partner), kind=reason, now=now
        )


def _event(res: Resolution, now: datetime) -> NewEvent:
    item = res.item
    outcome = res.outcome
    acknowledged = res.result == "acknowledged"
    payload: dict[str, Any] = {
        "payload_hash": item.payload_hash,
        "version": item.version,
        "attempt": item.attempt,
        "status": item.status,
        "http_status": outcome.http_status if outcome else None,
        "altegio_error_code": outcome.altegio_code if outcome else None,
        "error": None if acknowledged else res.error,
        "url": res.url,
    }
    if not acknowledged:
        payload["result"] = res.result
        payload["mismatch_kind"] = res.kind
        payload["next_attempt_at"] = res.next_attempt_at
    return NewEvent(
        type="dispatch.acknowledged" if acknowledged else "dispatch.failed",
        occurred_at=now,
        source=SOURCE,
        message_id=item.message_id,
        payload=payload,
        dedup_key=f"dispatch:{item.message_id}:{item.attempt}"[:128],
    )
