"""Group commit: concurrent requests' events are appended together, in one transaction.

A DLR webhook answers only after its events are durable, and a transaction per request
would make the database's commit (an fsync, and on PostgreSQL the append lock) the
server's ceiling. So requests hand their events to one queue; a single flusher task takes
everything waiting, appends it in one transaction in a worker thread (the event loop keeps
accepting requests meanwhile), then resolves each request's future with its own counts.
While one commit runs the next batch gathers, so batches grow exactly when load does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Committed:
    """What happened to one submitter's events."""

    appended: int
    duplicates: int


class WriterUnavailable(Exception):
    """The events were NOT stored (database error, or the writer is stopping).

    The message is safe to answer with; the sender must send again.
    """


@dataclass
class _Pending:
    events: Sequence[NewEvent]
    future: asyncio.Future[Committed]


#: Called after each commit with (events in the batch, seconds the transaction took).
CommitObserver = Callable[[int, float], None]


class GroupCommitWriter:
    def __init__(
        self,
        db: Database,
        *,
        interval_ms: int = 5,
        max_events: int = 500,
        on_commit: CommitObserver | None = None,
    ) -> None:
        self._db = db
        self._interval = interval_ms / 1000
        self._max_events = max_events
        self._on_commit = on_commit
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ingest-group-commit")

    async def stop(self) -> None:
        """Commit everything already submitted, then end the flusher.

        Failure policy: requests submitted before ``stop`` are committed (or failed) and
        answered; a request arriving after it gets WriterUnavailable (503, send again).
        """
        if self._task is None:
            return
        self._closing = True
        await self._queue.put(None)
        await self._task
        self._task = None

    async def submit(self, events: Sequence[NewEvent]) -> Committed:
        """Wait until ``events`` are committed; raise WriterUnavailable if they were not."""
        if not events:
            return Committed(0, 0)
        if self._closing or self._task is None:
            raise WriterUnavailable("the server is shutting down; send again")
        future: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(events, future))
        # Failure policy: if the client goes away while we wait, the events are still
        # committed (the flusher owns them now); the sender, having no answer, resends,
        # and the dedup key stores them once.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch, stopping = await self._gather(first)
            await self._flush(batch)
        # Anything queued after the stop marker (a race with shutdown) is refused, not lost
        # silently: its sender gets 503 and resends.
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if pending is not None and not pending.future.done():
                pending.future.set_exception(WriterUnavailable("the server is shutting down"))

    async def _gather(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """Collect submissions for up to ``interval`` or until ``max_events`` are waiting."""
        batch = [first]
        count = len(first.events)
        deadline = asyncio.get_running_loop().time() + self._interval
        while count < self._max_events:
            if self._queue.empty():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                item = self._queue.get_nowait()
            if item is None:
                return batch, True
            batch.append(item)
            count += len(item.events)
        return batch, False

    async def _flush(self, batch: list[_Pending]) -> None:
        events = [event for pending in batch for event in pending.events]
        started = time.perf_counter()
        try:
            # Failure policy: one transaction for the whole batch. If it fails (or the
            # process dies inside it) nothing of it is stored and no request of it has been
            # answered 2xx; each gets 503 (or a dropped connection) and its sender resends.
            result = await asyncio.to_thread(append, self._db, events)
        except Exception as exc:
            # Only the first line: SQLAlchemy appends the statement and its parameters.
            first_line = str(exc).splitlines()[0][:300] if str(exc) else ""
            log.error(
                "group commit of %d events failed: %s: %s",
                len(events),
                type(exc).__name__,
                first_line,
            )
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(
                        WriterUnavailable("the event log is unavailable; send again")
                    )
            return
        elapsed = time.perf_counter() - started
        if self._on_commit is not None:
            self._on_commit(len(events), elapsed)
        # append() keeps the first of equal dedup keys, so within a batch the earliest
        # submitter's copy is "appended" and later ones are duplicates, as if in sequence.
        stored = {id(event) for _, event in result.appended}
        for pending in batch:
            appended = 0
            for event in pending.events:
                if id(event) in stored:
                    stored.discard(id(event))
                    appended += 1
            if not pending.future.done():
                pending.future.set_result(Committed(appended, len(pending.events) - appended))
