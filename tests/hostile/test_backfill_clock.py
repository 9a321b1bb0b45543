"""A month of history posted in one go opens exactly the mismatches posting it live would.

Reports that carry no time of their own get our receive time; among history posted late,
that time is "today". The projector's event clock must not leap to it, or every held
report's grace runs out at once and the ones held after it never do.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append
from pipeline.ingest.adapters import parse_report
from pipeline.projector.derive import FoldRules
from pipeline.projector.replay import verify
from pipeline.projector.runner import catch_up
from pipeline.projector.tables import mismatches
from tests.conftest import create_pg_database, drop_pg_database
from tests.ingest import carrier_context, get_request

OCTOBER = datetime(2024, 10, 1, 8, 0, tzinfo=UTC)
#: When the backfill is posted: long after October, and before any real test run.
POSTED = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)
GRACE = 600.0
RULES = FoldRules(tariffs=(), non_chargeable=frozenset(), rounding="per_part")


@dataclass(frozen=True)
class Posting:
    """One request or send as it happened: when, and how to turn it into an event."""

    at: datetime
    kind: str  # accepted | submitted | kannel
    fields: dict[str, str]

    def event(self, received_at: datetime) -> NewEvent:
        if self.kind == "accepted":
            mid = self.fields["message_id"]
            payload = {"partner": "default", "phone": "+79161234567", "text": "Hi"}
            return NewEvent("message.accepted", self.at, "test", payload, message_id=mid)
        if self.kind == "submitted":
            return NewEvent(
                "carrier.submitted",
                self.at,
                "test",
                {},
                message_id=self.fields["message_id"],
                carrier="mts",
                carrier_message_id=self.fields["smsc_id"],
            )
        request = get_request("/v1/dlr/mts", **self.fields)
        (event,) = parse_report("kannel", request, carrier_context(received_at=received_at)).events
        return event


def _receipt(smsc_id: str, at: datetime) -> str:
    done = at.strftime("%y%m%d%H%M")
    return (
        f"id:{smsc_id} sub:001 dlvrd:001 submit date:{done} done date:{done} stat:DELIVRD err:000"
    )


def traffic(seed: int, messages: int = 24, orphans: int = 4) -> list[Posting]:
    """A month of Kannel traffic: each message accepted, submitted, type 8 (with %T, or from
    a dlr-url without it), then a receipt; and orphan type-8 reports no message claims."""
    rnd = random.Random(seed)
    out: list[Posting] = []
    for i in range(messages):
        t = OCTOBER + timedelta(hours=i * 28 + rnd.randint(0, 5))
        mid, cmid = f"m{i}", f"k{i}"
        out.append(Posting(t, "accepted", {"message_id": mid}))
        out.append(
            Posting(t + timedelta(minutes=1), "submitted", {"message_id": mid, "smsc_id": cmid})
        )
        ack = {"message_id": mid, "type": "8", "smsc_id": cmid, "answer": "ACK/"}
        if rnd.random() < 0.5:  # some gateways' dlr-url carries %T, some not
            ack["ts"] = str(int((t + timedelta(minutes=1)).timestamp()))
        out.append(Posting(t + timedelta(minutes=1, seconds=5), "kannel", ack))
        done = t + timedelta(minutes=rnd.randint(2, 8))
        out.append(
            Posting(
                done,
                "kannel",
                {"message_id": mid, "type": "1", "smsc_id": cmid, "answer": _receipt(cmid, done)},
            )
        )
    for j in range(orphans):
        # Spread over the month, each followed by more traffic well past the grace.
        t = OCTOBER + timedelta(hours=(j + 1) * messages * 28 // (orphans + 1), minutes=7)
        fields = {"type": "8", "smsc_id": f"orphan{j}", "answer": "ACK/"}
        if j % 2:
            fields["ts"] = str(int(t.timestamp()))
        out.append(Posting(t, "kannel", fields))
    out.sort(key=lambda p: p.at)
    return out


def unknown_messages(db: Database, postings: list[Posting], *, backfill: bool) -> set[str]:
    """Append the postings in order (live: each received when it happened; backfill: all
    received at POSTED), project, and return the subjects of unknown_message."""
    events = [p.event(POSTED if backfill else p.at) for p in postings]
    append(db, events)
    catch_up(db, RULES, grace_seconds=GRACE, batch_size=7)
    with db.read() as conn:
        rows = conn.execute(
            select(mismatches.c.subject).where(mismatches.c.kind == "unknown_message")
        ).scalars()
        return set(rows)


@pytest.fixture
def other_db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A second fresh database on the same backend (the backfill's log beside the live one)."""
    if backend == "sqlite":
        path = tmp_path / "other.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        database = Database.from_url(f"sqlite:///{path}")
        yield database
        database.dispose()
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = create_pg_database(admin, template=request.getfixturevalue("pg_template"))
    database = Database.from_url(url)
    yield database
    database.dispose()
    drop_pg_database(admin, url)


ORPHANS = {f"carrier:mts:orphan{j}" for j in range(4)}


def test_october_posted_in_november_opens_unknown_message_for_the_4_orphan_reports(
    db: Database,
) -> None:
    assert unknown_messages(db, traffic(seed=1), backfill=True) == ORPHANS
    # Replay, cut into other batches, agrees.
    assert verify(db, RULES, grace_seconds=GRACE, batch_size=3)[1] == 0


def test_kannel_type_8_reports_posted_late_carry_their_ts() -> None:
    postings = [p for p in traffic(seed=1) if p.kind == "kannel" and "ts" in p.fields]
    for posting in postings:
        event = posting.event(POSTED)
        assert event.occurred_at == datetime.fromtimestamp(int(posting.fields["ts"]), UTC)
        assert "time_source" not in event.payload


def test_reference_data_recorded_first_does_not_start_the_clock_at_its_own_day(
    db: Database,
) -> None:
    """A fresh log often starts with reference data stamped on the day it is recorded
    (price tables, a rate): history posted after it still runs its timers on its own time."""
    rate = NewEvent(
        "fx.rate",
        POSTED,
        "test",
        {"day": "2024-11-15", "base": "EUR", "quote": "RUB", "rate": "100", "source": "test"},
        dedup_key="fx:2024-11-15:EUR:RUB:100",
    )
    append(db, [rate])
    assert unknown_messages(db, traffic(seed=1), backfill=True) == ORPHANS
    assert verify(db, RULES, grace_seconds=GRACE, batch_size=3)[1] == 0


@pytest.mark.parametrize("seed", [2, 3, 4, 5])
def test_live_and_backfill_open_the_same_unknown_messages(
    db: Database, other_db: Database, seed: int
) -> None:
    postings = traffic(seed)
    live = unknown_messages(db, postings, backfill=False)
    backfill = unknown_messages(other_db, postings, backfill=True)
    assert live == backfill == ORPHANS
