"""The shared mismatch API: one open row per (subject, kind), resolve, acknowledge."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.mismatches import (
    acknowledge_mismatch,
    mismatches_for,
    open_mismatch,
    open_mismatches,
    resolve_mismatch,
)

NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def test_opening_twice_refreshes_the_open_row_instead_of_adding_one(db: Database) -> None:
    with db.write() as conn:
        first = open_mismatch(
            conn, message_id="m1", kind="no_tariff", origin="projector",
            detail={"a": 1}, now=NOW, position=3,
        )  # fmt: skip
        again = open_mismatch(
            conn, message_id="m1", kind="no_tariff", origin="projector",
            detail={"a": 2}, now=NOW, position=7,
        )  # fmt: skip
    assert first == again
    with db.read() as conn:
        (row,) = open_mismatches(conn, message_id="m1")
    assert row.detail == {"a": 2}
    assert (row.first_position, row.last_position) == (3, 7)


def test_resolve_closes_the_open_row_and_a_new_open_starts_a_new_row(db: Database) -> None:
    with db.write() as conn:
        first = open_mismatch(
            conn, message_id="m1", kind="k", origin="dispatcher", detail={}, now=NOW
        )
        assert resolve_mismatch(conn, message_id="m1", kind="k", now=NOW)
        assert not resolve_mismatch(conn, message_id="m1", kind="k", now=NOW)
        second = open_mismatch(
            conn, message_id="m1", kind="k", origin="dispatcher", detail={}, now=NOW
        )
    assert second != first
    with db.read() as conn:
        rows = mismatches_for(conn, "m1")
    assert [r.status for r in rows] == ["resolved", "open"]


def test_acknowledge_records_the_note_and_appends_an_event(db: Database) -> None:
    with db.write() as conn:
        mid = open_mismatch(
            conn, message_id=None, subject="partner:p1", kind="partner_token_invalid",
            origin="dispatcher", detail={}, now=NOW,
        )  # fmt: skip
        acknowledge_mismatch(conn, mid, who="anna", note="token rotated", now=NOW)
    with db.read() as conn:
        assert open_mismatches(conn) == []
        (event,) = conn.execute(select(events)).all()
    assert event.type == "mismatch.acknowledged"
    assert event.payload["mismatch_id"] == mid
    assert event.payload["subject"] == "partner:p1"
