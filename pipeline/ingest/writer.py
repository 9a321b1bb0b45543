"""Group commit: concurrent requests' events are appended together, in one transaction.

A DLR webhook answers only after its events are durable, and a transaction per request
would make the database's commit (an fsync, and on PostgreSQL the append lock) the
server's ceiling. So requests hand their events to one queue and a single flusher task
appends them in a worker thread (the event loop keeps accepting requests meanwhile), then
resolves each request's future with its own counts.

This is the classic group-commit pattern: an idle writer commits a submission at once (no
request waits for a timer), and whatever arrives while a commit is running forms the next
batch, taken whole as soon as that commit ends. Batches therefore grow exactly when load
does, and at low load a request pays one commit and nothing more. ``interval_ms`` adds an
optional linger before each commit, for databases where fewer, larger transactions matter
more than latency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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


@dataclass(slots=True)
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
        interval_ms: int = 0,
        max_events: int = 500,
        on_commit: CommitObserver | None = None,
    ) -> None:
        self._db = db
        self._interval = interval_ms / 1000
        self._max_events = max_events
        self._on_commit = on_commit
        #: Submissions not yet taken by the flusher, in arrival order.
        self._waiting: list[_Pending] = []
        self._waiting_events = 0
        #: Set when ``_waiting`` gains its first entry or the writer is stopping.
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._committing = 0
        # One thread of its own: transactions run one at a time anyway, and a dedicated
        # thread keeps its database connection warm and never queues behind other work.
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._wake = asyncio.Event()
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ingest-commit")
            self._task = asyncio.create_task(self._run(), name="ingest-group-commit")

    async def stop(self) -> None:
        """Commit everything already submitted, then end the flusher.

        Failure policy: requests submitted before ``stop`` are committed (or failed) and
        answered; a request arriving after it gets WriterUnavailable (503, send again).
        """
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        await self._task
        self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def queued_events(self) -> int:
        """Events submitted and not yet taken into a transaction."""
        return self._waiting_events

    @property
    def committing_events(self) -> int:
        """Events in the transaction running now (0 when none is)."""
        return self._committing

    async def submit(self, events: Sequence[NewEvent]) -> Committed:
        """Wait until ``events`` are committed; raise WriterUnavailable if they were not."""
        if not events:
            return Committed(0, 0)
        if self._closing or self._task is None:
            raise WriterUnavailable("the server is shutting down; send again")
        future: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Pending(events, future))
        self._waiting_events += len(events)
        self._wake.set()
        # Failure policy: if the client goes away while we wait, the events are still
        # committed (the flusher owns them now); the sender, having no answer, resends,
        # and the dedup key stores them once.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._interval > 0 and not self._closing:
                await self._linger()
            await self._flush(self._take())

    async def _linger(self) -> None:
        """Wait up to ``interval`` for more submissions, unless ``max_events`` are waiting."""
        deadline = asyncio.get_running_loop().time() + self._interval
        while self._waiting_events < self._max_events and not self._closing:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[_Pending]:
        """The next batch: waiting submissions in arrival order, up to ``max_events``
        (always at least one, however large)."""
        count = 0
        taken = 0
        for pending in self._waiting:
            if taken and count + len(pending.events) > self._max_events:
                break
            count += len(pending.events)
            taken += 1
        batch = self._waiting[:taken]
        del self._waiting[:taken]
        self._waiting_events -= count
        return batch

    async def _flush(self, batch: list[_Pending]) -> None:
        events = [event for pending in batch for event in pending.events]
        started = time.perf_counter()
        self._committing = len(events)
        try:
            # Failure policy: one transaction for the whole batch. If it fails (or the
            # process dies inside it) nothing of it is stored and no request of it has been
            # answered 2xx; each gets 503 (or a dropped connection) and its sender resends.
            result = await asyncio.get_running_loop().run_in_executor(
                self._executor, append, self._db, events
            )
        except Exception as exc:
            self._committing = 0
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
        self._committing = 0
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
