"""Recording acknowledgements: the two guards that keep a late answer from undoing newer
knowledge (``pipeline/dispatch/record.py``), on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select

from pipeline.db.engine import Database
from pipeline.dispatch.model import ClaimedItem, Outcome, Resolution
from pipeline.dispatch.record import record_groups
from pipeline.dispatch.tables import deliveries

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _item(message_id: str, version: int, payload_hash: str) -> ClaimedItem:
    return ClaimedItem(
        message_id=message_id,
        partner="default",
        delivery_callback_url=None,
        status=1,
        is_final=True,
        payment_sum=Decimal("2.45"),
        currency_iso="RUB",
        parts_amount=1,
        payload_hash=payload_hash,
        version=version,
        attempt=1,
        failures=0,
        first_pending_at=NOW - timedelta(minutes=1),
    )


def _acked(item: ClaimedItem) -> Resolution:
    return Resolution(
        item=item, result="acknowledged", outcome=Outcome("acknowledged", 200), url=""
    )


def _row(db: Database, message_id: str):  # type: ignore[no-untyped-def]
    with db.read() as conn:
        return conn.execute(select(deliveries).where(deliveries.c.message_id == message_id)).one()


def _leased(db: Database, message_id: str, owner: str, **acked: object) -> None:
    with db.write() as conn:
        conn.execute(
            insert(deliveries).values(
                message_id=message_id,
                state="in_flight",
                attempts=1,
                failures=0,
                lease_owner=owner,
                lease_until=NOW + timedelta(minutes=1),
                updated_at=NOW,
                **acked,
            )
        )


def test_an_ack_by_the_lease_owner_settles_the_row(db: Database) -> None:
    _leased(db, "m1", "claim-a")
    record_groups(db, [("claim-a", [_acked(_item("m1", 3, "h3"))])], now=NOW)
    row = _row(db, "m1")
    assert (row.state, row.lease_owner, row.sent_version, row.last_status_code) == (
        "acknowledged",
        None,
        3,
        200,
    )
    assert (row.acked_hash, row.acked_version, row.acked_at) == ("h3", 3, NOW)


def test_an_ack_from_a_claim_that_lost_its_lease_raises_only_the_acknowledged_payload(
    db: Database,
) -> None:
    """The row belongs to the newer claim: its state stays; what Altegio has moves up."""
    _leased(db, "m1", "claim-b")
    record_groups(db, [("claim-a", [_acked(_item("m1", 3, "h3"))])], now=NOW)
    row = _row(db, "m1")
    assert (row.state, row.lease_owner, row.sent_version) == ("in_flight", "claim-b", None)
    assert (row.acked_hash, row.acked_version, row.acked_at) == ("h3", 3, NOW)


def test_a_late_ack_of_an_older_version_never_lowers_the_acknowledged_payload(
    db: Database,
) -> None:
    _leased(db, "m1", "claim-b", acked_hash="h4", acked_version=4, acked_at=NOW)
    _leased(db, "m2", "claim-a", acked_hash="h4", acked_version=4, acked_at=NOW)
    later = NOW + timedelta(seconds=5)
    record_groups(
        db,
        [("claim-a", [_acked(_item("m1", 3, "h3")), _acked(_item("m2", 3, "h3"))])],
        now=later,
    )
    for message_id in ("m1", "m2"):
        row = _row(db, message_id)
        assert (row.acked_hash, row.acked_version, row.acked_at) == ("h4", 4, NOW), message_id
