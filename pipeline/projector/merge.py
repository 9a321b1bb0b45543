"""Merge the workers' tables of a parallel fold into one shadow set, as one fold makes it.

Each row has one owner: a message's state, held timers and mismatches are its worker's; a
correlation is the first claim (``shard.claims``), stored by the claimant's worker; an
invoice line is the worker's whose message (or unclaimed carrier id) it bills. Reference
tables (FX rates, invoice headers, price tables), the checkpoint and the mismatches that are
about no message (an invoice's total, an unreadable reference event) every worker folds
alike: they are taken once and the others must agree, else the merge fails loudly
(``MergeError``) rather than make up a result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Table, and_, insert, select

from pipeline.db.engine import Database
from pipeline.projector.shard import claims, load_claims, pair_key, shard_of
from pipeline.projector.store import ProjectionTables

PAGE = 2000
#: A mismatch row's identity across a rebuild (its id is not).
MISMATCH_KEY = ("subject", "kind", "origin", "first_position")


class MergeError(RuntimeError):
    """The workers disagree on a row they should all have made alike."""


def merge(db: Database, stages: list[ProjectionTables], shadow: ProjectionTables) -> None:
    """Fill ``shadow`` (created afresh) from the workers' ``stages``, in one transaction."""
    with db.write() as conn:
        for table in shadow.all():
            table.drop(conn, checkfirst=True)
            table.create(conn)
        for stage in stages:
            _copy(conn, stage.state, shadow.state)
            _copy(conn, stage.held, shadow.held)
            first = and_(
                stage.correlations.c.carrier == claims.c.carrier,
                stage.correlations.c.carrier_message_id == claims.c.carrier_message_id,
                stage.correlations.c.position == claims.c.position,
            )
            _copy(conn, stage.correlations, shadow.correlations, join=(claims, first))
        for name in ("checkpoints", "invoices", "fx_rates", "price_tables"):
            _same_everywhere(conn, [getattr(s, name) for s in stages])
            _copy(conn, getattr(stages[0], name), getattr(shadow, name))
        _merge_mismatches(conn, stages, shadow)
        _merge_lines(conn, stages, shadow)


def _copy(conn: Connection, source: Table, target: Table, join: Any = None) -> None:
    names = [c.name for c in target.c]
    query = select(*[source.c[n] for n in names])
    if join is not None:
        query = query.join(*join)
    conn.execute(insert(target).from_select(names, query))


def _rows(conn: Connection, table: Table) -> list[tuple[Any, ...]]:
    order = [c for c in table.primary_key.columns]
    return [tuple(r) for r in conn.execute(select(table).order_by(*order))]


def _same_everywhere(conn: Connection, tables: list[Table]) -> None:
    """Tables every worker folds alike (small: reference data, one checkpoint row)."""
    first = _rows(conn, tables[0])
    if tables[0].name.startswith("projector_checkpoints"):
        first = [r[:3] for r in first]  # name, position, clock; not when it was stored
    for other in tables[1:]:
        rows = _rows(conn, other)
        if other.name.startswith("projector_checkpoints"):
            rows = [r[:3] for r in rows]
        if rows != first:
            raise MergeError(f"workers disagree on {tables[0].name} and {other.name}")


def _merge_mismatches(
    conn: Connection, stages: list[ProjectionTables], shadow: ProjectionTables
) -> None:
    """A message's rows are its worker's alone; a row about no message (an invoice's total,
    a reference event that failed) every worker has, and all must agree on it. Inserted in
    the order they opened (position, then worker), so ids keep that order."""
    names = [c.name for c in shadow.mismatches.c if c.name != "id"]
    kept: dict[tuple[Any, ...], tuple[int, list[dict[str, Any]]]] = {}
    for index, stage in enumerate(stages):
        mine: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        table = stage.mismatches
        for row in conn.execute(select(table).order_by(table.c.id)):
            values = {n: getattr(row, n) for n in names}
            key = tuple(values[k] for k in MISMATCH_KEY)
            mine.setdefault(key, []).append({**values, "id": row.id})
        for key, rows in mine.items():
            known = kept.get(key)
            if known is None:
                kept[key] = (index, rows)
            elif [_bare(r) for r in known[1]] != [_bare(r) for r in rows]:
                raise MergeError(f"workers disagree on mismatch {'/'.join(map(str, key))}")
    ordered = sorted(
        ((row["first_position"] or 0, index, row["id"], row) for index, rows in kept.values()
         for row in rows),
        key=lambda item: item[:3],
    )  # fmt: skip
    batch = [_bare(item[3]) for item in ordered]
    for start in range(0, len(batch), PAGE):
        conn.execute(insert(shadow.mismatches), batch[start : start + PAGE])


def _bare(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "id"}


def _merge_lines(
    conn: Connection, stages: list[ProjectionTables], shadow: ProjectionTables
) -> None:
    """Every worker stores every invoice line (a header adds them all); each line is kept
    from the worker that owns the message it bills, or its unclaimed carrier id."""
    count = len(stages)
    names = [c.name for c in shadow.invoice_lines.c]
    for index, stage in enumerate(stages):
        for page in _pages(conn, stage.invoice_lines):
            pairs = {(r.carrier, r.carrier_message_id) for r in page if r.message_id is None}
            found = load_claims(conn, pairs) if pairs else {}
            mine = []
            for r in page:
                key = r.message_id
                if key is None:
                    claim = found.get((r.carrier, r.carrier_message_id))
                    key = claim[0] if claim else pair_key(r.carrier, r.carrier_message_id)
                if shard_of(key, count) == index:
                    mine.append({n: getattr(r, n) for n in names})
            if mine:
                conn.execute(insert(shadow.invoice_lines), mine)


def _pages(conn: Connection, table: Table) -> Iterator[list[Any]]:
    """Rows in primary-key order, a page at a time (keyset pagination keeps memory flat)."""
    from sqlalchemy import tuple_

    cols = list(table.primary_key.columns)
    last: tuple[Any, ...] | None = None
    while True:
        query = select(table).order_by(*cols).limit(PAGE)
        if last is not None:
            query = query.where(tuple_(*cols) > tuple_(*last))
        rows = conn.execute(query).all()
        if not rows:
            return
        yield rows
        last = tuple(getattr(rows[-1], c.name) for c in cols)
