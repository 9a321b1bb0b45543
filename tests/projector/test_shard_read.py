"""A worker of a parallel fold reads the log as one fold does, with less decoding.

``Shard.read`` joins each batch's carrier ids to their first claim and leaves another
worker's message events undecoded where the server keeps JSON valid (``unused_payload``).
What the fold can read of every event must be what ``store.read_events`` gives.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append
from pipeline.eventlog.model import RECEIVED, TIME_SOURCE, UnreadableEvent
from pipeline.projector import store
from pipeline.projector.fold import MESSAGE_EVENTS
from pipeline.projector.project import moves_clock
from pipeline.projector.replay import _drop_shadow
from pipeline.projector.runner import head_position
from pipeline.projector.shard import (
    Shard,
    drop_claims,
    fill_claims,
    load_claims,
    shard_of,
)
from pipeline.projector.worker_read import unused_payload
from tests.finance.money_events import GRACE, rate
from tests.hostile.test_unreadable_events import NESTED_BOMB, _hostile_log, _insert_raw
from tests.projector.events import accepted, at, report, submitted
from tests.projector.shard_logs import random_log
from tests.projector.test_parallel import fold_both

KEYS = st.sampled_from([TIME_SOURCE, "time_sourc", "status", "a\\b", 'q"', "ü", "\x00", "t"])
SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.just(RECEIVED)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(KEYS | st.text(), inner, max_size=3)
    ),
    max_leaves=12,
)


#: Mostly objects keyed like payloads (``time_source`` among them), nested or not.
DOCUMENTS = st.dictionaries(KEYS, JSON, max_size=4) | JSON


@given(document=DOCUMENTS, ascii_only=st.booleans(), spaced=st.booleans(), escaped=st.booleans())
def test_an_unused_payload_is_an_object_without_a_time_source(
    document: Any, ascii_only: bool, spaced: bool, escaped: bool
) -> None:
    separators = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(document, ensure_ascii=ascii_only, separators=separators)
    if escaped:  # the same document, its underscores spelled as escapes (a key among them)
        text = text.replace("_", "\\u005f")
    if unused_payload(text):
        decoded = json.loads(text)
        assert type(decoded) is dict and TIME_SOURCE not in decoded
        assert moves_clock_of(decoded) == moves_clock_of({})


def moves_clock_of(payload: dict[str, Any]) -> bool:
    from pipeline.eventlog import StoredEvent
    from tests.projector.events import T0

    return moves_clock(StoredEvent(1, "carrier.status", "m", None, None, T0, T0, "t", payload, "k"))


def test_a_plain_report_is_left_undecoded_and_a_received_one_or_a_deep_one_is_not() -> None:
    assert unused_payload('{"format": "generic", "status": 1, "raw_status": "1"}')
    assert not unused_payload('{"status": 4, "time_source": "received"}')
    assert not unused_payload('{"status": 4, "time\\u005fsource": "received"}')
    assert not unused_payload("[1, 2]")
    assert not unused_payload(NESTED_BOMB)


def _log(db: Database, seed: int) -> None:
    rng = random.Random(seed)
    append(db, random_log(rng, "r", start=0.0))
    _hostile_log(db)
    _insert_raw(db, key="bad:nested", payload=NESTED_BOMB, carrier="mts", cmid="c1")
    if not db.is_postgres:  # PostgreSQL's jsonb refuses it
        _insert_raw(db, key="bad:text", payload="{not json", carrier="mts", cmid="c1")
    append(db, random_log(rng, "s", start=10.0))


def test_a_workers_read_gives_the_fold_what_one_fold_reads(db: Database) -> None:
    _log(db, seed=5)
    upto = head_position(db)
    fill_claims(db, upto, ())
    undecoded = 0
    try:
        # Batches of 7 mostly hold good rows only; one batch of all holds the bad ones too,
        # and is read again as one fold reads it.
        for batch_size in (7, 1000):
            for index in range(3):
                undecoded += _compare_reads(db, Shard(index, 3), batch_size, upto)
    finally:
        drop_claims(db)
    assert undecoded > 0 if db.is_postgres else undecoded == 0


def _compare_reads(db: Database, shard: Shard, batch_size: int, upto: int) -> int:
    """Read the log both ways; how many payloads the worker left undecoded."""
    after = 0
    undecoded = 0
    with db.read() as conn:
        while after < upto:
            plain = store.read_events(conn, after=after, limit=batch_size)
            got = shard.read(conn, after=after, limit=batch_size)
            shard.begin(conn, got)
            reference = Shard(shard.index, shard.count).begin(conn, plain)
            assert [e.position for e in got] == [e.position for e in plain]
            for mine, theirs in zip(got, plain, strict=True):
                assert type(mine) is type(theirs)
                if type(theirs) is UnreadableEvent:
                    assert mine == theirs
                    continue
                assert _head(mine) == _head(theirs)
                assert shard.owns(mine) == reference.owns(theirs)
                assert moves_clock(mine) == moves_clock(theirs)
                if mine.payload != theirs.payload:
                    # Only another worker's message event, and only where the server keeps
                    # JSON valid, goes undecoded.
                    assert db.is_postgres and theirs.type in MESSAGE_EVENTS
                    assert not reference.owns(theirs) and theirs.type != "carrier.invoiced"
                    undecoded += 1
            pairs = {(e.carrier, e.carrier_message_id) for e in plain
                     if type(e) is not UnreadableEvent and e.message_id is None
                     and e.carrier and e.carrier_message_id}  # fmt: skip
            claims = load_claims(conn, pairs)
            assert {p: shard._claims.get(p, (None,))[0] for p in pairs} == {
                p: claims.get(p, (None,))[0] for p in pairs
            }
            for e in plain:  # where an invoice line is claimed matters (``takes``)
                pair = (getattr(e, "carrier", None), getattr(e, "carrier_message_id", None))
                if e.type == "carrier.invoiced" and pair in pairs:
                    assert shard._claims.get(pair) == claims.get(pair)
            after = plain[-1].position
    return undecoded


def _head(e: Any) -> tuple[Any, ...]:
    return (e.type, e.message_id, e.carrier, e.carrier_message_id, e.occurred_at,
            e.recorded_at, e.source, e.dedup_key)  # fmt: skip


def test_a_parallel_fold_of_rows_no_reader_can_decode_equals_one_fold(db: Database) -> None:
    _log(db, seed=8)
    for workers, batch_size in ((2, 3), (3, 1000)):
        expected, got, many = fold_both(db, workers, batch_size)
        assert got == expected
        _drop_shadow(db, many)


def _owned_by(worker: int, prefix: str, count: int = 2) -> str:
    """The first key ``<prefix><n>`` that worker ``worker`` of ``count`` folds."""
    return next(f"{prefix}{n}" for n in range(1_000) if shard_of(f"{prefix}{n}", count) == worker)


def _raw_time(minute: float) -> str:
    return at(minute).strftime("%Y-%m-%d %H:%M:%S.%f")


def _trap(db: Database, kind: str, mid: str, cmid: str, minute: float) -> None:
    """An event of worker 1's message, late in time, that does not move the clock."""
    if kind == "received":
        append(db, [report(cmid, 4, minute, time_source=RECEIVED)])
    elif kind == "fails":
        append(db, [report(cmid, 4, minute, parts=20_000)])
    elif kind == "names no message":
        append(db, [report(None, 4, minute)])
    elif kind == "fx.rate":
        fx = rate("2026-01-15", "RUB", "EUR", "0.011")  # reference data, timed late
        append(
            db,
            [NewEvent(fx.type, at(minute), fx.source, fx.payload, dedup_key=f"fx:late:{minute}")],
        )
    else:
        payload = NESTED_BOMB if kind == "nested" else [1, 2]
        _insert_raw(db, key=f"trap:{kind}:{minute}:{mid}", payload=payload, message_id=mid,
                    occurred_at=_raw_time(minute))  # fmt: skip


TRAPS = ["received", "fails", "names no message", "fx.rate", "nested", "a list"]


@pytest.mark.parametrize("kind", TRAPS)
def test_a_sparse_read_keeps_every_event_that_moves_a_workers_clock(
    db: Database, kind: str
) -> None:
    """Worker 0's timers run out at worker 1's events; each phase puts before that event
    one that is later in time but moves no clock, which a sparse read must not count (one
    kind a log: a failure of one kind alone is found in the first round).

    A phase is 8 events, so in batches of 8 (and 16) the trap and the event after it
    share a batch, and neither is its last event (which always comes): the first phase
    only starts the clock (a batch without one keeps every event)."""
    phases = [None, kind, kind]
    for phase, trap in enumerate(phases):
        m = 100.0 * phase
        mid, ghost = _owned_by(1, f"b{phase}-"), _owned_by(0, f"carrier:mts:g{phase}-")
        cmid = f"{mid}-c"
        append(db, [accepted(mid, m + 1), submitted(mid, cmid, m + 1)])
        # Worker 0's: a report nobody claims, held until event time m + 2 + grace.
        append(db, [report(ghost.removeprefix("carrier:mts:"), 1, m + 2)])
        if trap is None:
            append(db, [report(cmid, 8, m + 1.05)])
        else:
            _trap(db, trap, mid, cmid, m + 2 + 2 * GRACE / 60)
        # Worker 1's report moves the clock past the deadline: the timer runs out here.
        append(db, [report(cmid, 1, m + 2 + 1.5 * GRACE / 60)])
        append(db, [report(cmid, 8, m + 1 + n / 10) for n in range(1, 4)])
    # Every worker sees the latest event, so the workers end on one clock: one that left
    # out an event it needed is not found out by the round (which compares end clocks).
    append(db, [accepted("z-last", 100.0 * len(phases) + 1)])
    assert head_position(db) == 8 * len(phases) + 1
    for batch_size in (3, 8, 16, 1000):
        expected, got, many = fold_both(db, 2, batch_size)
        assert got == expected
        _drop_shadow(db, many)


def test_a_sparse_read_leaves_out_what_cannot_matter_and_counts_it(db: Database) -> None:
    rng = random.Random(9)  # good rows only: one bad row would have the batch read whole
    append(db, random_log(rng, "r", start=0.0) + random_log(rng, "s", start=10.0))
    upto = head_position(db)
    fill_claims(db, upto, ())
    try:
        with db.read() as conn:
            plain = store.read_events(conn, after=0, limit=upto)
            dense = Shard(0, 2).begin(conn, plain)
            clock = at(10_000)  # after every event: none of another worker's can move it
            shard = Shard(0, 2, sparse=True)
            got = shard.read(conn, after=0, limit=upto, upto=upto, clock=clock)
    finally:
        drop_claims(db)
    assert shard.events_read == len(plain)
    kept = {e.position for e in got}
    left_out = [e for e in plain if e.position not in kept]
    assert bool(left_out) == db.is_postgres  # no server-side hash on SQLite: every event
    for event in left_out:
        assert type(event) is not UnreadableEvent and event.type in MESSAGE_EVENTS
        assert event.type != "carrier.invoiced" and not dense.owns(event)
        assert event.position not in shard.forced and event.position != plain[-1].position


KEY_SAMPLES = ["", "m-1", "carrier:mts:c1", "b123", "ü-ß-€", "日本語", "x" * 200, "a'b", "emoji-🙂"]


def test_the_server_assigns_every_key_to_the_worker_python_does(db: Database) -> None:
    from sqlalchemy import text

    from pipeline.db.backend import backend_of

    with db.read() as conn:
        backend = backend_of(conn)
        sql = backend.shard_sql(":key", ":count")
        if sql is None:  # this engine has no hash of its own: the worker hashes every key
            assert not db.is_postgres
            return
        for count in (2, 3, 7):
            for key in KEY_SAMPLES:
                got = conn.execute(text(f"SELECT {sql}"), {"key": key, "count": count}).scalar()
                assert got == shard_of(key, count), (key, count)
