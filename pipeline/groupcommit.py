"""Group commit: concurrent submissions share one transaction, written by one flusher.

A transaction per submission would make the database's commit (an fsync, and on
PostgreSQL the append lock) the ceiling. So submitters hand their items to one queue and a
single flusher task commits them in a thread of its own (the event loop keeps running
meanwhile), then gives each submitter its own result.

This is the classic pattern: an idle flusher commits a submission at once (nobody waits
for a timer), and whatever arrives while a commit is running forms the next batch, taken
whole as soon as that commit ends. Batches therefore grow exactly when load does, and at
low load a submission pays one commit and nothing more. ``interval_ms`` adds an optional
linger before each commit, for databases where fewer, larger transactions matter more than
latency.

What a failed batch means is the user's choice:
- with ``isolate``, one submission's bad content must not fail the others: the batch is
  retried one submission at a time, in arrival order, each in its own transaction, and
  only the one at fault fails; when ``isolate`` says the failure is not the submission's
  own (the database's), the rest of the batch fails at once rather than each failing its
  own transaction;
- without it, the batch's error ends the flusher: ``task`` holds the error and ``flush``
  and ``stop`` raise it.

Used by the ingest writer (``pipeline.ingest.writer``) and the dispatcher's record queue
(``pipeline.dispatch.record_queue``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

S = TypeVar("S")
R = TypeVar("R")

#: Commits the items of one batch in ONE transaction, in a worker thread; returns one result
#: per item, in order.
Commit = Callable[[list[S]], Sequence[R]]
#: Called after each commit with (size of the batch, seconds the transaction took).
CommitObserver = Callable[[int, float], None]


@dataclass(frozen=True, slots=True)
class Isolation:
    """How a failed batch is retried one submission at a time."""

    #: Whether the failure was the submission's own (retry the others) rather than the
    #: database's (fail the rest of the batch at once).
    own_fault: Callable[[Exception], bool]
    #: The exception a submitter whose items were not stored gets, from the failure.
    rejection: Callable[[Exception], Exception]
    #: A one-line, parameter-free description of a failure, for the log.
    describe: Callable[[Exception], str]


@dataclass(slots=True)
class _Pending(Generic[S, R]):
    item: S
    size: int
    #: None for a submission nobody waits on (its failure ends the flusher instead).
    future: asyncio.Future[R] | None


def _one(_item: object) -> int:
    return 1


class GroupCommit(Generic[S, R]):
    """A queue of submissions and the one flusher that commits them in groups."""

    def __init__(
        self,
        commit: Commit[S, R],
        *,
        size: Callable[[S], int] = _one,
        max_size: int | None = None,
        interval_ms: int = 0,
        isolate: Isolation | None = None,
        on_commit: CommitObserver | None = None,
        name: str = "group-commit",
        unit: str = "items",
        submitter: str = "submitters",
    ) -> None:
        self._commit = commit
        self._size = size
        self._max_size = max_size
        self._interval = interval_ms / 1000
        self._isolate = isolate
        self._on_commit = on_commit
        self._name = name
        #: Words for the log: what is counted, and who submits it.
        self._unit = unit
        self._submitter = submitter
        #: Submissions not yet taken by the flusher, in arrival order.
        self._waiting: list[_Pending[S, R]] = []
        self._waiting_size = 0
        self._committing = 0
        #: Set when ``_waiting`` gains an entry or the flusher is stopping.
        self._wake = asyncio.Event()
        #: Set while nothing is waiting or being committed.
        self._idle = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # One thread of its own: transactions run one at a time anyway, and a dedicated
        # thread keeps its database connection warm and never queues behind other work.
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._wake = asyncio.Event()
            self._idle = asyncio.Event()
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=self._name)
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Commit everything already submitted, then end the flusher (raising its error,
        if a batch without ``isolate`` failed)."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        try:
            await self._task
        finally:
            self._task = None
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    @property
    def accepting(self) -> bool:
        """Whether a submission now will be committed (started and not stopping)."""
        return self._task is not None and not self._closing

    @property
    def task(self) -> asyncio.Task[None]:
        """The flusher; done before ``stop`` only when a batch without ``isolate`` failed."""
        assert self._task is not None
        return self._task

    @property
    def queued(self) -> int:
        """Size of the submissions not yet taken into a transaction."""
        return self._waiting_size

    @property
    def committing(self) -> int:
        """Size of the batch in the transaction running now (0 when none is)."""
        return self._committing

    def submit_nowait(self, item: S) -> None:
        """Queue ``item`` without waiting for it (for a flusher without ``isolate``, whose
        failure ends the flusher: see ``task`` and ``flush``)."""
        self._queue(_Pending(item, self._size(item), None))

    async def submit(self, item: S) -> R:
        """Wait until ``item`` is committed and return its result (or raise its failure)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue(_Pending(item, self._size(item), future))
        # Failure policy: if the submitter goes away while waiting, the item is still
        # committed: the flusher owns the item, not the future. A cancelled submitter
        # cancels only its own future, which ``_give`` and ``_fail`` then skip; so no
        # ``asyncio.shield`` (another future and callback hop for every submission).
        return await future

    async def flush(self) -> None:
        """Return once everything submitted so far is committed (or raise the error that
        ended the flusher)."""
        task = self.task
        waiter = asyncio.ensure_future(self._idle.wait())
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()

    def _queue(self, pending: _Pending[S, R]) -> None:
        self._waiting.append(pending)
        self._waiting_size += pending.size
        self._idle.clear()
        self._wake.set()

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                self._idle.set()
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._interval > 0 and not self._closing:
                await self._linger()
            await self._flush(self._take())

    async def _linger(self) -> None:
        """Wait up to ``interval`` for more submissions, unless ``max_size`` is waiting."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._interval
        while not self._closing and (self._max_size is None or self._waiting_size < self._max_size):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[_Pending[S, R]]:
        """The next batch: waiting submissions in arrival order, up to ``max_size``
        (always at least one, however large)."""
        size = 0
        taken = 0
        for pending in self._waiting:
            if taken and self._max_size is not None and size + pending.size > self._max_size:
                break
            size += pending.size
            taken += 1
        batch = self._waiting[:taken]
        del self._waiting[:taken]
        self._waiting_size -= size
        return batch

    async def _commit_batch(self, batch: list[_Pending[S, R]]) -> Sequence[R]:
        """One transaction in the flusher's thread; reports its size and duration."""
        size = sum(p.size for p in batch)
        started = time.perf_counter()
        self._committing = size
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._commit, [p.item for p in batch]
            )
        finally:
            self._committing = 0
        if self._on_commit is not None:
            self._on_commit(size, time.perf_counter() - started)
        return results

    async def _flush(self, batch: list[_Pending[S, R]]) -> None:
        try:
            # Failure policy: one transaction for the whole batch. If the process dies
            # inside it, nothing of it is stored and no submitter has had its result.
            results = await self._commit_batch(batch)
        except Exception as exc:
            if self._isolate is None:
                for pending in batch:
                    if pending.future is not None and not pending.future.done():
                        pending.future.set_exception(exc)
                raise
            log.warning(
                "group commit of %d %s from %d %s failed: %s",
                sum(p.size for p in batch),
                self._unit,
                len(batch),
                self._submitter,
                self._isolate.describe(exc),
            )
            if len(batch) == 1:
                self._fail(batch[0], exc)
            else:
                await self._one_at_a_time(batch)
            return
        for pending, result in zip(batch, results, strict=True):
            self._give(pending, result)

    async def _one_at_a_time(self, batch: list[_Pending[S, R]]) -> None:
        """Retry each submission of a failed batch in its own transaction, in arrival order.

        Failure policy: only the submission at fault fails. Its own fault -> it fails and
        the next is tried. Not its own (the database's) -> it and every one after it fail
        (they would only fail again). Arrival order keeps the batch's outcome: an earlier
        submission is committed before a later one, as in the batch.
        """
        assert self._isolate is not None
        for index, pending in enumerate(batch):
            try:
                (result,) = await self._commit_batch([pending])
            except Exception as exc:
                self._fail(pending, exc)
                if not self._isolate.own_fault(exc):
                    for rest in batch[index + 1 :]:
                        self._fail(rest, exc)
                    return
                continue
            self._give(pending, result)

    @staticmethod
    def _give(pending: _Pending[S, R], result: R) -> None:
        if pending.future is not None and not pending.future.done():
            pending.future.set_result(result)

    def _fail(self, pending: _Pending[S, R], exc: Exception) -> None:
        assert self._isolate is not None
        if pending.future is not None and not pending.future.done():
            pending.future.set_exception(self._isolate.rejection(exc))
