"""The group-commit writer's flush policy, made observable by holding the append lock.

Another connection holds the log's write lock (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's
append advisory lock), so a commit the writer has started stays in progress until the test
lets it go: what was taken into that commit, what gathered meanwhile, and what had been
answered by then are all visible without timing anything.
"""

from __future__ import annotations

import asyncio

from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent
from pipeline.eventlog.model import utc_now
from pipeline.ingest.server import STATE
from pipeline.ingest.writer import GroupCommitWriter
from tests.ingest.commit_helpers import TIMEOUT, append_lock_held, until
from tests.ingest.server_fixtures import event_count, live_server, make_settings


def _event(i: int) -> NewEvent:
    return NewEvent(
        type="message.refused",
        message_id=str(i),
        occurred_at=utc_now(),
        source="test",
        payload={"reason": "insufficient_funds"},
        dedup_key=f"refused:{i}",
    )


async def test_an_idle_writer_commits_at_once_and_batches_what_arrives_during_a_commit(
    db: Database,
) -> None:
    batches: list[int] = []
    writer = GroupCommitWriter(db, on_commit=lambda events, _seconds: batches.append(events))
    await writer.start()
    try:
        async with append_lock_held(db):
            first = asyncio.create_task(writer.submit([_event(0)]))
            # Taken into a transaction alone, without waiting for company: that commit is
            # now in progress (blocked on the lock).
            await until(lambda: writer.committing_events == 1)
            later = [asyncio.create_task(writer.submit([_event(i)])) for i in range(1, 4)]
            await until(lambda: writer.queued_events == 3)
            assert not first.done() and not any(task.done() for task in later)
        results = await asyncio.wait_for(asyncio.gather(first, *later), TIMEOUT)
    finally:
        await writer.stop()
    # The three that came during the first commit shared the next one.
    assert batches == [1, 3]
    assert [(r.appended, r.duplicates) for r in results] == [(1, 0)] * 4
    assert event_count(db) == 4


async def test_a_batch_holds_at_most_max_events_but_never_splits_a_request(db: Database) -> None:
    batches: list[int] = []
    writer = GroupCommitWriter(
        db, max_events=2, on_commit=lambda events, _seconds: batches.append(events)
    )
    await writer.start()
    try:
        async with append_lock_held(db):
            first = asyncio.create_task(writer.submit([_event(0)]))
            await until(lambda: writer.committing_events == 1)
            singles = [asyncio.create_task(writer.submit([_event(i)])) for i in range(1, 4)]
            triple = asyncio.create_task(writer.submit([_event(i) for i in range(4, 7)]))
            await until(lambda: writer.queued_events == 6)
        await asyncio.wait_for(asyncio.gather(first, *singles, triple), TIMEOUT)
    finally:
        await writer.stop()
    assert batches == [1, 2, 1, 3]
    assert triple.result().appended == 3
    assert event_count(db) == 7


async def test_a_lingering_writer_commits_as_soon_as_max_events_are_waiting(db: Database) -> None:
    batches: list[int] = []
    # A minute's linger: only reaching max_events can end it within the test's timeout.
    writer = GroupCommitWriter(
        db, interval_ms=60_000, max_events=3, on_commit=lambda n, _s: batches.append(n)
    )
    await writer.start()
    try:
        tasks = [asyncio.create_task(writer.submit([_event(i)])) for i in range(3)]
        await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    finally:
        await writer.stop()
    assert batches == [3]


async def test_a_request_is_answered_only_after_its_commit(db: Database) -> None:
    settings = make_settings({"acme": {"format": "generic"}})
    async with live_server(settings, db) as client:
        writer = client.server.app[STATE].writer
        async with append_lock_held(db):
            request = asyncio.create_task(
                client.post("/v1/dlr/acme", json={"carrier_message_id": "m1", "status": "DELIVRD"})
            )
            # Parsed and handed to a transaction that cannot commit yet: no answer, and
            # nothing visible in the log.
            await until(lambda: writer.committing_events == 1)
            assert not request.done()
            assert event_count(db) == 0
        response = await asyncio.wait_for(request, TIMEOUT)
        assert response.status == 200
        assert await response.text() == "OK"
    assert event_count(db) == 1


async def test_a_submitter_cancelled_while_waiting_still_has_its_events_committed(
    db: Database,
) -> None:
    writer = GroupCommitWriter(db)
    await writer.start()
    try:
        async with append_lock_held(db):
            first = asyncio.create_task(writer.submit([_event(0)]))
            await until(lambda: writer.committing_events == 1)
            gone = asyncio.create_task(writer.submit([_event(1)]))
            kept = asyncio.create_task(writer.submit([_event(2)]))
            await until(lambda: writer.queued_events == 2)
            # The client went away: its handler is cancelled while the events wait.
            gone.cancel()
            await asyncio.gather(gone, return_exceptions=True)
            assert gone.cancelled()
        results = await asyncio.wait_for(asyncio.gather(first, kept), TIMEOUT)
    finally:
        await writer.stop()
    # The cancelled submitter's events were the flusher's already: committed all the same,
    # and the request that shared their commit got its own counts.
    assert [(r.appended, r.duplicates) for r in results] == [(1, 0), (1, 0)]
    assert event_count(db) == 3
