"""Fold the log from scratch in N processes: the same shadow tables as one fold, sooner.

``fold_into_shadow(..., workers=N)`` is ``replay.fold_into_shadow`` spread over processes
(``replay --verify|--rebuild --workers N``, ``report verify --workers N``). Steps:

1. **Claims** (serial, one SQL statement): the first ``carrier.submitted`` of each carrier
   id, so a report naming only the carrier's id is routed to the worker of the message
   that will claim it (``pipeline.projector.shard``).
2. **Workers** (parallel; the processes start while the claims are filled): each reads
   the log as its clock needs it (``pipeline.projector.worker_read``) and folds only its
   messages into its own tables (``*__shard<k>``), in its own transactions and processes;
   with ``remote``, some of them on other machines (``smsrecon replay-worker``), met
   through the board of ``pipeline.projector.board``.
3. **Agreement**: an event that fails to fold (``unreadable_event``) must not move the
   event clock, nor claim a carrier id, in any worker; only its owner can find out. When a
   worker found such an event that the others folded, the round is run again with it
   skipped everywhere (``Shard.forced``). Rounds stop when the workers agree (at once for
   a log without such events); after ``MAX_ROUNDS`` the log is folded in one process.
4. **Merge** (serial): the workers' rows into the ``*__replay`` tables
   (``pipeline.projector.merge``), which verify compares and rebuild swaps in.

Failure policy: nothing here touches the live tables; a crash leaves scratch tables that the
next run drops and makes again. Runs under the projector lock, held by the caller.

On SQLite every write transaction is ``BEGIN IMMEDIATE``, so the workers' batches take
turns at the one writer: the result is the same, the time is not shorter (each worker also
reads the whole log). The speed-up is for PostgreSQL.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.db.engine import Database
from pipeline.projector.board import AGAIN, AGREED, SERIAL, Board, Remote, RoundSpec, Waiting
from pipeline.projector.derive import FoldRules
from pipeline.projector.finance import EmptyBook
from pipeline.projector.merge import merge
from pipeline.projector.shard import (
    Shard,
    ShardResult,
    claims,
    drop_claims,
    drop_tables,
    fill_claims,
    fold_shard,
    stage_tables,
)
from pipeline.projector.store import ProjectionTables, shadow_tables

MAX_ROUNDS = 3
log = logging.getLogger(__name__)
#: Seconds between looks at the workers' progress.
POLL = 0.5


@dataclass(frozen=True)
class Agreement:
    """What a round's workers found: whether they agree, and what the next round skips."""

    agreed: bool
    forced: dict[int, tuple[str, bool]]
    #: Positions the reader could not decode (no carrier id is claimed by them).
    unread: set[int]


def agree(
    results: list[ShardResult], forced: dict[int, tuple[str, bool]], claimed_unread: bool
) -> Agreement:
    """Whether every worker skipped exactly the events that fail, as one fold skips them.

    A message event fails for its owner alone, and every other worker must have skipped
    it; a reference event every worker folds, and either all fail it or all were told to
    skip it. ``claimed_unread``: an event the reader cannot decode was taken as a claim.
    """
    count = len(results)
    found: dict[int, tuple[str, bool]] = {}
    for result in sorted(results, key=lambda r: r.index):
        for position, failure in result.failed.items():
            found.setdefault(position, failure)
    for position, (error, message_event) in forced.items():
        if not message_event:
            found.setdefault(position, (error, message_event))  # skipped by all: still failed
    unread = set().union(*(r.unread for r in results))
    agreed = not claimed_unread and len({(r.position, r.clock) for r in results}) == 1
    for position, (_error, message_event) in found.items():
        failed = sum(position in r.failed for r in results)
        skipped = sum(position in r.untried for r in results)
        if message_event:
            agreed &= failed == 1 and skipped == count - 1
        else:
            agreed &= failed + skipped == count and (failed == count or skipped == count)
    for result in results:
        agreed &= result.untried <= found.keys()
    return Agreement(agreed, found, unread)


def fold_into_shadow(
    db: Database,
    rules: FoldRules,
    *,
    grace_seconds: float,
    batch_size: int,
    upto: int,
    workers: int,
    on_batch: Callable[[int], None] | None = None,
    inline: bool = False,
    timings: dict[str, float] | None = None,
    remote: Remote | None = None,
) -> ProjectionTables:
    """The shadow tables ``replay.fold_into_shadow`` makes, folded by ``workers`` processes
    (``inline``: one after another in this process, the same code without the processes).
    ``on_batch`` hears events folded, summed over workers and divided by their number;
    ``timings`` gets the seconds of each step (claims, workers, merge), for the bench.

    ``remote``: this process folds shards ``0..remote.local-1`` only and waits for workers
    on other machines (``pipeline.projector.remote``) to fold the others, each round
    published on the board (``pipeline.projector.board``); raises ``RemoteShardError``
    when one fails or is not heard from in time."""
    clock = _Stopwatch(timings)
    stages = [stage_tables(k) for k in range(workers)]
    forced: dict[int, tuple[str, bool]] = {}
    unread: set[int] = set()
    local = workers if remote is None else remote.local
    board = None if remote is None else Board.open(db, rules, workers, remote)
    processes = ExitStack()
    try:
        # The worker processes start (and import the fold) while the claims are filled.
        pool = None if inline or not local else processes.enter_context(_Pool(local))
        for round_ in range(1, MAX_ROUNDS + 1):
            excluded = set(forced) | unread
            with clock("claims"):
                fill_claims(db, upto, excluded)
            shards = [Shard(k, workers, forced=dict(forced)) for k in range(local)]
            args = dict(grace_seconds=grace_seconds, batch_size=batch_size, upto=upto)
            waiting = None
            if board is not None:
                spec = RoundSpec(upto, batch_size, grace_seconds, dict(forced))
                waiting = board.publish(round_, spec)
            with clock("workers"):
                if inline:
                    results = [_fold_inline(db, rules, s, on_batch, workers, args) for s in shards]
                    if waiting is not None:
                        results += _wait_for(waiting)
                else:
                    results = _fold_in_processes(db, rules, shards, on_batch, args, pool,
                                                 count=workers, waiting=waiting)  # fmt: skip
            claimed_unread = _claims_any(db, {p for r in results for p in r.unread} - excluded)
            verdict = agree(results, forced, claimed_unread)
            if verdict.agreed:
                if board is not None:
                    board.end_round(round_, AGREED)
                shadow = shadow_tables()
                with clock("merge"):
                    merge(db, stages, shadow)
                return shadow
            if board is not None:
                board.end_round(round_, AGAIN if round_ < MAX_ROUNDS else SERIAL)
            log.info("parallel fold, round %d: the workers found events that fail to fold; "
                     "folding again with them skipped everywhere", round_)  # fmt: skip
            forced, unread = verdict.forced, unread | verdict.unread
    finally:
        processes.close()
        if board is not None:
            board.close()
        for stage in stages:
            drop_tables(db, stage)
        drop_claims(db)
    log.warning("parallel fold: the workers did not agree after %d rounds; folding in one "
                "process", MAX_ROUNDS)  # fmt: skip
    from pipeline.projector.replay import fold_into_shadow as fold_serially

    return fold_serially(db, rules, grace_seconds=grace_seconds, batch_size=batch_size, upto=upto)


class _Stopwatch:
    """Adds the seconds spent in each named step to ``timings`` (when given)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            if self.timings is not None:
                spent = time.perf_counter() - started
                self.timings[step] = self.timings.get(step, 0.0) + spent


def _claims_any(db: Database, positions: set[int]) -> bool:
    if not positions:
        return False
    from sqlalchemy import func, select

    with db.read() as conn:
        found = conn.scalar(
            select(func.count()).select_from(claims).where(claims.c.position.in_(sorted(positions)))
        )
    return bool(found)


def _fold_inline(
    db: Database,
    rules: FoldRules,
    shard: Shard,
    on_batch: Callable[[int], None] | None,
    workers: int,
    args: dict[str, Any],
) -> ShardResult:
    done = [0]

    def advance(events: int) -> None:
        done[0] += events
        if on_batch is not None and done[0] >= workers:
            on_batch(done[0] // workers)
            done[0] %= workers

    return fold_shard(db, portable(rules), shard, on_batch=advance, **args)


def portable(rules: FoldRules) -> FoldRules:
    """The rules without the reference book a previous fold left in them (it holds that
    fold's connection), so a worker starts as a fresh fold and a process can receive it."""
    out = copy.copy(rules)
    out.finance = copy.copy(rules.finance)
    out.finance.book = EmptyBook()
    return out


# -- processes ----------------------------------------------------------------------------

_progress: Any = None


def _init_worker(counters: Any) -> None:
    global _progress
    _progress = counters


def _run_worker(url: str, rules: FoldRules, shard: Shard, args: dict[str, Any]) -> ShardResult:
    """A worker process: its own engine, its own tables, its share of the messages."""
    db = Database.from_url(url)
    counter = _progress[shard.index]

    def advance(events: int) -> None:
        with counter.get_lock():
            counter.value += events

    try:
        return fold_shard(db, rules, shard, on_batch=advance, **args)
    finally:
        db.dispose()


class _Pool:
    """``count`` worker processes, spawned at once (nothing of this process's connections
    is inherited) and kept for every round; each has a shared counter of events folded,
    which the coordinator reads for progress."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.counters = [context.Value("q", 0) for _ in range(count)]
        self.executor = ProcessPoolExecutor(
            count, mp_context=context, initializer=_init_worker, initargs=(self.counters,)
        )
        # One task each spawns every process now, not at the first shard.
        for _ in range(count):
            self.executor.submit(_ready)

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _ready() -> None:
    """Nothing: a spawned worker has imported the fold by the time it runs this."""


def _fold_in_processes(
    db: Database,
    rules: FoldRules,
    shards: list[Shard],
    on_batch: Callable[[int], None] | None,
    args: dict[str, Any],
    pool: _Pool | None,
    *,
    count: int,
    waiting: Waiting | None = None,
) -> list[ShardResult]:
    """Each shard in a process of ``pool``; progress is read from the shared counters
    while they run. ``waiting``: the shards of the round that workers on other machines
    fold, watched at the same pace, their progress on the same bar (``count``: every
    shard of the round)."""
    url = db.engine.url.render_as_string(hide_password=False)
    fresh = portable(rules)
    reported = 0
    remote: list[ShardResult] | None = None if waiting is not None else []
    futures = []
    if shards:
        assert pool is not None
        for counter in pool.counters:
            counter.value = 0
        futures = [pool.executor.submit(_run_worker, url, fresh, s, args) for s in shards]
    counters = pool.counters if pool is not None else []
    pending = set(futures)
    try:
        while pending or remote is None:
            if pending:
                _done, pending = wait(pending, timeout=POLL, return_when=FIRST_EXCEPTION)
            else:
                _done = set()
                time.sleep(POLL)
            for future in _done:
                if future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
            remote_events = 0
            if waiting is not None:
                remote_events, remote = waiting.poll()
            if on_batch is not None:
                total = (sum(c.value for c in counters) + remote_events) // count
                if total > reported:
                    on_batch(total - reported)
                    reported = total
    finally:
        for other in pending:
            other.cancel()
    return [f.result() for f in futures] + remote


def _wait_for(waiting: Waiting) -> list[ShardResult]:
    """The remote shards' results, once all are in (for the inline fold of the tests)."""
    while True:
        _events, done = waiting.poll()
        if done is not None:
            return done
        time.sleep(POLL)
