"""Under injected faults every change still reaches Altegio, in order per message; and two
dispatcher processes on one database (SQLite or PostgreSQL) deliver each change exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.dispatch.tables import deliveries
from pipeline.projector.tables import message_state
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox
from tests.dispatch.helpers import (
    TOKEN,
    Clock,
    dispatch_process,
    make_settings,
    put_state,
    received,
    write_config,
)

STAGES = (8, 4, 1)
FAULTS = {"500": 0.05, "502": 0.04, "503": 0.04, "429": 0.04, "reset": 0.03}  # 20 %


def _unacknowledged(db: Database) -> int:
    with db.read() as conn:
        rows = conn.execute(
            select(message_state.c.payload_hash, deliveries.c.acked_hash).join(
                deliveries, deliveries.c.message_id == message_state.c.message_id, isouter=True
            )
        ).all()
    return sum(1 for state_hash, acked in rows if state_hash != acked)


def _assert_in_order(items: list[dict], ids: list[str]) -> None:  # type: ignore[type-arg]
    for message_id in ids:
        statuses = [i["status"] for i in items if i["id"] == message_id]
        ranks = [STAGES.index(s) for s in statuses]
        assert ranks == sorted(ranks), f"{message_id} went backwards: {statuses}"
        assert statuses[-1] == 1, f"{message_id} never reached its final: {statuses}"


async def test_with_a_fifth_of_requests_failing_every_change_arrives_in_order(
    db: Database,
) -> None:
    ids = [f"q{n:02d}" for n in range(30)]
    clock = Clock()
    config = SandboxConfig(tokens=(TOKEN,), faults=FAULTS, seed=7, retry_after_s=1)
    async with running_sandbox(config) as url:
        settings = make_settings(url, batch_size=4, concurrency=3, backoff_base=1, backoff_cap=4)
        for status in STAGES:  # each stage lands while the last one is still being retried
            for message_id in ids:
                put_state(db, message_id, status=status)
            await Dispatcher(db, settings, clock=clock).run(until_idle=True)
            clock.advance(2)
        for _ in range(40):
            if _unacknowledged(db) == 0:
                break
            clock.advance(5)
            await Dispatcher(db, settings, clock=clock).run(until_idle=True)
        seen = await received(url)
    assert _unacknowledged(db) == 0
    failed = sum(n for kind, n in seen["stats"]["outcomes"].items() if kind != "200")
    assert failed > 0, "faults were injected"
    assert seen["stats"]["overlapping_ids"] == []
    _assert_in_order(seen["items"], ids)


async def test_two_dispatcher_processes_deliver_each_change_once_and_in_order(
    db: Database, tmp_path: Path
) -> None:
    ids = [f"p{n:03d}" for n in range(120)]
    database_url = db.engine.url.render_as_string(hide_password=False)
    # Latency long enough that a stage outlasts the two processes' start-up skew (else one
    # of them may find the work done and the test would not show them sharing it).
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,), latency_ms=100)) as url:
        config = write_config(tmp_path, url, batch_size=5, concurrency=2, per_host_concurrency=2)
        outputs = []
        for status in STAGES:
            for message_id in ids:
                put_state(db, message_id, status=status)
            # Each process may claim half the messages, so both must take part whatever
            # their start-up times; they run at the same time and race for the same rows.
            half = len(ids) // 2
            results = await asyncio.gather(
                dispatch_process(config, database_url, half),
                dispatch_process(config, database_url, half),
            )
            for code, out in results:
                assert code == 0, out
                assert TOKEN not in out
            outputs.append([out for _, out in results])
        seen = await received(url)
    pairs = Counter((i["id"], i["status"]) for i in seen["items"])
    assert set(pairs.values()) == {1} and len(pairs) == len(ids) * len(STAGES)
    assert seen["stats"]["overlapping_ids"] == []
    _assert_in_order(seen["items"], ids)
    # Both processes did their half of every stage.
    for stage in outputs:
        assert all(f"acknowledged {len(ids) // 2}," in out for out in stage), stage
