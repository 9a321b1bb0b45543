"""Group commit of dispatch results, so the event loop never waits on the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from pipeline.db.engine import Database
from pipeline.dispatch.record import Resolution, record_groups


class RecordQueue:
    """Group commit for results: requests finishing close together share one transaction.

    One task writes; whatever arrived while it was writing goes into the next transaction.
    Failure policy: results not yet committed when the process dies are lost, and their
    leases run out, so those messages are claimed and sent again (the same payload or a
    newer one). A failing write ends the run with the error; the same holds then.
    """

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock
        self._waiting: list[tuple[str, list[Resolution]]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RecordQueue:
        self._task = asyncio.create_task(self._write_loop())
        return self

    @property
    def task(self) -> asyncio.Task[None]:
        """The writer; done before the end only when a write failed."""
        assert self._task is not None
        return self._task

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        self._wake.set()
        assert self._task is not None
        await self._task

    def submit(self, owner: str, resolutions: list[Resolution]) -> None:
        if resolutions:
            self._waiting.append((owner, resolutions))
            self._idle.clear()
            self._wake.set()

    async def flush(self) -> None:
        """Return once everything submitted so far is committed (or raise its error)."""
        assert self._task is not None
        waiter = asyncio.ensure_future(self._idle.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()

    async def _write_loop(self) -> None:
        while True:
            if not self._waiting:
                self._idle.set()
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            groups, self._waiting = self._waiting, []
            await asyncio.to_thread(record_groups, self._db, groups, now=self._clock())
