"""Replay: fold the whole log from scratch into shadow tables, then compare or swap.

Both run under the projector lock, so the live projection stands still meanwhile. Folding
goes batch by batch into ``*__replay`` tables (each batch its own transaction, so memory
and transaction size stay bounded however long the log is), using the very same
``project_batch`` as the live projector.

* verify: folds up to the live checkpoint and compares row by row, streaming both sides in
  message-id order; every difference is reported.
* rebuild: folds up to the head of the log, then in ONE transaction replaces the live rows
  (mismatches of origin 'projector' only; the dispatcher's stay) and the checkpoint. Readers
  see the old read model or the new one, never a mixture. Failure policy: a crash before
  the swap leaves the live tables untouched (the shadow is dropped next time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from pipeline.db.engine import Database
from pipeline.eventlog.model import utc_now
from pipeline.mismatches import replace_rebuilt
from pipeline.mismatches.kinds import PROJECTOR_ORIGINS
from pipeline.projector.board import Remote
from pipeline.projector.derive import FoldRules
from pipeline.projector.runner import catch_up, head_position
from pipeline.projector.store import (
    CHECKPOINT,
    LIVE,
    ProjectionTables,
    read_checkpoint,
    shadow_tables,
)

PAGE = 2000
MISMATCH_KEY = ("subject", "kind", "first_position")
#: Compared on every row; an acknowledged row only on what a person's act fixes (see docs).
MISMATCH_FIELDS = ("message_id", "origin", "status", "detail", "opened_at", "resolved_at",
                   "last_position", "note", "amount_at_stake", "amount_currency",
                   "invoice_id")  # fmt: skip
ACK_FIELDS = ("message_id", "origin", "status", "opened_at", "note")


@dataclass(frozen=True)
class Difference:
    table: str
    key: str
    field: str
    live: Any
    replayed: Any

    def line(self) -> str:
        return (
            f"{self.table} {self.key}: {self.field}: live {self.live!r}, replay {self.replayed!r}"
        )


def _drop_shadow(db: Database, shadow: ProjectionTables) -> None:
    with db.write() as conn:
        for table in shadow.all():
            table.drop(conn, checkfirst=True)


def fold_into_shadow(
    db: Database,
    rules: FoldRules,
    *,
    grace_seconds: float,
    batch_size: int,
    upto: int,
    on_batch: Callable[[int], None] | None = None,
    workers: int = 1,
    remote: Remote | None = None,
) -> ProjectionTables:
    """Fold the log up to ``upto`` from scratch into the shadow tables; with ``workers``
    above 1, in that many processes (``pipeline.projector.parallel``), to the same rows;
    with ``remote``, some of them on other machines (``pipeline.projector.board``)."""
    if workers > 1 or remote is not None:
        from pipeline.projector import parallel

        return parallel.fold_into_shadow(
            db, rules, grace_seconds=grace_seconds, batch_size=batch_size, upto=upto,
            workers=workers, on_batch=on_batch, remote=remote,
        )  # fmt: skip
    shadow = shadow_tables()
    _drop_shadow(db, shadow)
    with db.write() as conn:
        for table in shadow.all():
            table.create(conn)
    catch_up(
        db,
        rules,
        grace_seconds=grace_seconds,
        batch_size=batch_size,
        tables=shadow,
        upto=upto,
        on_batch=on_batch,
    )
    return shadow


def live_checkpoint(db: Database) -> int:
    with db.write() as conn:
        return read_checkpoint(conn, LIVE)[0]


# -- verify -------------------------------------------------------------------------------


def _pages(conn: Connection, table: Table, order: list[str], where: Any = None) -> Iterator[Any]:
    """Rows in key order, a page at a time (keyset pagination keeps memory flat)."""
    cols = [table.c[c] for c in order]
    last: tuple[Any, ...] | None = None
    while True:
        stmt = select(table)
        if where is not None:
            stmt = stmt.where(where)
        if last is not None:
            from sqlalchemy import tuple_

            stmt = stmt.where(tuple_(*cols) > tuple_(*last))
        rows = conn.execute(stmt.order_by(*cols).limit(PAGE)).all()
        if not rows:
            return
        yield from rows
        last = tuple(getattr(rows[-1], c) for c in order)


def _merge(left: Iterator[Any], right: Iterator[Any], key: Callable[[Any], Any]) -> Iterator[Any]:
    """Pairs (live row or None, replayed row or None) in key order."""
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and key(a) < key(b)):
            yield a, None
            a = next(left, None)
        elif a is None or key(b) < key(a):
            yield None, b
            b = next(right, None)
        else:
            yield a, b
            a, b = next(left, None), next(right, None)


def diff_states(conn: Connection, shadow: ProjectionTables) -> Iterator[Difference]:
    live, replayed = LIVE.state, shadow.state
    fields = [c.name for c in live.c if c.name != "message_id"]
    pairs = _merge(
        _pages(conn, live, ["message_id"]),
        _pages(conn, replayed, ["message_id"]),
        key=lambda r: r.message_id,
    )
    for a, b in pairs:
        if a is None or b is None:
            row = a or b
            side = "missing in live" if a is None else "missing in replay"
            yield Difference("message_state", row.message_id, "row", side, None)
            continue
        for name in fields:
            if getattr(a, name) != getattr(b, name):
                yield Difference(
                    "message_state", a.message_id, name, getattr(a, name), getattr(b, name)
                )


def diff_mismatches(conn: Connection, shadow: ProjectionTables) -> Iterator[Difference]:
    live, replayed = LIVE.mismatches, shadow.mismatches

    def key(row: Any) -> tuple[str, str, str, int]:
        return (row.subject, row.kind, row.origin, row.first_position or 0)

    # Few rows compared to messages: sort in memory by the rebuild-stable key.
    with_origin = live.c.origin.in_(PROJECTOR_ORIGINS)
    a_rows = sorted(conn.execute(select(live).where(with_origin)).all(), key=key)
    b_rows = sorted(conn.execute(select(replayed)).all(), key=key)
    for a, b in _merge(iter(a_rows), iter(b_rows), key=key):
        if a is None or b is None:
            row = a or b
            side = "missing in live" if a is None else "missing in replay"
            yield Difference("mismatches", "/".join(map(str, key(row))), "row", side, None)
            continue
        fields = ACK_FIELDS if "acknowledged" in (a.status, b.status) else MISMATCH_FIELDS
        for name in fields:
            if getattr(a, name) != getattr(b, name):
                k = "/".join(map(str, key(a)))
                yield Difference("mismatches", k, name, getattr(a, name), getattr(b, name))


#: The reference projections, compared and swapped whole by their primary keys.
KEYED = ("invoices", "invoice_lines", "fx_rates", "price_tables")


def diff_keyed(conn: Connection, shadow: ProjectionTables) -> Iterator[Difference]:
    """Every row of the invoice, FX and price-table projections, paired by primary key."""
    for name in KEYED:
        live, replayed = getattr(LIVE, name), getattr(shadow, name)
        order = [c.name for c in live.primary_key.columns]
        fields = [c.name for c in live.c if c.name not in order]

        def key(row: Any, order: list[str] = order) -> tuple[Any, ...]:
            return tuple(getattr(row, c) for c in order)

        pairs = _merge(_pages(conn, live, order), _pages(conn, replayed, order), key=key)
        for a, b in pairs:
            if a is None or b is None:
                row = a or b
                side = "missing in live" if a is None else "missing in replay"
                yield Difference(live.name, "/".join(map(str, key(row))), "row", side, None)
                continue
            for field in fields:
                if getattr(a, field) != getattr(b, field):
                    k = "/".join(map(str, key(a)))
                    yield Difference(live.name, k, field, getattr(a, field), getattr(b, field))


def verify(
    db: Database,
    rules: FoldRules,
    *,
    grace_seconds: float,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    report: Callable[[Difference], None] | None = None,
    workers: int = 1,
    remote: Remote | None = None,
) -> tuple[int, int]:
    """(events folded, differences); calls ``report`` for each difference."""
    upto = live_checkpoint(db)
    shadow = fold_into_shadow(
        db, rules, grace_seconds=grace_seconds, batch_size=batch_size, upto=upto,
        on_batch=on_batch, workers=workers, remote=remote,
    )  # fmt: skip
    count = 0
    try:
        with db.read() as conn:
            found = [
                *diff_states(conn, shadow),
                *diff_mismatches(conn, shadow),
                *diff_keyed(conn, shadow),
            ]
            for difference in found:
                count += 1
                if report is not None:
                    report(difference)
    finally:
        _drop_shadow(db, shadow)
    return upto, count


# -- rebuild ------------------------------------------------------------------------------


def rebuild(
    db: Database,
    rules: FoldRules,
    *,
    grace_seconds: float,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    workers: int = 1,
    remote: Remote | None = None,
) -> int:
    """Fold the log to its head into shadow tables and swap them in; returns the position."""
    upto = head_position(db)
    shadow = fold_into_shadow(
        db, rules, grace_seconds=grace_seconds, batch_size=batch_size, upto=upto,
        on_batch=on_batch, workers=workers, remote=remote,
    )  # fmt: skip
    try:
        with db.write() as conn:
            _swap(conn, shadow)
    finally:
        _drop_shadow(db, shadow)
    return upto


def _copy(conn: Connection, source: Table, target: Table, skip: tuple[str, ...] = ()) -> None:
    names = [c.name for c in target.c if c.name not in skip]
    query = select(*[source.c[n] for n in names])
    if "id" in source.c:
        query = query.order_by(source.c.id)
    conn.execute(insert(target).from_select(names, query))


def _swap(conn: Connection, shadow: ProjectionTables) -> None:
    conn.execute(delete(LIVE.state))
    _copy(conn, shadow.state, LIVE.state)
    replace_rebuilt(conn, shadow.mismatches, table=LIVE.mismatches)
    conn.execute(delete(LIVE.correlations))
    _copy(conn, shadow.correlations, LIVE.correlations)
    conn.execute(delete(LIVE.held))
    _copy(conn, shadow.held, LIVE.held)
    for name in KEYED:
        conn.execute(delete(getattr(LIVE, name)))
        _copy(conn, getattr(shadow, name), getattr(LIVE, name))
    cp = conn.execute(
        select(shadow.checkpoints).where(shadow.checkpoints.c.name == CHECKPOINT)
    ).first()
    read_checkpoint(conn, LIVE)
    live_cp = LIVE.checkpoints
    conn.execute(
        update(live_cp)
        .where(live_cp.c.name == CHECKPOINT)
        .values(
            position=cp.position if cp else 0,
            clock=cp.clock if cp else None,
            updated_at=cp.updated_at if cp else utc_now(),
        )
    )
