"""Claiming due deliveries under a lease: the only way a message gets into a request.

A message is *pending* when its current payload (``message_state.payload_hash``) is complete
and differs from the last one Altegio acknowledged, is not parked or expired for exactly this
payload, is due (``next_attempt_at <= now``) and nobody holds a live lease on it. A claim
sets the lease in the same transaction that selects the rows and reads the payloads, so:
- two dispatchers never hold the same message (PostgreSQL: ``FOR UPDATE SKIP LOCKED``;
  SQLite: the whole claim runs under ``BEGIN IMMEDIATE``, one writer at a time);
- a payload is always read *after* every payload sent before it was acknowledged or its
  lease ran out, and ``message_state`` versions only rise, so the same message is never
  sent an older payload after a newer one.
Sending happens outside this transaction; the lease is what keeps the message ours.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, literal, or_, select, true, update

from pipeline.db.backend import backend_of
from pipeline.db.engine import Database
from pipeline.dispatch.model import Claim, ClaimedItem
from pipeline.dispatch.payload import SENT_TO_PHONE
from pipeline.dispatch.tables import deliveries, partner_circuits
from pipeline.projector.tables import message_state

DEFAULT_PARTNER = "default"

d = deliveries
ms = message_state


def new_claim_owner(dispatcher_id: str) -> str:
    """A lease owner unique to one claim, so a late answer to an old claim is recognisable."""
    return f"{dispatcher_id}/{uuid.uuid4().hex[:12]}"[:128]


def partner_expr():  # type: ignore[no-untyped-def]
    return func.coalesce(ms.c.partner, DEFAULT_PARTNER)


def pending_conditions(now: datetime, *, send_intermediate: bool) -> list:  # type: ignore[type-arg]
    """The WHERE of "pending" over ``deliveries`` joined to ``message_state``."""
    conditions = [
        ms.c.payload_hash.is_not(None),
        or_(d.c.acked_hash.is_(None), d.c.acked_hash != ms.c.payload_hash),
        or_(d.c.held_hash.is_(None), d.c.held_hash != ms.c.payload_hash),
        or_(d.c.next_attempt_at.is_(None), d.c.next_attempt_at <= now),
        or_(d.c.lease_until.is_(None), d.c.lease_until <= now),
    ]
    if not send_intermediate:
        conditions.append(or_(ms.c.is_final.is_(True), ms.c.status != SENT_TO_PHONE))
    return conditions


def ensure_delivery_rows(conn: Connection, now: datetime) -> None:
    """Give every message with a complete payload a ``deliveries`` row (so it can be locked).

    Failure policy: idempotent (ON CONFLICT DO NOTHING); rolled back with the claim.
    """
    source = (
        select(
            ms.c.message_id,
            literal("pending"),
            literal(0),
            literal(0),
            literal(now, d.c.updated_at.type),
        )
        .select_from(ms.outerjoin(d, d.c.message_id == ms.c.message_id))
        .where(ms.c.payload_hash.is_not(None), d.c.message_id.is_(None))
    )
    stmt = (
        backend_of(conn)
        .insert(d)
        .from_select(["message_id", "state", "attempts", "failures", "updated_at"], source)
        .on_conflict_do_nothing(index_elements=["message_id"])
    )
    conn.execute(stmt)


def _win_probes(conn: Connection, now: datetime, cooldown: float) -> tuple[set[str], set[str]]:
    """(partners whose circuit is open, those of them this claim may probe now).

    The probe is won by a conditional UPDATE that moves ``probe_at`` a cool-down ahead, so
    of several dispatchers exactly one probes. Failure policy: if the process dies after
    winning, the probe is simply lost and the next one is a cool-down later.
    """
    open_partners = set(
        conn.scalars(select(partner_circuits.c.partner).where(partner_circuits.c.state == "open"))
    )
    if not open_partners:
        return set(), set()
    won = set(
        conn.scalars(
            update(partner_circuits)
            .where(
                partner_circuits.c.state == "open",
                or_(partner_circuits.c.probe_at.is_(None), partner_circuits.c.probe_at <= now),
            )
            .values(probe_at=now + timedelta(seconds=cooldown), updated_at=now)
            .returning(partner_circuits.c.partner)
        )
    )
    return open_partners, won


#: The lease, written for each claimed id (``Backend.update_keys``: one row at a time on
#: SQLite, every id at once on PostgreSQL).
_LEASE_SQL = (
    "UPDATE deliveries SET state = 'in_flight', lease_owner = :owner, lease_until = :until, "
    "attempts = attempts + 1, first_pending_at = coalesce(first_pending_at, :now), "
    "updated_at = :now"
)


def _claim_rows(
    conn: Connection,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    send_intermediate: bool,
    partner_filter,  # type: ignore[no-untyped-def]
    after: str | None = None,
    probe: bool = False,
) -> list[ClaimedItem]:
    """Lease up to ``limit`` pending rows and return them with their payloads.

    One SELECT finds the rows and reads their state; on PostgreSQL it locks the
    ``deliveries`` rows (``FOR UPDATE OF deliveries SKIP LOCKED``: rows another dispatcher
    is claiming are skipped, not waited for), on SQLite the claim's ``BEGIN IMMEDIATE``
    already excludes every other writer. The lease is then written by primary key in the
    driver's own executemany. The scan walks ``deliveries`` in primary-key order from
    ``after`` (a keyset cursor): the index gives that order without a sort, and a pass of
    claims reads each row once instead of stepping over every acknowledged row each time.
    Failure policy: part of the claim's transaction; nothing is leased unless it commits.
    """
    conditions = [*pending_conditions(now, send_intermediate=send_intermediate), partner_filter]
    if after is not None:
        # On both tables: PostgreSQL's merge join then starts both index scans at the cursor.
        conditions += [d.c.message_id > after, ms.c.message_id > after]
    due = (
        select(
            d.c.message_id,
            d.c.attempts,
            d.c.failures,
            d.c.first_pending_at,
            partner_expr(),
            ms.c.delivery_callback_url,
            ms.c.status,
            ms.c.is_final,
            ms.c.payment_sum,
            ms.c.currency_iso,
            ms.c.parts_amount,
            ms.c.payload_hash,
            ms.c.version,
        )
        .join(ms, ms.c.message_id == d.c.message_id)
        .where(*conditions)
        .order_by(d.c.message_id)
        .limit(limit)
    )
    backend = backend_of(conn)
    rows = conn.execute(backend.lock_for_claim(due, of=d)).all()
    if not rows:
        return []
    lease = {
        "owner": owner,
        "until": backend.bind_time(lease_until),
        "now": backend.bind_time(now),
    }
    backend.update_keys(conn, _LEASE_SQL, lease, "message_id", [row[0] for row in rows])
    return [
        ClaimedItem(
            message_id,
            partner,
            url,
            status,
            bool(is_final),
            payment_sum,
            currency_iso,
            parts_amount,
            payload_hash,
            version,
            attempts + 1,
            failures,
            first_pending_at or now,
            probe,
        )
        for (
            message_id,
            attempts,
            failures,
            first_pending_at,
            partner,
            url,
            status,
            is_final,
            payment_sum,
            currency_iso,
            parts_amount,
            payload_hash,
            version,
        ) in rows
    ]


def claim_due_deliveries(
    db: Database,
    *,
    dispatcher_id: str,
    now: datetime,
    limit: int,
    lease_seconds: float,
    send_intermediate: bool,
    auth_cooldown: float,
    after: str | None = None,
    ensure_rows: bool = True,
) -> Claim:
    """Lease up to ``limit`` pending messages and read their payloads, in one transaction.

    Partners with an open circuit are left out, except for one single-message probe when
    the cool-down has passed. ``after`` continues a pass of claims (``Claim.cursor`` of the
    previous one); ``ensure_rows`` may be False when this run already created the missing
    ``deliveries`` rows at the start of the pass (it reads all of ``message_state``).
    Failure policy: if the process dies before commit nothing happened; if it dies after
    commit, the leases run out after ``lease_seconds`` and another claim (this process's
    next run or another dispatcher) takes the messages again.
    """
    owner = new_claim_owner(dispatcher_id)
    lease_until = now + timedelta(seconds=lease_seconds)
    with db.write() as conn:
        if ensure_rows:
            ensure_delivery_rows(conn, now)
        open_partners, probes = _win_probes(conn, now, auth_cooldown)
        partner = partner_expr()
        common = {
            "owner": owner,
            "now": now,
            "lease_until": lease_until,
            "send_intermediate": send_intermediate,
        }
        items = _claim_rows(
            conn,
            limit=limit,
            partner_filter=partner.not_in(open_partners) if open_partners else true(),
            after=after,
            **common,
        )
        cursor = items[-1].message_id if items else None
        for name in sorted(probes):
            items.extend(
                _claim_rows(conn, limit=1, partner_filter=partner == name, probe=True, **common)
            )
    items.sort(key=lambda item: item.message_id)
    return Claim(owner, lease_until, items, cursor)
