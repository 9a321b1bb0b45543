"""Writing down what happened to each claimed message, the results of several requests in
one transaction (group commit).

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
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, update

from pipeline.db.backend import backend_of
from pipeline.db.engine import Database
from pipeline.dispatch.at_stake import message_at_stake, partner_at_stake
from pipeline.dispatch.model import Resolution
from pipeline.dispatch.payload import amount_text
from pipeline.dispatch.tables import deliveries
from pipeline.eventlog import NewEvent, append_in
from pipeline.mismatches import open_mismatch, resolve_for_messages, resolve_mismatch
from pipeline.mismatches.kinds import DISPATCH_MESSAGE_KINDS, KIND_TOKEN_INVALID, ORIGIN_DISPATCHER

d = deliveries
ORIGIN = ORIGIN_DISPATCHER
SOURCE = "dispatcher"


def record_resolutions(
    db: Database, resolutions: Sequence[Resolution], *, owner: str, now: datetime
) -> None:
    """Record one request's results (all its items) in one transaction.

    Failure policy: if the process dies before the commit, none of it is recorded; the
    leases run out and the messages are claimed and sent again (the same payload or a newer
    one: Altegio may see a status twice, never an older one after a newer).
    """
    if resolutions:
        record_groups(db, [(owner, resolutions)], now=now)


def record_groups(
    db: Database, groups: Sequence[tuple[str, Sequence[Resolution]]], *, now: datetime
) -> None:
    """Record the results of several requests (each with its claim's owner) at once.

    This is the group commit: whatever finished while the previous transaction was being
    written shares one transaction, one statement per kind of change and one append.
    Failure policy: as ``record_resolutions``; all of it or none of it. Until it commits
    the messages keep their leases, so no claim can take them again meanwhile.
    """
    owned = [(owner, res) for owner, resolutions in groups for res in resolutions]
    if not owned:
        return
    with db.write() as conn:
        record_in(conn, owned, now=now)


def record_in(conn: Connection, owned: Sequence[tuple[str, Resolution]], *, now: datetime) -> None:
    """Write (claim owner, result) pairs inside the caller's write transaction."""
    deferred = [(o, r) for o, r in owned if r.result == "deferred"]
    acked = [(o, r) for o, r in owned if r.result == "acknowledged"]
    failed = [(o, r) for o, r in owned if r.result not in ("deferred", "acknowledged")]
    if deferred:
        # Never sent: give the attempt back and let the next claim take it at once.
        conn.execute(
            update(d)
            .where(d.c.message_id == bindparam("m_id"), d.c.lease_owner == bindparam("m_owner"))
            .values(
                state="pending",
                lease_owner=None,
                lease_until=None,
                attempts=d.c.attempts - 1,
                updated_at=now,
            ),
            [{"m_id": r.item.message_id, "m_owner": o} for o, r in deferred],
        )
    if acked:
        _record_acks(conn, acked, now=now)
    circuits: dict[tuple[str, str], dict[str, Any]] = {}
    for owner, res in failed:
        _record_failure(conn, res, owner=owner, now=now, circuits=circuits)
    for (partner, kind), detail in circuits.items():
        _open_circuit_mismatch(conn, partner, kind, detail, now=now)
    events = [_event(res, now) for _, res in (*acked, *failed)]
    if events:
        append_in(conn, events)
    for partner in sorted({r.item.partner for _, r in acked}):
        close_circuit(conn, partner, now=now)


#: An acknowledgement by the claim that still owns the lease: everything in one statement,
#: written once; the backend runs it for the whole group as its engine does that fastest.
#: (While a claim owns the lease no other claim can have recorded an acknowledgement, so the
#: version guard is only a second line of defence here.) Bare names are the row's columns;
#: ``:name`` the acknowledgement's values.
_ACK_OWNED_SET = (
    "state = 'acknowledged', failures = 0, last_status_code = :http_status, "
    "last_altegio_code = NULL, last_error = NULL, last_attempt_at = :now, sent_hash = :hash, "
    "sent_version = :version, held_hash = NULL, held_reason = NULL, next_attempt_at = NULL, "
    "first_pending_at = NULL, lease_owner = NULL, lease_until = NULL, updated_at = :now, "
    "acked_hash = CASE WHEN acked_version IS NULL OR acked_version <= :version "
    "THEN :hash ELSE acked_hash END, "
    "acked_at = CASE WHEN acked_version IS NULL OR acked_version <= :version "
    "THEN :now ELSE acked_at END, "
    "acked_version = CASE WHEN acked_version IS NULL OR acked_version <= :version "
    "THEN :version ELSE acked_version END"
)
_ACK_OWNED_WHERE = "message_id = :id AND lease_owner = :owner"
_ACK_VALUE_TYPES = {
    "id": "text",
    "owner": "text",
    "hash": "text",
    "version": "int",
    "http_status": "int",
}
#: An acknowledgement whose claim lost its lease still raises the acknowledged payload
#: (never lowers it) and leaves the rest of the row to the claim that owns it now.
_ACK_VERSION_SQL = (
    "UPDATE deliveries SET acked_hash = :hash, acked_version = :version, acked_at = :now "
    "WHERE message_id = :id AND (acked_version IS NULL OR acked_version <= :version)"
)


def _record_acks(
    conn: Connection, acked: Sequence[tuple[str, Resolution]], *, now: datetime
) -> None:
    """Acknowledgements of the whole group in one statement, and one more when a claim
    lost its lease.

    Written in the driver's own SQL: these run for every status sent, and SQLAlchemy's
    per-row parameter processing cost more than the updates themselves.
    """
    backend = backend_of(conn)
    at = backend.bind_time(now)
    owned = backend.update_many(
        conn,
        "deliveries",
        set_sql=_ACK_OWNED_SET,
        where_sql=_ACK_OWNED_WHERE,
        rows=[
            {
                "id": r.item.message_id,
                "owner": owner,
                "hash": r.item.payload_hash,
                "version": r.item.version,
                "http_status": r.outcome.http_status if r.outcome else None,
            }
            for owner, r in acked
        ],
        array_types=_ACK_VALUE_TYPES,
        shared={"now": at},
    )
    if owned != len(acked):
        # Some claim lost its lease (or the driver does not sum rowcounts): raise the
        # acknowledged payload for all of them; for rows just written this changes nothing.
        conn.exec_driver_sql(
            backend.driver_sql(_ACK_VERSION_SQL),
            [
                {
                    "hash": r.item.payload_hash,
                    "version": r.item.version,
                    "now": at,
                    "id": r.item.message_id,
                }
                for _, r in acked
            ],
        )
    # The cause of every per-message dispatcher mismatch is gone once Altegio took it.
    resolve_for_messages(
        conn,
        [r.item.message_id for _, r in acked],
        origin=ORIGIN,
        kinds=DISPATCH_MESSAGE_KINDS,
        now=now,
    )


def _record_failure(
    conn: Connection,
    res: Resolution,
    *,
    owner: str,
    now: datetime,
    circuits: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Write one failed result; a circuit's mismatch detail is left in ``circuits`` (the
    last item's, per partner and kind) for ``record_in`` to open once."""
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
        **(res.extra or {}),
    }
    if res.result == "circuit":
        open_circuit(conn, item.partner, res, now=now)
        circuits[(item.partner, res.kind)] = {"partner": item.partner, **detail}
    else:
        detail.update(message_at_stake(item))
        open_mismatch(
            conn, message_id=item.message_id, kind=res.kind, origin=ORIGIN, detail=detail, now=now
        )


def _open_circuit_mismatch(
    conn: Connection, partner: str, kind: str, detail: dict[str, Any], *, now: datetime
) -> None:
    """Open (or refresh) the partner's circuit mismatch, with the revenue it holds back.

    Once per partner per group, after every row of the group was written, so the sum sees
    this group's messages as the pending ones they now are.
    """
    open_mismatch(
        conn,
        message_id=None,
        subject=partner_subject(partner),
        kind=kind,
        origin=ORIGIN,
        detail={**detail, **partner_at_stake(conn, partner)},
        now=now,
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


#: Runs after every group with acknowledgements, so written for the driver directly.
_CLOSE_CIRCUIT_SQL = (
    "UPDATE partner_circuits SET state = 'closed', closed_at = :now, probe_at = NULL, "
    "updated_at = :now WHERE partner = :partner AND state = 'open' RETURNING reason"
)


def close_circuit(conn: Connection, partner: str, *, now: datetime) -> None:
    """An acknowledgement for the partner proves its token and URL: close an open circuit."""
    backend = backend_of(conn)
    closed = conn.exec_driver_sql(
        backend.driver_sql(_CLOSE_CIRCUIT_SQL), {"now": backend.bind_time(now), "partner": partner}
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
        # What Altegio was sent (or would have been): what an acknowledgement bills.
        "status": item.status,
        "payment_sum": amount_text(item.payment_sum, item.currency_iso),
        "currency_iso": item.currency_iso,
        "parts_amount": item.parts_amount,
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
