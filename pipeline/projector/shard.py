"""One worker's share of a parallel fold: which events it folds, and how it folds them.

A parallel fold (``pipeline.projector.parallel``) gives each of N workers the messages whose
key hashes to its index (``shard_of``, a stable hash: Python's ``hash`` differs per
process). Every worker reads every event of the log that can matter to it (``read``, see
``pipeline.projector.worker_read``), so every worker's event clock, timers and reference
data (FX rates, invoice headers, price tables) are the single fold's; it folds and writes
only its own messages. ``project_batch(..., shard=Shard(...))`` calls ``read`` and the
three hooks here:

* ``skips``, before the clock moves: an event found (by a previous round) to fail for its
  owner is skipped by the others without moving the clock, as the single fold skips it;
* ``takes``, for a message event: whether this worker folds it. Another worker's invoice
  line is still stored (an invoice header's line count and total add every line);
* ``owns_message``: a reference event re-derives only this worker's messages.

The key of an event is its ``message_id``; a report naming only the carrier's id belongs to
the message that claims that id first in the log (``claims``, filled before the workers
start from the ``carrier.submitted`` events), or, when none ever does, to the carrier id
itself (``carrier:<carrier>:<id>``, the subject of its ``unknown_message``). Every event of
a message, held or not, is therefore folded by one worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    func,
    insert,
    select,
    text,
)

from pipeline.db.backend import backend_of
from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.eventlog import StoredEvent
from pipeline.eventlog.model import UnreadableEvent
from pipeline.mismatches.kinds import KIND_UNREADABLE_EVENT
from pipeline.projector.derive import FoldRules
from pipeline.projector.fold import MESSAGE_EVENTS
from pipeline.projector.project import CLOCK_NEUTRAL_TYPES
from pipeline.projector.store import (
    IN_CHUNK,
    ProjectionTables,
    read_checkpoint,
    read_events,
    shadow_tables,
)
from pipeline.projector.unreadable import record_unreadable
from pipeline.projector.worker_read import read_rows, unused_payload

#: (carrier, carrier_message_id) -> the message that claims it first, and where.
claims = Table(
    "projector_claims__shard",
    MetaData(),
    Column("carrier", String(64), nullable=False),
    Column("carrier_message_id", String(128), nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("position", BigInteger(), nullable=False),
    PrimaryKeyConstraint("carrier", "carrier_message_id", name="pk_projector_claims__shard"),
)


def shard_of(key: str, count: int) -> int:
    """The worker (0..count-1) of a message or carrier-id key; the same in every process,
    and on the server (``Backend.shard_sql``): the first 32 bits of the key's MD5 (a
    spread, not a secret; Python's ``hash`` differs per process)."""
    digest = hashlib.md5(key.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return int.from_bytes(digest.digest()[:4], "big") % count


#: No batch reaches past this position (``read`` without an ``upto``).
_END = 2**63 - 1


def pair_key(carrier: str, carrier_message_id: str) -> str:
    return f"carrier:{carrier}:{carrier_message_id}"


def stage_tables(index: int) -> ProjectionTables:
    """Worker ``index``'s own projection tables, folded into before the merge."""
    return shadow_tables(f"__shard{index}")


def fill_claims(db: Database, upto: int, excluded: Iterable[int]) -> int:
    """Store the first claim of every carrier id up to ``upto``: the earliest
    ``carrier.submitted`` naming a message, as the single fold's correlation table has it.
    ``excluded``: submissions that fail (or cannot be read), which claim nothing."""
    skip = sorted(set(excluded))
    sub = events.alias("s")
    where = [
        sub.c.type == "carrier.submitted",
        sub.c.message_id.is_not(None),
        sub.c.carrier.is_not(None),
        sub.c.carrier_message_id.is_not(None),
        sub.c.carrier != "",
        sub.c.carrier_message_id != "",
        sub.c.position <= upto,
    ]
    if skip:
        where.append(sub.c.position.not_in(skip))
    first = (
        select(sub.c.carrier, sub.c.carrier_message_id, func.min(sub.c.position).label("first"))
        .where(*where)
        .group_by(sub.c.carrier, sub.c.carrier_message_id)
        .subquery()
    )
    query = select(events.c.carrier, events.c.carrier_message_id, events.c.message_id,
                   events.c.position).join(first, events.c.position == first.c.first)  # fmt: skip
    with db.write() as conn:
        claims.drop(conn, checkfirst=True)
        claims.create(conn)
        conn.execute(
            insert(claims).from_select(
                ["carrier", "carrier_message_id", "message_id", "position"], query
            )
        )
        # Statistics for the planner (same statement on both engines): without them a
        # freshly filled table may be scanned whole for every batch's look-up.
        conn.execute(text(f"ANALYZE {claims.name}"))
        return int(conn.scalar(select(func.count()).select_from(claims)) or 0)


def drop_claims(db: Database) -> None:
    with db.write() as conn:
        claims.drop(conn, checkfirst=True)


def load_claims(
    conn: Connection, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, int]]:
    """(message_id, position) of the first claim of each of these carrier ids."""
    grouped: dict[str, set[str]] = {}
    for carrier, cmid in pairs:
        grouped.setdefault(carrier, set()).add(cmid)
    out: dict[tuple[str, str], tuple[str, int]] = {}
    for carrier in sorted(grouped):
        ids = sorted(grouped[carrier])
        for start in range(0, len(ids), IN_CHUNK):
            cond = and_(
                claims.c.carrier == carrier,
                claims.c.carrier_message_id.in_(ids[start : start + IN_CHUNK]),
            )
            rows = conn.execute(
                select(claims.c.carrier_message_id, claims.c.message_id, claims.c.position)
                .where(cond)
            )  # fmt: skip
            for cmid, message_id, position in rows:
                out[(carrier, cmid)] = (message_id, position)
    return out


@dataclass
class Shard:
    """Worker ``index`` of ``count``: the hooks ``project_batch`` calls (see the module).

    ``forced``: events a previous round found to fail, position -> (error, whether a
    message event). Its owner folds a message event again (and fails it again, or the
    round disagrees); the others skip it, and every worker skips a failed reference event,
    recording its ``unreadable_event`` as the single fold does.
    """

    index: int
    count: int
    forced: dict[int, tuple[str, bool]] = field(default_factory=dict)
    #: Positions this worker skipped without folding them (forced, or naming no message).
    untried: set[int] = field(default_factory=set)
    #: Positions the log reader could not decode (every worker records those alike).
    unread: set[int] = field(default_factory=set)
    #: Carrier id -> (the message that claims it first, where): the position only where
    #: an invoice line of the batch names it (``takes`` compares it); ``read`` gives no
    #: other.
    _claims: dict[tuple[str, str], tuple[str, int | None]] = field(default_factory=dict)
    #: Whether ``read`` may leave out the other workers' events that cannot move the
    #: clock (``pipeline.projector.worker_read``): only while every timer is set ahead.
    sparse: bool = False
    #: Events of the log the batches read so far held, left out or not (the progress).
    events_read: int = 0
    #: The carrier ids whose claim (or that none claims them) ``_claims`` knows.
    _looked_up: set[tuple[str, str]] = field(default_factory=set)
    #: The batch's answers of ``owns`` by position (asked up to three times an event).
    _owned: dict[int, bool] = field(default_factory=dict)

    def read(
        self,
        conn: Connection,
        *,
        after: int,
        limit: int,
        upto: int | None = None,
        clock: datetime | None = None,
    ) -> list[Any]:
        """The batch after ``after`` (not past ``upto``) as this worker folds it
        (``pipeline.projector.worker_read``): what ``store.read_events`` gives, with the
        claims of its carrier ids, without what cannot matter here. ``clock``: the one
        the checkpoint holds. A batch with a row this cannot decode is read again by
        ``store.read_events``, whose lenient reading finds it. ``events_read`` counts
        every event of the batch, left out or not."""
        self._claims, self._looked_up, self._owned = {}, set(), {}
        backend = backend_of(conn)
        try:
            rows: list[Any] | None = read_rows(
                conn, backend, claims=claims.name, index=self.index, count=self.count,
                after=after, limit=limit, upto=_END if upto is None else upto, clock=clock,
                forced=sorted(self.forced), sparse=self.sparse, neutral=CLOCK_NEUTRAL_TYPES,
            )  # fmt: skip
        except (*backend.driver_errors(conn), RecursionError):
            rows = None
        if rows is not None:
            try:
                out = self._decode(rows, backend.load_time, backend.validates_json)
                self.events_read += rows[0][-1] if rows and rows[0][-1] is not None else len(out)
                return out
            except (TypeError, ValueError, RecursionError):
                pass
        self._claims, self._looked_up, self._owned = {}, set(), {}
        out = read_events(conn, after=after, limit=limit)
        self.events_read += sum(1 for e in out if upto is None or e.position <= upto)
        return out

    def _decode(
        self, rows: Sequence[Any], time: Callable[[Any], datetime], lazy: bool
    ) -> list[Any]:
        loads, index, count = json.loads, self.index, self.count
        claims_, looked_up, owned = self._claims, self._looked_up, self._owned
        out = []
        for p, t, m, c, cm, o, r, s, d, k, claimant, claimed_at, owner, _total in rows:
            # The key and owner as ``key`` and ``owns`` find them, from the joined claim.
            if m is not None:
                key = m
            elif c and cm:
                looked_up.add((c, cm))
                if claimant is not None and (claimed_at is not None or (c, cm) not in claims_):
                    claims_[(c, cm)] = (claimant, claimed_at)
                key = claimant if claimant is not None else pair_key(c, cm)
            else:
                key = ""
            mine = True
            if t in MESSAGE_EVENTS:
                # The server's answer where it hashed the key (the same ``shard_of``).
                mine = owned[p] = shard_of(key, count) == index if owner is None else owner
            if mine or not lazy or t == "carrier.invoiced" or not unused_payload(d):
                payload = loads(d)
                if type(payload) is not dict:
                    raise ValueError("a payload that is not an object")
            else:
                payload = {}
            out.append(StoredEvent(p, t, m, c, cm, time(o), time(r), s, payload, k))
        return out

    def begin(self, conn: Connection, batch: Sequence[Any]) -> Shard:
        """Look up the claims of the batch's reports that name only a carrier id (those
        ``read`` did not bring)."""
        pairs = set()
        for e in batch:
            if type(e) is UnreadableEvent:
                self.unread.add(e.position)
            elif e.message_id is None and e.carrier and e.carrier_message_id:
                pairs.add((e.carrier, e.carrier_message_id))
        missing = pairs - self._looked_up
        if missing:
            self._claims.update(load_claims(conn, missing))
            self._looked_up |= missing
        return self

    def key(self, event: StoredEvent) -> str:
        if event.message_id is not None:
            return event.message_id
        if not (event.carrier and event.carrier_message_id):
            return ""  # names no message: it fails, for its owner
        claim = self._claims.get((event.carrier, event.carrier_message_id))
        return claim[0] if claim else pair_key(event.carrier, event.carrier_message_id)

    def owns(self, event: StoredEvent) -> bool:
        found = self._owned.get(event.position)
        if found is None:
            found = shard_of(self.key(event), self.count) == self.index
            self._owned[event.position] = found
        return found

    def owns_message(self, message_id: str) -> bool:
        return shard_of(message_id, self.count) == self.index

    def skips(self, work: Any, event: StoredEvent) -> bool:
        """Whether to skip the event here without moving the clock."""
        found = self.forced.get(event.position)
        message_event = event.type in MESSAGE_EVENTS
        if found is not None:
            if message_event and self.owns(event):
                return False  # the owner finds out again
            if not message_event:
                record_unreadable(work.conn, work.tables, event.position, found[0],
                                  now=work.clock, event=event)  # fmt: skip
            self.untried.add(event.position)
            return True
        if (
            message_event
            and event.message_id is None
            and not (event.carrier and event.carrier_message_id)
            and not self.owns(event)
        ):
            self.untried.add(event.position)  # fails for its owner whatever the state
            return True
        return False

    def takes(self, work: Any, event: StoredEvent) -> bool:
        """Whether this worker folds the message event; another's invoice line is stored
        (unclaimed unless claimed before it), since the invoice's header adds every line."""
        if self.owns(event):
            return True
        if event.type == "carrier.invoiced":
            from pipeline.projector.project import _record_line

            message_id = event.message_id
            if message_id is None:
                claim = self._claims.get((event.carrier, event.carrier_message_id))  # type: ignore[arg-type]
                if claim is not None and claim[1] < event.position:
                    message_id = claim[0]
            # A line its owner cannot fold: the next round skips it everywhere.
            with contextlib.suppress(ValueError):
                _record_line(work, event, message_id)
        return False


@dataclass(frozen=True)
class ShardResult:
    """What a worker tells the coordinator after its fold."""

    index: int
    #: Events it folded that failed: position -> (error, whether a message event).
    failed: dict[int, tuple[str, bool]]
    untried: set[int]
    unread: set[int]
    position: int
    clock: datetime | None


def fold_shard(
    db: Database,
    rules: FoldRules,
    shard: Shard,
    *,
    grace_seconds: float,
    batch_size: int,
    upto: int,
    on_batch: Callable[[int], None] | None = None,
    guard: Callable[[Connection], None] | None = None,
) -> ShardResult:
    """Fold the whole log up to ``upto`` into the worker's own tables (created afresh).

    ``guard`` runs at the end of every batch's transaction and raises to roll it back: a
    worker on another machine checks there that its run is still the coordinator's, so a
    worker left over from an abandoned run never writes into a later run's tables."""
    from pipeline.projector.project import project_batch
    from pipeline.projector.statistics import StatisticsSchedule

    tables = stage_tables(shard.index)
    create_tables(db, tables, guard)
    statistics = StatisticsSchedule(db, tables)
    # A timer set at the event clock plus no delay runs out at the very next event, so
    # without a delay every event matters (``pipeline.projector.worker_read``).
    shard.sparse = grace_seconds > 0 and rules.stale_after > 0
    applied = 0
    while True:
        read_before = shard.events_read
        with db.write() as conn:
            result = project_batch(conn, tables, rules, grace_seconds=grace_seconds,
                                   limit=batch_size, upto=upto, shard=shard)  # fmt: skip
            if guard is not None:
                guard(conn)
        if result.events == 0:
            break
        events = shard.events_read - read_before  # the batch's, left out or not
        applied += events
        statistics.applied(applied)
        if on_batch is not None:
            on_batch(events)
    with db.read() as conn:
        position, clock = read_checkpoint(conn, tables)
        mm = tables.mismatches
        rows = conn.execute(select(mm.c.detail).where(mm.c.kind == KIND_UNREADABLE_EVENT))
        failed = {}
        for (detail,) in rows:
            at = detail["position"]
            if at not in shard.untried and at not in shard.unread:
                failed[at] = (detail["error"], detail.get("type") in MESSAGE_EVENTS)
    return ShardResult(shard.index, failed, set(shard.untried), set(shard.unread),
                       position, clock)  # fmt: skip


def create_tables(
    db: Database, tables: ProjectionTables, guard: Callable[[Connection], None] | None = None
) -> None:
    """The worker's tables, made afresh in one transaction (after ``guard``, which holds
    the run in place until the tables are made)."""
    with db.write() as conn:
        if guard is not None:
            guard(conn)
        for table in tables.all():
            table.drop(conn, checkfirst=True)
        for table in tables.all():
            table.create(conn)


def drop_tables(db: Database, tables: ProjectionTables) -> None:
    with db.write() as conn:
        for table in tables.all():
            table.drop(conn, checkfirst=True)
