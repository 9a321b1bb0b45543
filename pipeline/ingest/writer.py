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

One request's bad content must not fail the others that share its commit. When a batch
fails, its requests are retried one at a time, in arrival order, each in its own
transaction: a request whose content the database refuses gets ContentRejected (the server
answers 400 and quarantines it), the others are committed and answered as usual. When the
failure is the database's (``faults.classify_failure``), the rest of the batch gets
WriterUnavailable at once rather than a failing transaction each.
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
from pipeline.eventlog.append import AppendResult
from pipeline.ingest.faults import classify_failure, failure_text

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


class ContentRejected(Exception):
    """The database refused this request's own content: sent again, it would fail again.

    ``error`` and ``detail`` are safe to answer and to quarantine with (no SQL, no
    parameters, no unencodable characters).
    """

    error = "the event log refused this request's content"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = [{"field": "events", "reason": reason}]


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

    async def _append(self, events: Sequence[NewEvent]) -> AppendResult:
        """One transaction in the writer's thread; reports its size and duration."""
        started = time.perf_counter()
        self._committing = len(events)
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                self._executor, append, self._db, events
            )
        finally:
            self._committing = 0
        if self._on_commit is not None:
            self._on_commit(len(events), time.perf_counter() - started)
        return result

    async def _flush(self, batch: list[_Pending]) -> None:
        events = [event for pending in batch for event in pending.events]
        try:
            # Failure policy: one transaction for the whole batch. If the process dies
            # inside it, nothing of it is stored and no request of it has been answered
            # 2xx; each sender resends. If it fails, see _one_at_a_time.
            result = await self._append(events)
        except Exception as exc:
            log.warning(
                "group commit of %d events from %d requests failed: %s",
                len(events),
                len(batch),
                failure_text(exc, 300),
            )
            if len(batch) == 1:
                self._fail(batch[0], exc)
            else:
                await self._one_at_a_time(batch)
            return
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

    async def _one_at_a_time(self, batch: list[_Pending]) -> None:
        """Retry each request of a failed batch in its own transaction, in arrival order.

        Failure policy: only the request at fault fails. Content refused -> that request
        gets ContentRejected and the next is tried. Database at fault -> that request and
        every one after it get WriterUnavailable (they would only fail again), and their
        senders resend. Arrival order keeps the batch's dedup outcome: an earlier
        submitter's copy of a key is the one appended.
        """
        for index, pending in enumerate(batch):
            try:
                result = await self._append(pending.events)
            except Exception as exc:
                self._fail(pending, exc)
                if classify_failure(exc) == "database":
                    for rest in batch[index + 1 :]:
                        self._fail(rest, exc)
                    return
                continue
            if not pending.future.done():
                appended = len(result.appended)
                pending.future.set_result(Committed(appended, len(pending.events) - appended))

    @staticmethod
    def _fail(pending: _Pending, exc: Exception) -> None:
        """Answer one request whose events were not stored, by whose fault it was."""
        if pending.future.done():
            return
        if classify_failure(exc) == "content":
            reason = failure_text(exc)
            log.warning("refused a request whose content the event log cannot store: %s", reason)
            pending.future.set_exception(ContentRejected(reason))
        else:
            pending.future.set_exception(
                WriterUnavailable("the event log is unavailable; send again")
            )
