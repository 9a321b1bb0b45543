"""Group commit of dispatch results, so the event loop never waits on the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from pipeline.db.engine import Database
from pipeline.dispatch.record import Resolution, record_groups
from pipeline.groupcommit import GroupCommit

#: One request's results and the owner of its claim.
Group = tuple[str, list[Resolution]]


class RecordQueue:
    """Group commit for results: requests finishing close together share one transaction.

    One ``pipeline.groupcommit.GroupCommit`` flusher writes; whatever arrived while it was
    writing goes into the next transaction. Failure policy: results not yet committed when
    the process dies are lost, and their leases run out, so those messages are claimed and
    sent again (the same payload or a newer one). A failing write ends the run with the
    error; the same holds then.
    """

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock
        self._group: GroupCommit[Group, None] = GroupCommit(
            self._write, name="dispatch-record", unit="requests"
        )

    async def __aenter__(self) -> RecordQueue:
        await self._group.start()
        return self

    @property
    def task(self) -> asyncio.Task[None]:
        """The writer; done before the end only when a write failed."""
        return self._group.task

    async def __aexit__(self, *exc: object) -> None:
        await self._group.stop()

    def submit(self, owner: str, resolutions: list[Resolution]) -> None:
        if resolutions:
            self._group.submit_nowait((owner, resolutions))

    async def flush(self) -> None:
        """Return once everything submitted so far is committed (or raise its error)."""
        await self._group.flush()

    def _write(self, groups: list[Group]) -> list[None]:
        """All waiting requests' results in one transaction (in the writer's thread)."""
        record_groups(self._db, groups, now=self._clock())
        return [None] * len(groups)
