"""Every backend method behaves the same on SQLite and PostgreSQL (the ``db`` fixture runs
each test on both)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, select

from pipeline.db.codec import row_codec
from pipeline.db.engine import Database
from pipeline.db.types import JSONDocument, Money, UTCDateTime
from pipeline.eventlog import NewEvent, append
from pipeline.eventlog.ordering import serialise_appends

meta = MetaData()
rows_table = Table(
    "contract_rows",
    meta,
    Column("key", String(32), primary_key=True),
    Column("amount", Money(), nullable=True),
    Column("at", UTCDateTime(), nullable=True),
    Column("doc", JSONDocument, nullable=True),
    Column("n", Integer(), nullable=True),
    Column("taken", Boolean(), nullable=False, default=False),
)

T0 = datetime(2026, 1, 15, 10, 5, 0, 123456, tzinfo=UTC)


@pytest.fixture
def scratch(db: Database) -> Iterator[Database]:
    meta.create_all(db.engine)
    yield db
    meta.drop_all(db.engine)


def _encoded(db: Database, **values: object) -> dict[str, object]:
    return row_codec(db.backend, rows_table).encode({"taken": False, **values})


def _stored(db: Database) -> dict[str, tuple[object, ...]]:
    with db.read() as conn:
        rows = conn.execute(select(rows_table).order_by(rows_table.c.key)).all()
    return {r.key: (r.amount, r.at, r.doc, r.n) for r in rows}


def test_the_codec_binds_what_the_column_types_read_back(scratch: Database) -> None:
    db = scratch
    doc = {"ünï": ["c", 1, None], "nested": {"x": "0.03330000"}}
    with db.write() as conn:
        db.backend.insert_new(
            conn,
            rows_table,
            [_encoded(db, key="a", amount=Decimal("0.03330000"), at=T0, doc=doc, n=1)],
            "key",
        )
    assert _stored(db) == {"a": (Decimal("0.03330000"), T0, doc, 1)}


def test_insert_new_skips_stored_keys_without_error(scratch: Database) -> None:
    db = scratch
    with db.write() as conn:
        db.backend.insert_new(conn, rows_table, [_encoded(db, key="a", n=1)], "key")
    with db.write() as conn:
        db.backend.insert_new(
            conn, rows_table, [_encoded(db, key="a", n=2), _encoded(db, key="b", n=3)], "key"
        )
    assert {k: v[3] for k, v in _stored(db).items()} == {"a": 1, "b": 3}


def test_upsert_inserts_new_rows_and_overwrites_every_other_column(scratch: Database) -> None:
    db = scratch
    later = T0 + timedelta(hours=1)
    with db.write() as conn:
        db.backend.upsert(
            conn, rows_table, [_encoded(db, key="a", amount=Decimal("1.5"), at=T0, n=1)], "key"
        )
    with db.write() as conn:
        db.backend.upsert(
            conn,
            rows_table,
            [
                _encoded(db, key="a", amount=Decimal("2"), at=later, doc={"v": 2}, n=2),
                _encoded(db, key="b", n=3),
            ],
            "key",
        )
    assert _stored(db) == {
        "a": (Decimal("2"), later, {"v": 2}, 2),
        "b": (None, None, None, 3),
    }


def test_update_many_updates_each_matching_row_and_counts_them(scratch: Database) -> None:
    db = scratch
    with db.write() as conn:
        db.backend.insert_new(
            conn, rows_table, [_encoded(db, key=k, n=0) for k in ("a", "b", "c")], "key"
        )
    with db.write() as conn:
        changed = db.backend.update_many(
            conn,
            "contract_rows",
            set_sql="n = :new_n, at = :at",
            where_sql="key = :row_key AND n = :old_n",
            rows=[
                {"row_key": "a", "new_n": 5, "old_n": 0},
                {"row_key": "b", "new_n": 6, "old_n": 9},  # no longer matches
                {"row_key": "zz", "new_n": 7, "old_n": 0},  # no such row
            ],
            array_types={"row_key": "text", "new_n": "int", "old_n": "int"},
            shared={"at": db.backend.bind_time(T0)},
        )
    assert changed == 1
    stored = _stored(db)
    assert (stored["a"][3], stored["a"][1]) == (5, T0)
    assert (stored["b"][3], stored["b"][1]) == (0, None)


def test_update_keys_updates_exactly_those_keys(scratch: Database) -> None:
    db = scratch
    with db.write() as conn:
        db.backend.insert_new(
            conn, rows_table, [_encoded(db, key=k, n=0) for k in ("a", "b", "c")], "key"
        )
        db.backend.update_keys(
            conn,
            "UPDATE contract_rows SET n = n + :step, at = :at",
            {"step": 2, "at": db.backend.bind_time(T0)},
            "key",
            ["a", "c"],
        )
    assert {k: (v[3], v[1]) for k, v in _stored(db).items()} == {
        "a": (2, T0),
        "b": (0, None),
        "c": (2, T0),
    }


def test_a_claim_never_gets_rows_another_claim_holds(scratch: Database) -> None:
    db = scratch
    with db.write() as conn:
        db.backend.insert_new(
            conn, rows_table, [_encoded(db, key=k, n=0) for k in ("a", "b")], "key"
        )
    due = select(rows_table.c.key).where(rows_table.c.taken.is_(False)).order_by("key")
    second: list[str] = []

    def claim_again() -> None:
        with db.write() as conn:
            second.extend(conn.scalars(db.backend.lock_for_claim(due, of=rows_table)))

    with db.write() as conn:
        first = list(conn.scalars(db.backend.lock_for_claim(due, of=rows_table)))
        conn.execute(rows_table.update().values(taken=True))
        other = threading.Thread(target=claim_again)
        other.start()  # PostgreSQL: skips the locked rows; SQLite: waits for this commit
    other.join()
    assert first == ["a", "b"]
    assert second == []


def test_appends_are_serialised(scratch: Database) -> None:
    db = scratch
    done = threading.Event()

    def second_appender() -> None:
        with db.write() as conn:
            serialise_appends(conn)
        done.set()

    with db.write() as conn:
        serialise_appends(conn)
        other = threading.Thread(target=second_appender)
        other.start()
        # Whatever the scheduler does, the second appender cannot get past the lock
        # while this transaction is open.
        other.join(timeout=0.5)
        assert not done.is_set()
    other.join()
    assert done.is_set()


def test_the_projector_lock_admits_one_holder(scratch: Database) -> None:
    db = scratch
    with db.backend.projector_lock(db, wait=False) as first:
        assert first is True
        with db.backend.projector_lock(db, wait=False) as second:
            assert second is False
    with db.backend.projector_lock(db, wait=False) as again:
        assert again is True


def test_database_size_is_the_bytes_on_disk(scratch: Database) -> None:
    db = scratch
    with db.read() as conn:
        size = db.backend.database_size(conn)
    assert isinstance(size, int)
    assert size > 0


@pytest.mark.parametrize(
    ("amounts", "total"),
    [
        (["0.1", "0.2"], Decimal("0.3")),
        (["-1.5", "2", "0.03330000"], Decimal("0.5333")),
        (["12345678.12345678", "0.00000001"], Decimal("12345678.12345679")),
    ],
)
def test_money_sum_is_exact(scratch: Database, amounts: list[str], total: Decimal) -> None:
    db = scratch
    with db.write() as conn:
        rows = [_encoded(db, key=str(i), amount=Decimal(a)) for i, a in enumerate(amounts)]
        db.backend.insert_new(conn, rows_table, rows, "key")
    with db.read() as conn:
        got = conn.scalar(select(db.backend.money_sum(rows_table.c.amount)))
    assert isinstance(got, Decimal)
    assert got == total


def test_money_sum_over_no_rows_is_none(scratch: Database) -> None:
    db = scratch
    with db.read() as conn:
        assert conn.scalar(select(db.backend.money_sum(rows_table.c.amount))) is None


def test_named_parameters_serve_both_drivers(scratch: Database) -> None:
    db = scratch
    append(db, [NewEvent(type="carrier.status", occurred_at=T0, source="test", payload={})])
    sql = db.backend.driver_sql("SELECT count(*) FROM events WHERE position > :after")
    with db.read() as conn:
        assert conn.exec_driver_sql(sql, {"after": 0}).scalar() == 1
    with db.read() as conn:
        assert conn.exec_driver_sql(sql, {"after": 1}).scalar() == 0


def test_json_text_sql_reads_a_top_level_field_as_text_or_null(scratch: Database) -> None:
    from sqlalchemy import text

    documents = {
        "received": {"time_source": "received", "x": 1},
        "number": {"time_source": 5},
        "absent": {"status": 1},
        "nested": {"a": {"time_source": "received"}},
        "a list": [{"time_source": "received"}],
        "a string": "time_source",
    }
    with scratch.write() as conn:
        conn.execute(rows_table.insert(), [{"key": k, "doc": v} for k, v in documents.items()])
    field = scratch.backend.json_text_sql("doc", "time_source")
    with scratch.read() as conn:
        got = dict(conn.execute(text(f"SELECT key, {field} FROM contract_rows")).all())
    assert got == {"received": "received", "number": "5", "absent": None, "nested": None,
                   "a list": None, "a string": None}  # fmt: skip
