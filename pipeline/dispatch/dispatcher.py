"""One dispatch run's plumbing: a claimer, senders and a record writer, overlapping.

``run`` starts a claimer and ``concurrency`` senders; the claimer (``_claimer``) claims due
messages pass after pass in a worker thread, and ``_enqueue`` has the delivery rules
(``pipeline.dispatch.delivery``) route them into batches, which it puts on a bounded queue;
each sender takes a batch and has the rules deliver it (post, bisect, settle), and every
message's ``Resolution`` goes to the ``RecordQueue``, which writes them in groups in a
worker thread, so the event loop keeps sending. Requests are sent outside every database
transaction; the claim's lease keeps the messages ours meanwhile, and no request is started
that could outlive the lease.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import Callable
from datetime import datetime

import aiohttp

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.dispatch.claim import claim_due_deliveries
from pipeline.dispatch.delivery import Delivery
from pipeline.dispatch.model import Claim, ClaimedItem, DispatchSummary, Resolution, Routed
from pipeline.dispatch.observe import DispatchObserver
from pipeline.dispatch.record_queue import RecordQueue
from pipeline.dispatch.routes import PartnerTokens
from pipeline.dispatch.transport import make_session
from pipeline.eventlog.model import utc_now

#: Messages one run without ``until_idle`` takes, as batches per connection.
ROUND_BATCHES = 8
#: Messages per claim, as batches per connection: small claims keep the first request
#: early and let several dispatchers share the work; each claim has a fixed cost.
CLAIM_BATCHES = 2
#: Claimed batches waiting for a sender, per connection: how far claims run ahead.
CLAIM_AHEAD = 4


def default_dispatcher_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Dispatcher:
    """Sends pending statuses; ``clock`` and ``rng`` are injectable so tests drive time."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        dispatcher_id: str | None = None,
        observer: DispatchObserver | None = None,
    ) -> None:
        self.db = db
        self.observer = observer
        self.settings = settings
        self.config = settings.dispatcher
        self.clock = clock
        self.rng = rng or random.Random()
        self.dispatcher_id = dispatcher_id or default_dispatcher_id()
        self.tokens = PartnerTokens(settings)
        self._summary = DispatchSummary()
        self._records: RecordQueue
        self._delivery = self._new_delivery()

    def _new_delivery(self) -> Delivery:
        """The delivery rules for one run, counting into this run's summary."""
        return Delivery(
            self.settings,
            self.tokens,
            clock=self.clock,
            rng=self.rng,
            summary=self._summary,
            on_request=self.observer.request_done if self.observer is not None else None,
        )

    async def run(self, *, until_idle: bool = False, limit: int | None = None) -> DispatchSummary:
        """One pass over what is due (or, ``until_idle``, passes until nothing is due or a
        pass makes no progress), claiming ahead while sending and recording in groups.

        Three kinds of work overlap: a claimer leases the next messages (in a worker
        thread) and puts their batches on a bounded queue; ``concurrency`` senders take
        batches off it and post them; the record queue writes every result waiting in one
        transaction (in a worker thread). The queue's bound is how far claims run ahead of
        the sends, so leases are never taken much earlier than they are used.
        """
        self._summary = DispatchSummary()
        self._delivery = self._new_delivery()
        budget = None if until_idle else self._per_round()
        if limit is not None:
            budget = limit if budget is None else min(budget, limit)
        queue: asyncio.Queue[tuple[Claim, list[Routed]]] = asyncio.Queue(
            maxsize=CLAIM_AHEAD * self.config.concurrency
        )
        async with make_session(self.config) as session, RecordQueue(self.db, self.clock) as rq:
            self._records = rq
            senders = [
                asyncio.create_task(self._sender(session, queue))
                for _ in range(self.config.concurrency)
            ]
            try:
                await self._claimer(queue, senders, until_idle=until_idle, budget=budget)
            finally:
                for task in senders:
                    task.cancel()
                await asyncio.gather(*senders, return_exceptions=True)
                # Failure policy: batches claimed ahead but never sent (the run failed or
                # was cancelled) are given back now, without counting an attempt, so they
                # are not held until their lease ends. Should even that write fail, the
                # leases run out after dispatcher.lease and the messages are claimed again.
                self._release_queued(queue)
        return self._summary

    def _per_round(self) -> int:
        return self.config.batch_size * self.config.concurrency * ROUND_BATCHES

    async def _claimer(
        self,
        queue: asyncio.Queue[tuple[Claim, list[Routed]]],
        senders: list[asyncio.Task[None]],
        *,
        until_idle: bool,
        budget: int | None,
    ) -> None:
        """Claim pass after pass in key order, feeding the senders, until done.

        A pass starts from the lowest message id (creating missing ``deliveries`` rows
        first) and continues after the last id each claim reached. At the end of a pass
        every queued batch is sent and every result committed before anything else is
        claimed: the next pass then sees settled state (an acknowledged probe has closed its
        circuit; a message is never claimed again before its last result is committed).
        """
        per_claim = self.config.batch_size * self.config.concurrency * CLAIM_BATCHES
        after: str | None = None
        pass_claimed = 0
        mark = self._progress()
        while True:
            want = per_claim if budget is None else min(per_claim, budget - self._summary.claimed)
            claim = await self._claim(want, after=after, ensure_rows=after is None)
            if claim.items:
                pass_claimed += len(claim.items)
                after = claim.cursor or after
                await self._enqueue(claim, queue, senders)
                if budget is None or self._summary.claimed < budget:
                    continue
            # The end of a pass (or of the budget): let everything in flight settle.
            await self._drain(queue, senders)
            if not until_idle or pass_claimed == 0:
                return
            if budget is not None and self._summary.claimed >= budget:
                return
            if self._progress() == mark:
                # Nothing moved (everything is retrying with no delay left): stop rather
                # than spin against a failing Altegio; the next run tries again.
                return
            mark = self._progress()
            after, pass_claimed = None, 0

    async def _enqueue(
        self,
        claim: Claim,
        queue: asyncio.Queue[tuple[Claim, list[Routed]]],
        senders: list[asyncio.Task[None]],
    ) -> None:
        """Route a claim, record its refusals, queue its batches (waiting while full)."""
        refused, batches = self._delivery.route(claim)
        self._record(refused, claim)
        for n, batch in enumerate(batches):
            put = asyncio.ensure_future(queue.put((claim, batch)))
            try:
                await self._until(put, senders)
            except BaseException:
                # Failure policy: the run is ending (cancelled or failed) while this claim
                # waits for room in the queue; its batches not queued yet are given back
                # now like the queued ones (see ``run``), else the lease runs out.
                if not put.done() or put.cancelled():
                    put.cancel()
                    rest = batches[n:]
                else:
                    rest = batches[n + 1 :]
                for unsent in rest:
                    self._release(claim, unsent)
                raise

    async def _drain(
        self, queue: asyncio.Queue[tuple[Claim, list[Routed]]], senders: list[asyncio.Task[None]]
    ) -> None:
        """Wait until every queued batch was sent and every result committed."""
        await self._until(asyncio.ensure_future(queue.join()), senders)
        await self._records.flush()

    async def _until(
        self, waiter: asyncio.Future[object], senders: list[asyncio.Task[None]]
    ) -> None:
        """Await ``waiter``, but raise at once if a sender or the record writer died (with
        its error): nothing more is claimed or sent once results can no longer be kept."""
        watched = {*senders, self._records.task}
        try:
            await asyncio.wait({waiter, *watched}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            waiter.cancel()
            raise
        if not waiter.done():
            waiter.cancel()
            for task in watched:
                if task.done():
                    task.result()
            raise RuntimeError("a dispatch sender stopped")
        waiter.result()

    async def _sender(
        self, session: aiohttp.ClientSession, queue: asyncio.Queue[tuple[Claim, list[Routed]]]
    ) -> None:
        """Post batches off the queue one at a time; results go to the record queue."""
        while True:
            claim, batch = await queue.get()
            try:
                resolutions = await self._delivery.deliver(session, batch, claim)
                self._record(resolutions, claim)
            finally:
                queue.task_done()

    def _release_queued(self, queue: asyncio.Queue[tuple[Claim, list[Routed]]]) -> None:
        """Give back batches that were claimed ahead and never sent."""
        while not queue.empty():
            claim, batch = queue.get_nowait()
            queue.task_done()
            self._release(claim, batch)

    def _release(self, claim: Claim, batch: list[Routed]) -> None:
        """Give back a claimed batch that was never sent (no attempt is counted)."""
        self._summary.claimed -= len(batch)
        self._records.submit(claim.owner, [_unsent(r.item) for r in batch])

    def _progress(self) -> int:
        s = self._summary
        return s.acknowledged + s.parked + s.expired

    async def _claim(self, limit: int, *, after: str | None, ensure_rows: bool) -> Claim:
        """Failure policy: see ``claim_due_deliveries`` (leases run out if we die)."""
        if limit <= 0:
            return Claim("", self.clock(), [])
        claiming = asyncio.ensure_future(
            asyncio.to_thread(
                claim_due_deliveries,
                self.db,
                dispatcher_id=self.dispatcher_id,
                now=self.clock(),
                limit=limit,
                lease_seconds=self.config.lease,
                send_intermediate=self.config.send_intermediate,
                auth_cooldown=self.config.auth_cooldown,
                after=after,
                ensure_rows=ensure_rows,
            )
        )
        try:
            claim = await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # Failure policy: the run was cancelled while the claim ran in its thread; it
            # may still commit. Wait for it and give back whatever it leased (no attempt
            # counted), else those messages would wait for their lease to run out.
            claim = await claiming
            self._records.submit(claim.owner, [_unsent(item) for item in claim.items])
            raise
        self._summary.claimed += len(claim.items)
        return claim

    def _record(self, resolutions: list[Resolution], claim: Claim) -> None:
        if not resolutions:
            return
        self._summary.sent += sum(1 for r in resolutions if r.outcome is not None)
        self._records.submit(claim.owner, resolutions)
        if self.observer is not None:
            self.observer.settled(resolutions)


def _unsent(item: ClaimedItem) -> Resolution:
    return Resolution(item=item, result="deferred", outcome=None, url="")


def dispatch_once(
    db: Database,
    settings: Settings,
    *,
    until_idle: bool = False,
    limit: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    rng: random.Random | None = None,
    observer: DispatchObserver | None = None,
) -> DispatchSummary:
    """The function the CLI and the scheduled job both call. It appends to the log
    (``dispatch.*``), so the price tables in force are recorded first."""
    from pipeline.prices.record import record_prices

    record_prices(db, settings)
    dispatcher = Dispatcher(db, settings, clock=clock, rng=rng, observer=observer)
    return asyncio.run(dispatcher.run(until_idle=until_idle, limit=limit))
