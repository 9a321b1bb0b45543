"""One bad request never fails another: not in a group commit, not in an ``ingest`` chunk.

A request whose content the database refuses (a lone surrogate, a NUL PostgreSQL cannot
keep, an integer too long to serialise) is answered 400 and quarantined, alone; the
requests that shared its commit are stored and answered 2xx. A database that is at fault
(locked, gone) is 503 for everyone, and nothing is lost: resent, everything is stored once.

The writer is tested directly as well as through the server, because the parsers refuse
most such values first: the writer must hold even for a value that slips past them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent
from pipeline.eventlog.model import utc_now
from pipeline.ingest.faults import classify_failure, failure_text
from pipeline.ingest.writer import Committed, ContentRejected, GroupCommitWriter, WriterUnavailable
from tests.ingest.commit_helpers import TIMEOUT, append_lock_held, until
from tests.ingest.server_fixtures import (
    event_count,
    live_server,
    make_settings,
    quarantine_rows,
    stored_events,
)

PHONE = "+79161234567"
TEXT = "confidential-text-7f3a"
HUGE = "9" * 5000
SURROGATE_ERROR = UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")


# --- the classification -------------------------------------------------------------------


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"driver error {sqlstate}")
        self.sqlstate = sqlstate


def _wrapped(kind: type[sa.DBAPIError], orig: Exception | None = None) -> sa.DBAPIError:
    return kind("INSERT INTO events ...", {"phone": PHONE}, orig or Exception("boom"))


@pytest.mark.parametrize(
    "failure",
    [
        _wrapped(sa.DataError),
        _wrapped(sa.IntegrityError),
        _wrapped(sa.OperationalError, _DriverError("54000")),  # program limit exceeded
        _wrapped(sa.InternalError, _DriverError("22P05")),  # untranslatable character
        sa.StatementError("bind failed", "INSERT ...", {}, SURROGATE_ERROR),
        SURROGATE_ERROR,
        ValueError("Exceeds the limit (4300 digits) for integer string conversion"),
        OverflowError("Python int too large to convert to SQLite INTEGER"),
        TypeError("Error binding parameter 1: type 'set' is not supported"),
        RecursionError("maximum recursion depth exceeded"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_failure_caused_by_the_values_is_the_contents_fault(failure: BaseException) -> None:
    assert classify_failure(failure) == "content"


@pytest.mark.parametrize(
    "failure",
    [
        _wrapped(sa.OperationalError),  # connection lost, database is locked
        _wrapped(sa.OperationalError, _DriverError("08006")),  # connection failure
        _wrapped(sa.InterfaceError),
        _wrapped(sa.ProgrammingError, _DriverError("42P01")),  # the table is missing
        _wrapped(sa.InternalError, _DriverError("25006")),  # read-only transaction
        _wrapped(sa.ProgrammingError, _DriverError("42501")),  # permission denied
        sa.TimeoutError("QueuePool limit reached"),
        sa.DisconnectionError("gone"),
        TimeoutError(),
        ConnectionResetError(),
        RuntimeError("an error nobody classified"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_any_other_failure_is_the_databases_fault(failure: BaseException) -> None:
    assert classify_failure(failure) == "database"


def test_failure_text_is_one_storable_line_without_sql_parameters_or_the_bad_character() -> None:
    wrapped = _wrapped(sa.DataError, Exception("text fields cannot contain NUL\nDETAIL: x"))
    assert failure_text(wrapped) == "Exception: text fields cannot contain NUL"
    assert PHONE not in failure_text(wrapped)
    surrogate = UnicodeEncodeError("utf-8", "ab\ud800", 2, 3, "surrogates not allowed")
    assert failure_text(surrogate) == "UnicodeEncodeError: surrogates not allowed at position 2"
    assert "\x00" not in failure_text(ValueError("a\x00b"))
    failure_text(ValueError("\udc80")).encode("utf-8")  # storable: no lone surrogate left


# --- the writer, directly -----------------------------------------------------------------


def _good(i: int) -> NewEvent:
    return NewEvent(
        type="message.refused",
        message_id=f"good-{i}",
        occurred_at=utc_now(),
        source="test",
        payload={"reason": "insufficient_funds"},
        dedup_key=f"refused:good-{i}",
    )


def _refused_by_the_database(backend: str) -> list[NewEvent]:
    """Events that pass NewEvent's checks but that the database (or its driver) refuses."""

    def bad(name: str, payload: dict[str, Any]) -> NewEvent:
        return NewEvent(
            type="message.refused",
            message_id=f"bad-{name}",
            occurred_at=utc_now(),
            source="test",
            payload={"reason": "insufficient_funds", **payload},
            dedup_key=f"refused:bad-{name}",
        )

    events = [
        bad("surrogate", {"note": "\ud800"}),  # cannot be encoded for either driver
        bad("huge-int", {"parts": 10**5000}),  # cannot be serialised as JSON
    ]
    if backend == "postgresql":
        events.append(bad("nul", {"note": "a\x00b"}))  # jsonb has no \u0000
    return events


async def test_content_the_database_refuses_fails_only_its_own_request_in_a_shared_commit(
    db: Database, backend: str
) -> None:
    commits: list[int] = []
    writer = GroupCommitWriter(db, on_commit=lambda events, _seconds: commits.append(events))
    bad = _refused_by_the_database(backend)
    await writer.start()
    try:
        async with append_lock_held(db):
            first = asyncio.create_task(writer.submit([_good(0)]))
            await until(lambda: writer.committing_events == 1)
            # Bad requests among good ones, all waiting for the same next commit.
            mixed: list[list[NewEvent]] = [[_good(i)] for i in range(1, 21)]
            for n, event in enumerate(bad):
                mixed.insert(5 + 5 * n, [event])
            tasks = [asyncio.create_task(writer.submit(events)) for events in mixed]
            await until(lambda: writer.queued_events == len(mixed))
        results = await asyncio.wait_for(
            asyncio.gather(first, *tasks, return_exceptions=True), TIMEOUT
        )
    finally:
        await writer.stop()

    submitted = [[_good(0)], *mixed]
    by_id = {events[0].message_id: r for events, r in zip(submitted, results, strict=True)}
    for i in range(21):
        assert by_id[f"good-{i}"] == Committed(1, 0)
    for event in bad:
        answer = by_id[event.message_id]
        assert isinstance(answer, ContentRejected), answer
        assert answer.detail and answer.detail[0]["reason"]
    # The shared commit failed, then each request went alone: the first commit, then one
    # per good request.
    assert commits == [1] + [1] * 20
    assert sorted(row.message_id for row in stored_events(db)) == sorted(
        f"good-{i}" for i in range(21)
    )


def _unreachable_writer_db(db_url: str, backend: str) -> Database:
    """A second pool on the same database that gives up waiting for the write lock fast."""
    if backend == "sqlite":
        return Database.from_url(db_url, busy_timeout_ms=100)
    return Database(create_engine(db_url, connect_args={"options": "-c lock_timeout=100"}))


async def test_a_locked_database_answers_every_request_unavailable_and_loses_nothing(
    db: Database, db_url: str, backend: str
) -> None:
    writer_db = _unreachable_writer_db(db_url, backend)
    writer = GroupCommitWriter(writer_db)
    await writer.start()
    try:
        async with append_lock_held(db):
            tasks = [asyncio.create_task(writer.submit([_good(i)])) for i in range(10)]
            results = await asyncio.wait_for(
                asyncio.gather(*tasks, return_exceptions=True), TIMEOUT
            )
            assert all(isinstance(r, WriterUnavailable) for r in results), results
            assert event_count(writer_db) == 0
        # The senders resend once the database is back: every event is stored, once.
        again = await asyncio.wait_for(
            asyncio.gather(*(writer.submit([_good(i)]) for i in range(10))), TIMEOUT
        )
    finally:
        await writer.stop()
        writer_db.dispose()
    assert again == [Committed(1, 0)] * 10
    assert event_count(db) == 10


async def test_a_database_that_accepts_no_connections_is_503_and_nothing_is_quarantined(
    pg_db: Database, pg_admin_url: str
) -> None:
    name = pg_db.engine.url.database
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
        async with live_server(make_settings(), pg_db) as client:
            responses = await asyncio.gather(
                *(
                    client.post("/v1/messages", json={"id": str(i), "phone": PHONE, "text": TEXT})
                    for i in range(10)
                )
            )
            answers = {(r.status, (await r.json())["error"]) for r in responses}
        assert answers == {(503, "the event log is unavailable; send again")}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        admin.dispose()
    assert event_count(pg_db) == 0
    assert quarantine_rows(pg_db) == []


# --- through the server -------------------------------------------------------------------

_RECEIPT = (
    "id:3e8f2b1c sub:001 dlvrd:001 submit date:2601151330 done date:2601151331 "
    "stat:DELIVRD err:000 text:"
)


async def test_60_good_requests_succeed_beside_3_bad_ones_which_get_400_and_quarantine(
    db: Database, backend: str
) -> None:
    settings = make_settings({"kan": {"format": "kannel"}}, commit_interval_ms=20)
    async with live_server(settings, db) as client:

        def good(i: int) -> Any:
            return client.post("/v1/messages", json={"id": f"g{i}", "phone": PHONE, "text": TEXT})

        bad = {
            "surrogate": client.post(
                "/v1/messages",
                data=f'{{"id":"b1","phone":"{PHONE}","text":"\\ud800"}}'.encode(),
                headers={"Content-Type": "application/json"},
            ),
            "huge-int": client.post(
                "/v1/messages",
                data=f'{{"id":"b2","phone":"{PHONE}","text":"x","parts":{HUGE}}}'.encode(),
                headers={"Content-Type": "application/json"},
            ),
            # Refused on both engines (the parser refuses a NUL before PostgreSQL could).
            "nul": client.get(
                "/v1/dlr/kan?message_id=b3&type=1&smsc=smpp%00mts&smsc_id=3e8f2b1c"
                f"&ts=1768473062&answer={_RECEIPT}"
            ),
        }
        goods = [good(i) for i in range(60)]
        responses = await asyncio.wait_for(asyncio.gather(*goods, *bad.values()), TIMEOUT)
        good_answers, bad_answers = responses[:60], dict(zip(bad, responses[60:], strict=True))
        assert [r.status for r in good_answers] == [200] * 60
        for name, response in bad_answers.items():
            body = await response.json()
            assert response.status == 400, (name, body)
            assert body["error"] and "detail" in body and body["quarantine_id"]
    stored = {row.message_id for row in stored_events(db)}
    assert stored == {f"g{i}" for i in range(60)}
    assert len(quarantine_rows(db)) == len(bad)


# --- smsrecon ingest ----------------------------------------------------------------------


def _run(db_url: str, tmp_path: Path, *args: str) -> Result:
    config = tmp_path / "config.yaml"
    config.write_text("carriers: {}\n")
    return CliRunner().invoke(
        cli, ["--config", str(config), "--database-url", db_url, *args], catch_exceptions=False
    )


def _message_line(i: int, text_value: str = TEXT, **extra: Any) -> str:
    return json.dumps({"id": f"m{i}", "phone": PHONE, "text": text_value, **extra})


def test_a_row_the_database_refuses_is_quarantined_with_its_line_and_the_chunk_is_stored(
    db: Database, db_url: str, backend: str, tmp_path: Path
) -> None:
    lines = [_message_line(i) for i in range(1, 6)]
    # Written as the JSON a file would hold: escapes and digits, not Python values.
    lines.insert(2, _message_line(0, "SURROGATE").replace("SURROGATE", "\\ud800"))
    lines.insert(4, _message_line(-1, "x", parts=0).replace('"parts": 0', f'"parts": {HUGE}'))
    if backend == "postgresql":
        lines.append(_message_line(-2, "NUL").replace("NUL", "a\\u0000b"))
    file = tmp_path / "messages.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = _run(db_url, tmp_path, "ingest", str(file), "--format", "messages")

    bad = 3 if backend == "postgresql" else 2
    assert result.exit_code == 3, result.output
    assert f"read {5 + bad}, appended 5, duplicates 0, quarantined {bad}" in result.output
    assert {row.message_id for row in stored_events(db)} == {f"m{i}" for i in range(1, 6)}
    # The parser refuses these values before the database sees them; whichever layer does,
    # each row is quarantined alone, with its line.
    errors = sorted(row.error for row in quarantine_rows(db))
    assert any("line 3" in error for error in errors), errors
    assert any("line 5" in error for error in errors), errors
    if backend == "postgresql":
        assert any("line 8" in error for error in errors), errors
    assert PHONE not in result.output and TEXT not in result.output


def test_a_chunk_the_database_refuses_is_retried_record_by_record(
    db: Database, backend: str
) -> None:
    """The importer's own retry, for a value that slipped past every parser check: the
    good records of the chunk are stored, the refused one is quarantined with its line."""
    from pipeline.ingest.adapters.base import RawRequest
    from pipeline.ingest.files import FileRecord
    from pipeline.ingest.importer import ImportSummary, _flush, _Parsed
    from pipeline.ingest.routing import InputError

    def record(line: int, message_id: str, phone: str) -> _Parsed:
        event = NewEvent(
            type="message.accepted",
            occurred_at=utc_now(),
            source="file:test",
            dedup_key=f"test:{message_id}",
            message_id=message_id,
            payload={"message_id": message_id, "phone": phone, "text": TEXT},
        )
        request = RawRequest(method="POST", path="/v1/messages", query=[], headers={}, body=b"")
        return _Parsed(FileRecord(f"line {line}", request), [event])

    # A lone surrogate cannot be encoded on either engine; PostgreSQL refuses a NUL too.
    bad_phone = "\ud800" if backend == "sqlite" else "a\x00b"
    pending = [record(1, "c1", PHONE), record(2, "c2", bad_phone), record(3, "c3", PHONE)]
    refused: list[tuple[str, InputError]] = []
    summary = ImportSummary()

    _flush(db, pending, summary, lambda rec, exc, _at: refused.append((rec.location, exc)))

    assert summary.appended == 2
    assert {row.message_id for row in stored_events(db)} == {"c1", "c3"}
    assert [location for location, _ in refused] == ["line 2"]
    assert "refused" in refused[0][1].error


def test_a_database_failure_during_ingest_is_one_line_without_the_rows_values(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "messages.jsonl"
    file.write_text("\n".join(_message_line(i) for i in range(3)) + "\n", encoding="utf-8")
    with db.write() as conn:
        conn.execute(text("ALTER TABLE events RENAME TO events_away"))
    try:
        result = _run(db_url, tmp_path, "ingest", str(file), "--format", "messages")
    finally:
        with db.write() as conn:
            conn.execute(text("ALTER TABLE events_away RENAME TO events"))
    assert result.exit_code == 1, result.output
    assert "the database failed, the rest was not stored (run again)" in result.output
    assert PHONE not in result.output and TEXT not in result.output
    assert "INSERT" not in result.output
    assert event_count(db) == 0
