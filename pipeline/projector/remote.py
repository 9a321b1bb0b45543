"""A worker of a parallel fold on another machine: ``smsrecon replay-worker --shard K/N``.

It waits for the coordinator's round on the board (``pipeline.projector.board``), claims
its shard there (of two workers started for one shard, the second is refused), folds it
with ``fold_shard`` exactly as the coordinator's own worker processes do, with its progress
and a heartbeat on the board, and leaves its ``ShardResult`` there. When the round needs
another (events that fail to fold, skipped everywhere next time), it claims again; it ends
when the coordinator agrees, or gives up on the parallel fold.

It folds with its own configuration's rules, refused unless their digest is the one the
coordinator published: every machine must fold with the same rules for the result to be
one fold's. What to fold (position, batch size, grace, skipped events) is the round's.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from pipeline.db.engine import Database
from pipeline.projector.board import (
    AGREED,
    SERIAL,
    Heartbeat,
    PublishedRound,
    RunEnded,
    Slot,
    claim,
    latest_round,
    rules_digest,
    worker_name,
)
from pipeline.projector.derive import FoldRules
from pipeline.projector.parallel import POLL, portable
from pipeline.projector.shard import Shard, ShardResult, fold_shard

__all__ = [
    "ENDED",
    "NoRound",
    "RunEnded",
    "ShardFoldFailed",
    "ShardTaken",
    "WorkerRefused",
    "serve_shard",
]

log = logging.getLogger(__name__)

#: The run ended (the board dropped) after this worker delivered its last result.
ENDED = "ended"


class WorkerRefused(Exception):
    """This worker cannot serve this run: another shard count, a shard the coordinator
    folds itself, other fold rules, or a database other machines cannot share."""


class ShardTaken(Exception):
    """Another worker claimed this shard of the round first."""


class NoRound(Exception):
    """No live coordinator offered a round within the timeout."""


class ShardFoldFailed(Exception):
    """The fold of this shard failed (the error is on the board for the coordinator)."""


def serve_shard(
    db: Database,
    rules: FoldRules,
    index: int,
    count: int,
    *,
    timeout: float,
    say: Callable[[str], None] = lambda _line: None,
    on_batch: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Fold shard ``index`` of ``count`` for every round of one run; how the run's last
    round ended: ``AGREED``, ``SERIAL`` (the coordinator folds in one process), or
    ``ENDED`` (the run was over before this worker looked again; the coordinator's output
    has the verdict). A worker's part is done once its result is on the board.

    ``timeout``: seconds to wait for a round, and for a sign of the coordinator (its
    heartbeat, a new round, an outcome) while it decides."""
    where = f"shard {index}/{count}"
    if not db.backend.networked:
        raise WorkerRefused(
            "replay-worker needs PostgreSQL: a SQLite file has one machine and one writer "
            "(there, `--workers N` alone runs every worker)"
        )
    digest = rules_digest(rules)
    name = worker_name()
    token: str | None = None
    done = 0
    seen: object = None
    since = clock()
    #: The first heartbeat seen of a run not joined yet: it is joined once the beat moves,
    #: so a board that a crashed coordinator left behind is never taken for a live run.
    first: tuple[str, int] | None = None
    while True:
        current = latest_round(db)
        if token is not None and (current is None or current.token != token):
            return ENDED  # after this worker's result: the coordinator has it
        live = token is not None
        if current is not None and token is None:
            if first is None or first[0] != current.token:
                first = (current.token, current.beats)
            live = current.beats != first[1]
        if current is not None and current.round > done and live:
            _refuse(current, index, count, digest)
            got = claim(db, current.token, current.round, index, name)
            if not got.won:
                raise ShardTaken(f"{where} of round {current.round} is already claimed by "
                                 f"{got.holder}; nothing done")  # fmt: skip
            token = current.token
            say(f"{where}: round {current.round} claimed, folding up to position "
                f"{current.spec.upto}")  # fmt: skip
            slot = Slot(db, current.token, current.round, index, name)
            result = _fold(db, rules, slot, current, index, on_batch)
            done = current.round
            say(f"{where}: round {done} folded ({slot.progress} events, "
                f"{len(result.failed)} failed)")  # fmt: skip
            seen, since = None, clock()
            continue
        if current is not None and current.round == done and current.outcome in (AGREED, SERIAL):
            return current.outcome
        signature = None if current is None else (current.round, current.beats, current.outcome)
        if signature != seen:
            seen, since = signature, clock()
        elif clock() - since > timeout:
            if token is None:
                raise NoRound(f"{where}: no live coordinator offered a round within "
                              f"{timeout:g}s (`smsrecon replay --verify --workers {count} "
                              "--local-workers M`, or `report verify` likewise)")  # fmt: skip
            raise RunEnded(f"{where}: the coordinator was not heard from for {timeout:g}s "
                           f"after round {done}")  # fmt: skip
        time.sleep(POLL)


def _refuse(current: PublishedRound, index: int, count: int, digest: str) -> None:
    where = f"shard {index}/{count}"
    if current.shards != count:
        raise WorkerRefused(f"{where}: the coordinator folds {current.shards} shards, not "
                            f"{count} (start --shard K/{current.shards})")  # fmt: skip
    if not current.local <= index < count:
        raise WorkerRefused(f"{where}: the coordinator folds shards 0..{current.local - 1} "
                            f"itself; start workers for shards {current.local}.."
                            f"{count - 1}")  # fmt: skip
    if current.rules_digest != digest:
        raise WorkerRefused(
            f"{where}: this machine's fold rules (billing, carriers, finance, "
            f"projector.stale_after) differ from the coordinator's (digest {digest[:12]}, "
            f"coordinator {current.rules_digest[:12]}); use the same configuration"
        )


def _fold(
    db: Database,
    rules: FoldRules,
    slot: Slot,
    current: PublishedRound,
    index: int,
    on_batch: Callable[[int], None] | None,
) -> ShardResult:
    """The shard folded under a heartbeat; its result, or its error, on the board."""
    spec = current.spec
    shard = Shard(index, current.shards, forced=dict(spec.forced))

    def advance(events: int) -> None:
        slot.progress += events
        if on_batch is not None:
            on_batch(events)

    heartbeat = Heartbeat(slot.beat).start()
    try:
        result = fold_shard(db, portable(rules), shard, grace_seconds=spec.grace_seconds,
                            batch_size=spec.batch_size, upto=spec.upto, on_batch=advance,
                            guard=slot.guard)  # fmt: skip
    except RunEnded:
        raise
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):  # the coordinator fails now, not at its timeout
            slot.fail("the worker was interrupted")
        raise
    except Exception as exc:
        if not slot.alive():
            raise RunEnded(f"shard {index}/{current.shards}: the coordinator ended the run "
                           "while this worker folded") from exc  # fmt: skip
        log.exception("shard %d/%d, round %d failed", index, current.shards, current.round)
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        try:
            slot.fail(error)
        except Exception:  # the board may be gone; the coordinator times out then
            log.warning("could not report the error to the coordinator", exc_info=True)
        raise ShardFoldFailed(f"shard {index}/{current.shards}, round {current.round}: "
                              f"{error}") from exc  # fmt: skip
    finally:
        heartbeat.stop()
    slot.finish(result)
    return result
