"""Group commit under load: every event stored exactly once, and no 2xx without a commit."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent
from pipeline.eventlog.model import utc_now
from pipeline.ingest.writer import GroupCommitWriter, WriterUnavailable
from tests.ingest.server_fixtures import event_count, live_server, make_settings, stored_events

CARRIERS = {"acme": {"format": "generic"}}


async def test_200_concurrent_requests_commit_every_event_exactly_once(db: Database) -> None:
    settings = make_settings(CARRIERS, commit_interval_ms=5, commit_max_events=64)
    async with live_server(settings, db) as client:

        async def report(i: int) -> tuple[int, dict[str, int]]:
            # Every tenth report is sent twice at once: the copies race within a batch.
            same_as = i - 1 if i % 10 == 9 else i
            body = {"carrier_message_id": f"m{same_as}-x", "status": "DELIVRD"}
            response = await client.post("/v1/dlr/acme", json=body)
            return response.status, {}

        async def message(i: int) -> tuple[int, dict[str, int]]:
            response = await client.post(
                "/v1/messages", json={"id": f"msg{i}", "phone": "+79161234567", "parts": 1}
            )
            return response.status, await response.json()

        results = await asyncio.gather(
            *(report(i) for i in range(100)), *(message(i) for i in range(100))
        )
        metrics = await (await client.get("/metrics")).text()
    assert {status for status, _ in results} == {200}
    assert sum(answer["appended"] for _, answer in results[100:]) == 100
    accepted = stored_events(db, "message.accepted")
    assert sorted(row.message_id for row in accepted) == sorted(f"msg{i}" for i in range(100))
    statuses = stored_events(db, "carrier.status")
    ids = [row.carrier_message_id for row in statuses]
    assert len(ids) == len(set(ids)) == 90
    # Fewer transactions than requests: the requests really shared commits.
    count_line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("smsrecon_ingest_commit_batch_events_count")
    )
    assert float(count_line.split()[-1]) < 190


async def test_a_failed_commit_answers_every_waiting_request_503(db: Database) -> None:
    async with live_server(make_settings(CARRIERS, commit_interval_ms=20), db) as client:
        with db.write() as conn:
            conn.execute(text("ALTER TABLE events RENAME TO events_away"))
        try:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/v1/messages", json={"id": str(i), "phone": "+79161234567", "text": "hi"}
                    )
                    for i in range(20)
                )
            )
            answers = [(r.status, (await r.json())["error"]) for r in responses]
        finally:
            with db.write() as conn:
                conn.execute(text("ALTER TABLE events_away RENAME TO events"))
        again = await client.post(
            "/v1/messages", json={"id": "1", "phone": "+79161234567", "text": "hi"}
        )
        assert again.status == 200
    assert set(answers) == {(503, "the event log is unavailable; send again")}
    assert event_count(db) == 1


def _event(i: int) -> NewEvent:
    return NewEvent(
        type="message.refused",
        message_id=str(i),
        occurred_at=utc_now(),
        source="test",
        payload={"reason": "insufficient_funds"},
        dedup_key=f"refused:{i}",
    )


async def test_stop_commits_what_was_submitted_and_refuses_what_comes_after(db: Database) -> None:
    writer = GroupCommitWriter(db, interval_ms=50, max_events=10_000)
    await writer.start()
    pending = [asyncio.create_task(writer.submit([_event(i)])) for i in range(30)]
    # One loop turn runs each task up to its wait on the future: all 30 are queued.
    await asyncio.sleep(0)
    await writer.stop()
    results = await asyncio.gather(*pending)
    assert sum(r.appended for r in results) == 30
    assert event_count(db) == 30
    try:
        await writer.submit([_event(99)])
    except WriterUnavailable:
        pass
    else:
        raise AssertionError("a stopped writer accepted events")
