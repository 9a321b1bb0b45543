"""Where a parallel fold's coordinator and its workers on other machines meet: two tables.

A worker needs only the database (``pipeline.projector.shard``), so a worker of a parallel
fold can run on any machine that reaches the same PostgreSQL. The coordinator (``replay``
or ``report verify`` with ``--local-workers M`` below ``--workers N``) folds shards 0..M-1
itself and publishes each round here for ``smsrecon replay-worker --shard K/N``
(``pipeline.projector.remote``) to take shards M..N-1:

* ``projector_shard_rounds``: one row per round of the run (``token``): N, M, what to fold
  (position, batch size, grace, the events skipped everywhere), a digest of the fold rules,
  how the round ended (``outcome``), and the coordinator's heartbeat (``beats``);
* ``projector_shard_results``: one row per (round, remote shard): the worker that claimed
  it, its heartbeat and progress, then its ``ShardResult`` as JSON, or its error.

Like ``projector_claims__shard`` these are scratch tables: the coordinator makes them afresh
(a crashed run's are dropped) and drops them when the run ends, so no migration has them.
A heartbeat is a counter, not a time: the machines' clocks need not agree; each side judges
the other by its own clock, from when it last saw the counter move.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from pipeline.db.engine import Database
from pipeline.projector.derive import FoldRules
from pipeline.projector.shard import ShardResult

log = logging.getLogger(__name__)

#: Seconds between heartbeats, on both sides.
HEARTBEAT = 2.0
#: Seconds without a sign of the other side before giving up on it (``--worker-timeout``).
DEFAULT_TIMEOUT = 600.0

_metadata = MetaData()

rounds = Table(
    "projector_shard_rounds",
    _metadata,
    Column("token", String(32), nullable=False),
    Column("round", Integer(), nullable=False),
    Column("shards", Integer(), nullable=False),
    Column("local", Integer(), nullable=False),
    #: ``RoundSpec`` as JSON.
    Column("spec", Text(), nullable=False),
    Column("rules_digest", String(64), nullable=False),
    #: None while the round runs; then ``OUTCOMES``.
    Column("outcome", String(16), nullable=True),
    Column("beats", BigInteger(), nullable=False),
    PrimaryKeyConstraint("token", "round", name="pk_projector_shard_rounds"),
)

results = Table(
    "projector_shard_results",
    _metadata,
    Column("token", String(32), nullable=False),
    Column("round", Integer(), nullable=False),
    Column("shard", Integer(), nullable=False),
    #: ``host:pid`` of the worker that claimed the shard; None until one does.
    Column("worker", String(255), nullable=True),
    Column("beats", BigInteger(), nullable=False),
    #: Events folded so far (for the coordinator's progress bar).
    Column("progress", BigInteger(), nullable=False),
    #: The ``ShardResult`` as JSON, once the fold is done.
    Column("result", Text(), nullable=True),
    Column("error", Text(), nullable=True),
    PrimaryKeyConstraint("token", "round", "shard", name="pk_projector_shard_results"),
)

AGREED, AGAIN, SERIAL = "agreed", "again", "serial"
#: How a round ends: merged; run again with more events skipped; or given up for one process.
OUTCOMES = (AGREED, AGAIN, SERIAL)


class RemoteShardError(Exception):
    """A remote shard failed the run (its worker's error, or no word from it in time)."""


class RemoteShardFailed(RemoteShardError):
    """A remote worker reported an error."""


class RemoteShardTimeout(RemoteShardError):
    """No worker claimed a remote shard, or its worker went silent, for the timeout."""


@dataclass(frozen=True)
class Remote:
    """How a coordinator splits the shards: it folds ``local`` of them (0..local-1) and
    waits for workers on other machines for the rest, at most ``timeout`` seconds each
    without a sign of progress."""

    local: int
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class RoundSpec:
    """What every worker of a round folds, as the coordinator decided it."""

    upto: int
    batch_size: int
    grace_seconds: float
    #: Events skipped everywhere: position -> (error, whether a message event).
    forced: dict[int, tuple[str, bool]]

    def to_json(self) -> str:
        forced = [[p, e, m] for p, (e, m) in sorted(self.forced.items())]
        return json.dumps({"upto": self.upto, "batch_size": self.batch_size,
                           "grace_seconds": self.grace_seconds, "forced": forced})  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> RoundSpec:
        doc = json.loads(text)
        forced = {int(p): (str(e), bool(m)) for p, e, m in doc["forced"]}
        return cls(int(doc["upto"]), int(doc["batch_size"]), float(doc["grace_seconds"]), forced)


@dataclass(frozen=True)
class PublishedRound:
    """A round row as a worker reads it."""

    token: str
    round: int
    shards: int
    local: int
    spec: RoundSpec
    rules_digest: str
    outcome: str | None
    beats: int


# -- the rules every machine must share ---------------------------------------------------


def rules_digest(rules: FoldRules) -> str:
    """SHA-256 of the configuration the fold depends on (every field of ``FoldRules`` and
    of its ``FinanceRules`` a fold is configured with; not the memos, nor the reference
    book the log fills), so workers on other machines fold with the coordinator's rules."""

    def plain(value: Any) -> Any:
        if isinstance(value, Decimal | datetime):
            return str(value)
        if isinstance(value, set | frozenset):
            return sorted(value)
        raise TypeError(f"no canonical form for {type(value).__name__}")

    def configured(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
                if f.repr and not f.name.startswith("_") and f.name not in skip}  # fmt: skip

    doc = configured(rules, skip=("finance",))
    doc["tariffs"] = [dataclasses.asdict(t) for t in rules.tariffs]
    finance = configured(rules.finance, skip=("book", "carriers"))
    finance["carriers"] = {name: dataclasses.asdict(terms)
                           for name, terms in sorted(rules.finance.carriers.items())}  # fmt: skip
    doc["finance"] = finance
    text = json.dumps(doc, sort_keys=True, default=plain, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- results as JSON ----------------------------------------------------------------------


def result_to_json(result: ShardResult) -> str:
    failed = [[p, e, m] for p, (e, m) in sorted(result.failed.items())]
    clock = None if result.clock is None else result.clock.isoformat()
    return json.dumps({"index": result.index, "failed": failed, "untried": sorted(result.untried),
                       "unread": sorted(result.unread), "position": result.position,
                       "clock": clock})  # fmt: skip


def result_from_json(text: str) -> ShardResult:
    doc = json.loads(text)
    failed = {int(p): (str(e), bool(m)) for p, e, m in doc["failed"]}
    clock = None if doc["clock"] is None else datetime.fromisoformat(doc["clock"])
    return ShardResult(int(doc["index"]), failed, {int(p) for p in doc["untried"]},
                       {int(p) for p in doc["unread"]}, int(doc["position"]), clock)  # fmt: skip


def worker_name() -> str:
    """``host:pid``: which process on which machine claimed a shard."""
    return f"{socket.gethostname()}:{os.getpid()}"[:255]


# -- the coordinator's side ---------------------------------------------------------------


class Board:
    """The coordinator's rounds, from ``open`` to ``close`` (the tables' life)."""

    def __init__(self, db: Database, token: str, shards: int, remote: Remote, digest: str):
        self.db, self.token, self.shards, self.remote = db, token, shards, remote
        self.digest = digest
        self._heartbeat = Heartbeat(self._beat)

    @classmethod
    def open(cls, db: Database, rules: FoldRules, shards: int, remote: Remote) -> Board:
        """Fresh tables (a crashed run's dropped) and a heartbeat for the workers to see."""
        if not db.backend.networked:
            raise RemoteShardError(
                "workers on other machines need PostgreSQL (SQLite is one machine's file, "
                "with one writer): leave out --local-workers"
            )
        with db.write() as conn:
            for table in (results, rounds):
                table.drop(conn, checkfirst=True)
            for table in (rounds, results):
                table.create(conn)
        board = cls(db, uuid.uuid4().hex, shards, remote, rules_digest(rules))
        board._heartbeat.start()
        return board

    def publish(self, round_no: int, spec: RoundSpec) -> Waiting:
        """Offer the round's remote shards to the workers; what to watch until they report."""
        remote = range(self.remote.local, self.shards)
        with self.db.write() as conn:
            conn.execute(insert(rounds).values(
                token=self.token, round=round_no, shards=self.shards, local=self.remote.local,
                spec=spec.to_json(), rules_digest=self.digest, outcome=None, beats=0,
            ))  # fmt: skip
            conn.execute(insert(results), [
                {"token": self.token, "round": round_no, "shard": k, "worker": None,
                 "beats": 0, "progress": 0, "result": None, "error": None}
                for k in remote
            ])  # fmt: skip
        return Waiting(self.db, self.token, round_no, self.shards, remote, self.remote.timeout)

    def end_round(self, round_no: int, outcome: str) -> None:
        """Tell the workers how the round ended (``OUTCOMES``)."""
        with self.db.write() as conn:
            conn.execute(
                update(rounds)
                .where(rounds.c.token == self.token, rounds.c.round == round_no)
                .values(outcome=outcome)
            )

    def close(self) -> None:
        """Stop the heartbeat and drop the tables: a worker still waiting sees the run end."""
        self._heartbeat.stop()
        with self.db.write() as conn:
            for table in (results, rounds):
                table.drop(conn, checkfirst=True)

    def _beat(self) -> None:
        with self.db.write() as conn:
            conn.execute(update(rounds).where(rounds.c.token == self.token)
                         .values(beats=rounds.c.beats + 1))  # fmt: skip


class Waiting:
    """A round's remote shards as the coordinator watches them: their progress, their
    results, and a shard not heard from for ``timeout`` seconds (by this machine's clock,
    from when its row last changed: claimed, a heartbeat, progress)."""

    def __init__(self, db: Database, token: str, round_no: int, shards: int,
                 remote: Iterable[int], timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.db, self.token, self.round, self.shards = db, token, round_no, shards
        self.timeout, self.clock = timeout, clock
        started = clock()
        self._seen: dict[int, tuple[Any, float]] = {k: (None, started) for k in remote}

    def poll(self) -> tuple[int, list[ShardResult] | None]:
        """(events folded by the remote shards, their results once all are in). Raises
        ``RemoteShardFailed`` or ``RemoteShardTimeout``."""
        with self.db.read() as conn:
            mine = (results.c.token == self.token, results.c.round == self.round)
            rows = conn.execute(select(results).where(*mine)).all()
        now = self.clock()
        progress, done = 0, []
        for row in sorted(rows, key=lambda r: r.shard):
            where = f"shard {row.shard}/{self.shards}"
            if row.error is not None:
                raise RemoteShardFailed(f"{where} failed on {row.worker}: {row.error}")
            progress += row.progress
            if row.result is not None:
                done.append(result_from_json(row.result))
                continue
            signature = (row.worker, row.beats, row.progress)
            before, since = self._seen[row.shard]
            if signature != before:
                self._seen[row.shard] = (signature, now)
            elif now - since > self.timeout:
                raise RemoteShardTimeout(self._silence(row.shard, row.worker))
        return progress, (done if len(done) == len(self._seen) else None)

    def _silence(self, shard: int, worker: str | None) -> str:
        where = f"shard {shard}/{self.shards}"
        if worker is None:
            return (f"{where}: no worker claimed it within {self.timeout:g}s (run "
                    f"`smsrecon replay-worker --shard {shard}/{self.shards}` on a machine "
                    f"with this configuration and database)")  # fmt: skip
        return f"{where}: its worker {worker} was not heard from for {self.timeout:g}s"


# -- the worker's side --------------------------------------------------------------------


def latest_round(db: Database) -> PublishedRound | None:
    """The newest round on the board; None when no coordinator has published one."""
    try:
        with db.read() as conn:
            if not db.engine.dialect.has_table(conn, rounds.name):
                return None
            row = conn.execute(select(rounds).order_by(rounds.c.round.desc()).limit(1)).first()
    except DBAPIError:
        return None  # dropped between the look and the read: the run ended
    if row is None:
        return None
    return PublishedRound(row.token, row.round, row.shards, row.local,
                          RoundSpec.from_json(row.spec), row.rules_digest, row.outcome,
                          row.beats)  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """Whether the worker got the shard; else who holds it (None: no remote shard)."""

    won: bool
    holder: str | None = None


def claim(db: Database, token: str, round_no: int, shard: int, worker: str) -> Claim:
    """Take the shard of the round, atomically: of two workers, one wins."""
    mine = (results.c.token == token, results.c.round == round_no, results.c.shard == shard)
    with db.write() as conn:
        taken = conn.execute(
            update(results).where(*mine, results.c.worker.is_(None)).values(worker=worker)
        ).rowcount
        if taken == 1:
            return Claim(True)
        holder = conn.scalar(select(results.c.worker).where(*mine))
    return Claim(False, holder)


class Slot:
    """A claimed shard of a round, as its worker reports on it."""

    def __init__(self, db: Database, token: str, round_no: int, shard: int, worker: str):
        self.db, self.worker = db, worker
        self._mine = (results.c.token == token, results.c.round == round_no,
                      results.c.shard == shard, results.c.worker == worker)  # fmt: skip
        self.progress = 0

    def guard(self, conn: Connection) -> None:
        """Raise (rolling back the batch) unless the shard is still this worker's in a live
        run: the coordinator drops the board when it ends or gives up, and a new run makes
        it anew. The read holds the board in place until the batch commits."""
        try:
            found = conn.scalar(select(func.count()).select_from(results).where(*self._mine))
        except DBAPIError:
            found = 0
        if not found:
            raise RunEnded("the coordinator ended the run while this worker folded")

    def alive(self) -> bool:
        """Whether the shard is still this worker's in a live run."""
        try:
            with self.db.read() as conn:
                self.guard(conn)
        except RunEnded:
            return False
        return True

    def beat(self) -> None:
        with self.db.write() as conn:
            conn.execute(update(results).where(*self._mine)
                         .values(beats=results.c.beats + 1, progress=self.progress))  # fmt: skip

    def finish(self, result: ShardResult) -> None:
        with self.db.write() as conn:
            done = {"result": result_to_json(result), "progress": self.progress}
            conn.execute(update(results).where(*self._mine).values(**done))

    def fail(self, error: str) -> None:
        with self.db.write() as conn:
            conn.execute(update(results).where(*self._mine).values(error=error[:4000]))


class RunEnded(Exception):
    """The run this worker worked for is gone (its coordinator ended it, or died)."""


class Heartbeat:
    """Calls ``beat`` every ``HEARTBEAT`` seconds on a thread of its own, until stopped.

    A beat that fails is logged and the next one tried: the other side judges silence by
    its own timeout, so a missed beat costs nothing."""

    def __init__(self, beat: Callable[[], None], every: float = HEARTBEAT) -> None:
        self._beat, self._every = beat, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._beat()
            except Exception as exc:  # a heartbeat never ends the run
                log.debug("heartbeat failed: %s", exc)
