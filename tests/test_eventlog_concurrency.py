"""Concurrent writers and a reader at the same time: the reader never skips an event.

On PostgreSQL, transactions take positions in one order and commit in another; this is
the test that proves the append path makes positions visible in order (see
pipeline/eventlog/ordering.py). Writers use random transaction sizes so commits of
different lengths interleave.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime

import pytest

from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append, read

WRITERS = 8
EVENTS_PER_WRITER = 2000
REPETITIONS = 3


def _writer(db: Database, writer: int, rep: int, seed: int, errors: list[BaseException]) -> None:
    rng = random.Random(seed)
    try:
        n = 0
        while n < EVENTS_PER_WRITER:
            size = min(rng.randint(1, 50), EVENTS_PER_WRITER - n)
            batch = [
                NewEvent(
                    type="carrier.status",
                    occurred_at=datetime.now(UTC),
                    source=f"writer-{writer}",
                    payload={"rep": rep, "writer": writer, "n": n + i},
                )
                for i in range(size)
            ]
            append(db, batch)
            n += size
    except BaseException as exc:  # surfaced by the main thread
        errors.append(exc)


@pytest.mark.slow
@pytest.mark.parametrize("repetition", range(REPETITIONS))
def test_reader_sees_every_position_exactly_once_under_concurrent_writers(
    db: Database, repetition: int
) -> None:
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer, args=(db, w, repetition, repetition * 100 + w, errors))
        for w in range(WRITERS)
    ]
    seen: list[int] = []
    after = 0
    for t in threads:
        t.start()

    def drain() -> int:
        nonlocal after
        batch = read(db, after=after, limit=500)
        seen.extend(e.position for e in batch.events)
        after = batch.next_checkpoint
        return len(batch.events)

    while any(t.is_alive() for t in threads):
        if not drain():
            time.sleep(0.001)  # a polling reader, as the projector is; not a synchronisation
    for t in threads:
        t.join()
    assert not errors, errors
    while drain():
        pass

    total = WRITERS * EVENTS_PER_WRITER
    with db.read() as conn:
        all_positions = [
            row[0] for row in conn.exec_driver_sql("SELECT position FROM events ORDER BY position")
        ]
    assert len(all_positions) == total
    # Exactly once, in order, and nothing that is in the table was missed while reading.
    assert seen == all_positions
