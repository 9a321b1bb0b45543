"""What one worker of a parallel fold reads of the log, and how little of it it decodes.

Every worker must see the log's clock as one fold sees it, so the plain way is for each to
read every event; that read is the part of a worker's work that does not shrink as workers
are added. Two things make it smaller, each equal to the plain read where it matters:

* **Claims in the read.** An event naming only a carrier id comes with the message that
  claims it first (a subquery on the claims table), instead of a look-up per batch.
* **Sparse read** (where the backend can hash a key as ``shard_of`` does,
  ``Backend.shard_sql``). Another worker's message event does one thing here: it may move
  the clock. While every pending timer's deadline lies after the clock (``grace`` and
  ``stale_after`` above zero: a timer is set at ``clock + delay``), an event that does not
  move the clock changes nothing in this worker, so the server leaves out the other
  workers' message events whose time is not after the clock the events before them set.
  That clock counts no event the fold skips (a failure the round found, one naming no
  message, one timed by our receipt, reference data), so it is never ahead of the fold's,
  and no event that moves the fold's clock is left out. A row that cannot be read is
  counted too, but only raises that clock if it is later than it, and then comes itself:
  decoding it fails, and the batch is read whole (``store.read_events``). Events that
  fail, name no message, bill an invoice line or are reference data always come, as does
  the batch's last event (the checkpoint moves to it).

A payload this worker does not use stays undecoded where the server keeps JSON valid
(``unused_payload``).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from pipeline.db.backend import Backend
from pipeline.eventlog.model import RECEIVED, TIME_SOURCE
from pipeline.projector.fold import MESSAGE_EVENTS

#: Brackets a payload may hold and still decode far within the decoder's recursion limit.
SHALLOW = 64
#: Message events another worker folds that may be left out: not an invoice line, which
#: every worker stores (an invoice header adds them all).
_LEAVABLE = sorted(MESSAGE_EVENTS - {"carrier.invoiced"})


def unused_payload(text: str) -> bool:
    """Whether another worker's message event can stay undecoded: all this worker reads of
    it is whether its time is our receive time (``moves_clock``), which is absent unless
    the text names ``time_source``. Only for a server that keeps its JSON valid
    (``Backend.validates_json``): a text opening with ``{``, without an escape (a key
    spelled with one), and shallow, is an object that decodes without ``time_source``
    (a property test decodes random payloads)."""
    return (
        text[:1] == "{"
        and TIME_SOURCE not in text
        and "\\" not in text
        and text.count("{") + text.count("[") <= SHALLOW
    )


def _quoted(names: frozenset[str] | list[str]) -> str:
    return ", ".join(f"'{name}'" for name in sorted(names))


def _claim(claims: str, column: str) -> str:
    return (
        f"(SELECT c.{column} FROM {claims} c "
        "WHERE c.carrier = e.carrier AND c.carrier_message_id = e.carrier_message_id)"
    )


def _columns(claims: str) -> str:
    """The event's columns, the payload as text, and its first claim when it names only a
    carrier id (where, only for an invoice line: ``Shard.takes`` compares it). Subqueries,
    not a join: the plan stays the event reader's whatever the planner knows."""
    return (
        "e.position, e.type, e.message_id, e.carrier, e.carrier_message_id, "
        "e.occurred_at, e.recorded_at, e.source, CAST(e.payload AS TEXT) AS payload, "
        "e.dedup_key, "
        f"CASE WHEN e.message_id IS NULL THEN {_claim(claims, 'message_id')} END AS claimant, "
        "CASE WHEN e.message_id IS NULL AND e.type = 'carrier.invoiced' "
        f"THEN {_claim(claims, 'position')} END AS claimed_at"
    )


@lru_cache(maxsize=8)
def dense_sql(claims: str) -> str:
    """Every event of the batch."""
    return (
        f"SELECT {_columns(claims)}, NULL AS mine, NULL AS total FROM events e "
        "WHERE e.position > :after AND e.position <= :upto ORDER BY e.position LIMIT :limit"
    )


@lru_cache(maxsize=8)
def sparse_sql(
    claims: str, shard: str, time_source: str, forced: tuple[int, ...], neutral: frozenset[str]
) -> str:
    """The batch without the other workers' message events that cannot move the clock
    (see the module). ``shard``: the backend's ``shard_of`` of the SQL ``{key}``;
    ``time_source``: its SQL for the payload's ``time_source`` as text; ``forced``: the
    events a round found to fail (a few); ``neutral``: the types that never move the
    clock."""
    names_carrier = "(e.carrier <> '' AND e.carrier_message_id <> '')"
    key = (
        "coalesce(message_id, claimant, CASE WHEN carrier <> '' AND carrier_message_id <> '' "
        "THEN 'carrier:' || carrier || ':' || carrier_message_id ELSE '' END)"
    )
    skipped = ", ".join(str(int(p)) for p in forced)
    return (
        f"WITH b AS (SELECT {_columns(claims)}, "
        f"e.type IN ({_quoted(_LEAVABLE)}) AND (e.message_id IS NOT NULL OR {names_carrier}) "
        "AS leavable, "
        # Moves the fold's clock, unless it cannot be read (see the module).
        f"e.type NOT IN ({_quoted(neutral)}) "
        f"AND NOT (e.type IN ({_quoted(MESSAGE_EVENTS)}) AND e.message_id IS NULL "
        f"AND NOT coalesce({names_carrier}, false)) "
        f"AND coalesce({time_source}, '') <> '{RECEIVED}' "
        f"{f'AND e.position NOT IN ({skipped}) ' if forced else ''}AS moves, "
        "CASE WHEN e.occurred_at < e.recorded_at THEN e.occurred_at ELSE e.recorded_at END "
        "AS t FROM events e WHERE e.position > :after AND e.position <= :upto "
        "ORDER BY e.position LIMIT :limit), "
        f"w AS (SELECT b.*, {shard.format(key=key)} = :shard_index AS mine, "
        "max(CASE WHEN moves THEN t END) OVER (ORDER BY position "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before, "
        "max(position) OVER () AS last, count(*) OVER () AS total FROM b) "
        "SELECT position, type, message_id, carrier, carrier_message_id, occurred_at, "
        "recorded_at, source, payload, dedup_key, claimant, claimed_at, mine, total FROM w "
        "WHERE NOT coalesce(leavable, false) OR mine OR position = last "
        f"{f'OR position IN ({skipped}) ' if forced else ''}"
        "OR (t > :clock AND (before IS NULL OR t > before)) "
        "ORDER BY position"
    )


def read_rows(
    conn: Connection,
    backend: Backend,
    *,
    claims: str,
    index: int,
    count: int,
    after: int,
    limit: int,
    upto: int,
    clock: datetime | None,
    forced: list[int],
    sparse: bool,
    neutral: frozenset[str],
) -> list[Any]:
    """The rows of one worker's batch (the columns of ``dense_sql``): sparse where the
    backend can hash keys and ``sparse`` allows it, else every event (also while the fold
    has no clock yet: its first event starts it, whatever the event)."""
    shard = backend.shard_sql("{key}", ":shard_count") if sparse and clock else None
    params: dict[str, Any] = {"after": after, "limit": limit, "upto": upto}
    if shard is None:
        sql = dense_sql(claims)
    else:
        time_source = backend.json_text_sql("e.payload", TIME_SOURCE)
        sql = sparse_sql(claims, shard, time_source, tuple(sorted(forced)), neutral)
        params.update(clock=backend.bind_time(clock), shard_index=index, shard_count=count)
    cursor = conn.connection.cursor()
    try:
        cursor.execute(backend.driver_sql(sql), params)
        return list(cursor.fetchall())
    finally:
        cursor.close()
