"""One event the projector cannot read or apply never halts it.

Each hostile row is appended as a raw ``INSERT`` (the log is append-only: a bad row, once
in, is there for good), as an older version or a hand-written statement could have left it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.projector import store
from pipeline.projector.derive import FoldRules
from pipeline.projector.project import project_batch
from pipeline.projector.store import LIVE, CheckpointMoved
from pipeline.projector.tables import message_state, mismatches
from tests.projector.events import accepted, report, submitted

TARIFFS = """
billing:
  tariffs:
    - {prefix: "+7", price_per_part: "2.27", currency: RUB}
"""

RULES = FoldRules(tariffs=(), non_chargeable=frozenset(), rounding="per_part")


def _run(tmp_path: Path, db_url: str, *args: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    path.write_text(TARIFFS)
    return CliRunner().invoke(cli, ["--config", str(path), "--database-url", db_url, *args])


def _insert_raw(
    db: Database,
    *,
    key: str,
    type: str = "carrier.status",
    payload: Any,
    occurred_at: str = "2026-01-15 10:05:00.000000",
    message_id: str | None = None,
    carrier: str | None = None,
    cmid: str | None = None,
) -> int:
    """Append one row exactly as given, past every check the writer makes."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    cast = "CAST(:payload AS jsonb)" if db.is_postgres else ":payload"
    when = "CAST(:occurred AS timestamptz)" if db.is_postgres else ":occurred"
    recorded = "CAST(:recorded AS timestamptz)" if db.is_postgres else ":recorded"
    with db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO events (type, message_id, carrier, carrier_message_id, "
                "occurred_at, recorded_at, source, payload, dedup_key) VALUES "
                f"(:type, :mid, :carrier, :cmid, {when}, {recorded}, 'raw', {cast}, :key)"
            ),
            {
                "type": type,
                "mid": message_id,
                "carrier": carrier,
                "cmid": cmid,
                "occurred": occurred_at,
                "recorded": "2026-01-15 10:05:00.000000",
                "payload": body,
                "key": key,
            },
        )
        return int(conn.execute(text("SELECT max(position) FROM events")).scalar_one())


def _unreadable(db: Database) -> dict[int, dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(mismatches.c.first_position, mismatches.c.detail, mismatches.c.status).where(
                mismatches.c.kind == "unreadable_event"
            )
        ).all()
    return {r.first_position: {**r.detail, "status": r.status} for r in rows}


def _state(db: Database, message_id: str) -> Any:
    with db.read() as conn:
        return conn.execute(
            select(message_state).where(message_state.c.message_id == message_id)
        ).one()


def _hostile_log(db: Database) -> dict[str, int]:
    """A good message, then rows that break the fold, then more good traffic."""
    append(db, [accepted("m1"), submitted("m1", "c1")])
    bad = {
        "payload is a list": _insert_raw(db, key="bad:list", payload=[1, 2], message_id="m1"),
        "parts 10**30": _insert_raw(
            db,
            key="bad:parts",
            type="message.accepted",
            payload='{"partner": "default", "phone": "+79160000001", "parts": ' + str(10**30) + "}",
            message_id="m2",
        ),
        "cost 1E+5000000": _insert_raw(
            db,
            key="bad:cost",
            payload={"status": 1, "cost": "1E+5000000", "currency": "RUB"},
            carrier="mts",
            cmid="c1",
        ),
        "phone is an object": _insert_raw(
            db,
            key="bad:phone",
            type="message.accepted",
            payload={"partner": "default", "phone": {"n": 1}},
            message_id="m3",
        ),
        "status a string, currency a list": _insert_raw(
            db,
            key="bad:types",
            payload={"status": "1", "cost": "1.5", "currency": ["RUB"]},
            carrier="mts",
            cmid="c1",
        ),
        "names no message": _insert_raw(db, key="bad:ids", payload={"status": 1}),
        "part 10**30": _insert_raw(
            db,
            key="bad:part",
            payload='{"status": 1, "part": ' + str(10**30) + "}",
            carrier="mts",
            cmid="c1",
        ),
    }
    append(
        db,
        [
            report("c1", 1, 3),
            accepted("m9", 4, phone="+79169999999"),
            submitted("m9", "c9", 5),
            report("c9", 1, 6),
        ],
    )
    return bad


def test_events_that_break_the_fold_become_unreadable_event_and_later_ones_are_projected(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    bad = _hostile_log(db)
    result = _run(tmp_path, db_url, "project")
    assert result.exit_code == 0, result.output

    found = _unreadable(db)
    assert set(found) == set(bad.values())
    for position, detail in found.items():
        assert detail["position"] == position
        assert detail["error"] and detail["status"] == "open"
    assert "parts" in found[bad["parts 10**30"]]["error"]
    assert "cost" in found[bad["cost 1E+5000000"]]["error"]
    assert "object" in found[bad["payload is a list"]]["error"]

    # Later good events are projected and ready for dispatch.
    m9 = _state(db, "m9")
    assert m9.status == 1 and m9.payload_hash is not None and str(m9.payment_sum) == "2.27"
    m1 = _state(db, "m1")
    assert m1.status == 1 and m1.carrier_cost is None  # the absurd cost never applied
    with db.read() as conn:
        assert conn.execute(select(message_state.c.message_id)).scalars().all().count("m2") == 0

    verify = _run(tmp_path, db_url, "replay", "--verify")
    assert verify.exit_code == 0, verify.output
    assert "replay matches" in verify.output


def test_projecting_one_event_at_a_time_skips_the_same_events_as_one_batch(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    bad = _hostile_log(db)
    while True:
        result = _run(tmp_path, db_url, "project", "--batch-size", "1", "--max-events", "1")
        assert result.exit_code == 0, result.output
        if "projected 0 events" in result.output:
            break
    assert set(_unreadable(db)) == set(bad.values())
    rebuilt = _run(tmp_path, db_url, "replay", "--rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert set(_unreadable(db)) == set(bad.values())
    assert _state(db, "m9").status == 1


def test_tail_and_explain_show_events_that_break_the_fold(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    bad = _hostile_log(db)
    assert _run(tmp_path, db_url, "project").exit_code == 0
    tail = _run(tmp_path, db_url, "events", "tail", "--limit", "50")
    assert tail.exit_code == 0, tail.output
    for position in bad.values():
        assert f"{position:>10}  " in tail.output
    jsonl = _run(tmp_path, db_url, "events", "tail", "--limit", "50", "--format", "jsonl")
    assert jsonl.exit_code == 0, jsonl.output
    assert [1, 2] in [json.loads(line)["payload"] for line in jsonl.output.splitlines()]

    explain = _run(tmp_path, db_url, "explain", "m1")
    assert explain.exit_code == 0, explain.output
    assert f"{bad['payload is a list']:>8}" in explain.output
    assert "unreadable" in explain.output
    assert "unreadable_event" in explain.output  # the mismatch section names it
    as_json = _run(tmp_path, db_url, "explain", "m1", "--format", "json")
    assert as_json.exit_code == 0, as_json.output


def test_a_time_stored_with_a_short_year_is_read_everywhere(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    # What an older version wrote on SQLite for year 999 (PostgreSQL stores the year itself).
    old_form = "999-06-01 00:00:00" if not db.is_postgres else "0999-06-01 00:00:00+00"
    append(db, [accepted("m1")])
    position = _insert_raw(
        db,
        key="old:999",
        type="message.accepted",
        payload={"partner": "default", "phone": "+79160000002"},
        occurred_at=old_form,
        message_id="m999",
    )
    append(db, [accepted("m2", 20), submitted("m2", "c2", 21), report("c2", 1, 22)])

    result = _run(tmp_path, db_url, "project")
    assert result.exit_code == 0, result.output
    assert _state(db, "m2").status == 1
    assert str(_state(db, "m999").accepted_at).startswith("0999-06-01")
    tail = _run(tmp_path, db_url, "events", "tail", "--limit", "10")
    assert tail.exit_code == 0, tail.output
    assert f"{position:>10}  0999-06-01T00:00:00Z" in tail.output
    explain = _run(tmp_path, db_url, "explain", "m999")
    assert explain.exit_code == 0, explain.output
    assert "0999-06-01" in explain.output
    verify = _run(tmp_path, db_url, "replay", "--verify")
    assert verify.exit_code == 0, verify.output


def test_a_time_no_calendar_holds_is_skipped_and_shown_as_stored(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    # PostgreSQL stores "infinity" (no Python time holds it); SQLite stores any text.
    stored = "infinity" if db.is_postgres else "not a time"
    append(db, [accepted("m1")])
    position = _insert_raw(
        db,
        key="bad:time",
        type="message.accepted",
        payload={"partner": "default", "phone": "+79160000003"},
        occurred_at=stored,
        message_id="mx",
    )
    append(db, [accepted("m2", 20), submitted("m2", "c2", 21), report("c2", 1, 22)])

    result = _run(tmp_path, db_url, "project")
    assert result.exit_code == 0, result.output
    found = _unreadable(db)
    assert set(found) == {position}
    assert stored in found[position]["error"]
    assert _state(db, "m2").status == 1

    tail = _run(tmp_path, db_url, "events", "tail", "--limit", "10")
    assert tail.exit_code == 0, tail.output
    assert f"{position:>10}  {stored}" in tail.output and "unreadable" in tail.output
    jsonl = _run(tmp_path, db_url, "events", "tail", "--limit", "10", "--format", "jsonl")
    assert jsonl.exit_code == 0, jsonl.output
    assert json.loads(jsonl.output.splitlines()[1])["occurred_at"] == stored
    explain = _run(tmp_path, db_url, "explain", "mx")
    assert explain.exit_code == 0, explain.output
    assert "unreadable, skipped" in explain.output and "unreadable_event" in explain.output
    verify = _run(tmp_path, db_url, "replay", "--verify")
    assert verify.exit_code == 0, verify.output


@pytest.mark.parametrize(
    "failure",
    [
        CheckpointMoved("another projector moved it"),
        OperationalError("INSERT", {}, Exception("database is locked")),
    ],
)
def test_a_database_failure_is_never_blamed_on_an_event(
    db: Database, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    append(db, [accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3)])

    real = store.store_checkpoint
    calls: list[int] = []

    def fail_once(*args: Any, **kwargs: Any) -> None:
        # Only the first store fails: were it blamed on an event, the skip would succeed.
        calls.append(1)
        if len(calls) == 1:
            raise failure
        real(*args, **kwargs)

    monkeypatch.setattr(store, "store_checkpoint", fail_once)
    with pytest.raises(type(failure)), db.write() as conn:
        project_batch(conn, LIVE, RULES, grace_seconds=600, limit=100)
    monkeypatch.undo()
    assert _unreadable(db) == {}
    with db.write() as conn:
        assert project_batch(conn, LIVE, RULES, grace_seconds=600, limit=100).events == 3
    assert _unreadable(db) == {} and _state(db, "m1").status == 1


#: Deeper than Python's JSON decoder recurses (its limit is the interpreter's, 1,000).
NESTED_BOMB = '{"status": 1, "a": ' + "[" * 5_000 + "]" * 5_000 + "}"


def test_a_payload_nested_deeper_than_the_decoder_recurses_is_skipped_not_a_halt(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    append(db, [accepted("m1"), submitted("m1", "c1")])
    bomb = _insert_raw(db, key="bad:nested", payload=NESTED_BOMB, carrier="mts", cmid="c1")
    # Reference events are also read by type, from the whole log (the price tables).
    references = {
        _insert_raw(db, key=f"bad:nested:{kind}", type=kind, payload=NESTED_BOMB)
        for kind in ("prices.recorded", "fx.rate")
    }
    append(db, [report("c1", 1, 3)])

    result = _run(tmp_path, db_url, "project")
    assert result.exit_code == 0, result.output
    found = _unreadable(db)
    assert set(found) == {bomb, *references}
    assert "recursion" in found[bomb]["error"]
    assert _state(db, "m1").status == 1  # the report after the bomb is folded
    tail = _run(tmp_path, db_url, "events", "tail", "--limit", "5")
    assert tail.exit_code == 0, tail.output
    verify = _run(tmp_path, db_url, "replay", "--verify", "--workers", "2")
    assert verify.exit_code == 0, verify.output
    assert "replay matches" in verify.output


def test_an_invoice_header_no_reader_can_decode_is_no_version_of_it(db: Database) -> None:
    from pipeline.reconcile.importer import invoice_headers

    _insert_raw(db, key="invoice:INV-1:v1", type="carrier.invoice", payload=NESTED_BOMB)
    _insert_raw(db, key="invoice:INV-1:v2", type="carrier.invoice", payload=[1])
    assert invoice_headers(db, "INV-1") == []
