"""Making a group commit observable without timing it: hold the log's write lock from
another connection (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's append advisory lock), so a
commit the writer has started stays in progress until the test lets it go."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from pipeline.db.engine import Database
from pipeline.eventlog.ordering import serialise_appends

#: Bounds every wait, so a regression fails instead of hanging; never a pace.
TIMEOUT = 60


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for ``condition``, yielding to the loop in between."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


@asynccontextmanager
async def append_lock_held(db: Database) -> AsyncIterator[None]:
    """Hold the log's write lock from another connection of ``db`` until the block ends."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.write() as conn:
            serialise_appends(conn)
            held.set()
            release.wait(TIMEOUT)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert await asyncio.to_thread(held.wait, TIMEOUT)
        yield
    finally:
        release.set()
        await asyncio.to_thread(holder.join, TIMEOUT)
