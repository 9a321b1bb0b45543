"""`smsrecon fx import`: CSV rates to fx.rate events, on both engines, and the projector
ignoring them."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.domain.fx import convert, rate_table
from pipeline.eventlog import append, read
from pipeline.fx.ratefile import (
    RateFileError,
    parse_rate_file,
    rate_event,
    rate_of_payload,
)
from pipeline.projector.replay import verify
from pipeline.projector.runner import catch_up
from pipeline.projector.tables import fx_rates, message_state, mismatches
from tests.projector.events import accepted, report, submitted
from tests.projector.test_projection import GRACE, RULES

GOOD = (
    "day,base,quote,rate,source\n"
    "2026-01-15,EUR,RUB,98.50,cbr\n"
    "2026-01-15,USD,EUR,0.92,ecb\n"
    "2026-01-16,EUR,RUB,99.1,cbr\n"
)


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(tmp_path: Path, text: str, name: str = "rates.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def fx_events(db: Database):  # type: ignore[no-untyped-def]
    return [e for e in read(db, after=0, limit=10_000).events if e.type == "fx.rate"]


def test_import_appends_one_event_per_row_and_again_appends_nothing(
    db_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, GOOD)
    first = run("fx", "import", str(path), url=db_url)
    assert first.returncode == 0, first.stderr
    assert "appended 3, duplicates 0" in first.stdout
    again = run("fx", "import", str(path), url=db_url)
    assert again.returncode == 0, again.stderr
    assert "appended 0, duplicates 3" in again.stdout
    # The same facts written differently (1.10 vs 1.1, spaces) are the same rows.
    respelt = write(
        tmp_path, "day,base,quote,rate,source\n2026-01-16, EUR ,RUB,99.10,cbr\n", "b.csv"
    )
    third = run("fx", "import", str(respelt), url=db_url)
    assert "appended 0, duplicates 1" in third.stdout, third.stderr


def test_a_rate_corrected_and_put_back_counts_again(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    """98.50, then a correction to 99, then the first file again: the first rate counts
    once more (it is not a duplicate of the first event), and a fourth import is a no-op."""
    first = write(tmp_path, "day,base,quote,rate,source\n2026-01-15,EUR,RUB,98.50,cbr\n", "a.csv")
    fixed = write(tmp_path, "day,base,quote,rate,source\n2026-01-15,EUR,RUB,99,cbr\n", "b.csv")
    outputs = [run("fx", "import", str(f), url=db_url) for f in (first, fixed, first, first)]
    assert [o.returncode for o in outputs] == [0, 0, 0, 0]
    assert [o.stdout.strip() for o in outputs] == [
        "appended 1, duplicates 0",
        "appended 1, duplicates 0",
        "appended 1, duplicates 0",
        "appended 0, duplicates 1",
    ]
    rates = [(e.payload["rate"], e.dedup_key.rsplit(":", 1)[1]) for e in fx_events(db)]
    positions = [e.position for e in fx_events(db)]
    assert rates == [("98.5", "0"), ("99", str(positions[0])), ("98.5", str(positions[1]))]


def test_imported_events_read_back_as_the_rates_of_the_file(db: Database) -> None:
    append(db, [rate_event(fx) for fx in parse_rate_file(GOOD)])
    stored = fx_events(db)
    assert [e.payload for e in stored] == [
        {"day": "2026-01-15", "base": "EUR", "quote": "RUB", "rate": "98.5", "source": "cbr"},
        {"day": "2026-01-15", "base": "USD", "quote": "EUR", "rate": "0.92", "source": "ecb"},
        {"day": "2026-01-16", "base": "EUR", "quote": "RUB", "rate": "99.1", "source": "cbr"},
    ]
    assert {e.occurred_at.isoformat() for e in stored} == {
        "2026-01-15T00:00:00+00:00",
        "2026-01-16T00:00:00+00:00",
    }
    assert stored[0].dedup_key == "fx:2026-01-15:EUR:RUB:cbr:98.5:after:0"
    table = rate_table(rate_of_payload(e.payload) for e in stored)
    # 2.27 EUR on 2026-01-16 at 99.1 = 224.957 RUB; 2026-01-17 has no rate.
    assert convert(Decimal("2.27"), "EUR", "RUB", date(2026, 1, 16), table) == Decimal("224.957")
    assert convert(Decimal("2.27"), "EUR", "RUB", date(2026, 1, 17), table) is None


def test_a_file_with_a_bad_row_is_refused_whole_with_row_numbers(
    db_url: str, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "day,base,quote,rate,source\n"
        "2026-01-15,EUR,RUB,98.50,cbr\n"
        "2026-02-30,EUR,RUB,98.50,cbr\n"
        "2026-01-15,EUR,XXQ,1,cbr\n"
        "2026-01-15,EUR,RUB,0,cbr2\n",
    )
    result = run("fx", "import", str(path), url=db_url)
    assert result.returncode == 2
    assert "row 3: day: no such day: 2026-02-30" in result.stderr
    assert "row 4: quote:" in result.stderr
    assert "row 5: rate: must be above 0" in result.stderr
    assert "3 problem(s)" in result.stderr and "nothing appended" in result.stderr
    assert "row 2" not in result.stderr
    stats = run("events", "stats", url=db_url)
    assert "fx.rate" not in stats.stdout
    assert "total" in stats.stdout


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "row 1: header: must be day,base,quote,rate,source"),
        ("day,base,quote,rate\n2026-01-15,EUR,RUB,1\n", "row 1: header"),
        ("day,base,quote,rate,source\n", "row 2: rows: the file holds no rates"),
        ("day,base,quote,rate,source\n15.01.2026,EUR,RUB,1,x\n", "row 2: day: not a date"),
        ("day,base,quote,rate,source\n2026-01-15,eur,RUB,1,x\n", "row 2: base:"),
        ("day,base,quote,rate,source\n2026-01-15,EUR,EUR,1,x\n", "row 2: quote: the same"),
        ("day,base,quote,rate,source\n2026-01-15,EUR,RUB,-1,x\n", "row 2: rate: must be above 0"),
        ("day,base,quote,rate,source\n2026-01-15,EUR,RUB,1e999,x\n", "row 2: rate: more than"),
        ("day,base,quote,rate,source\n2026-01-15,EUR,RUB,NaN,x\n", "row 2: rate: not a decimal"),
        ('day,base,quote,rate,source\n2026-01-15,EUR,RUB,"98,5",x\n', "row 2: rate: not a decimal"),
        ("day,base,quote,rate,source\n2026-01-15,EUR,RUB,1,\n", "row 2: source:"),
        ("day,base,quote,rate,source\n2026-01-15,EUR,RUB,1,x,y\n", "row 2: row: 6 fields"),
        (
            "day,base,quote,rate,source\n2026-01-15,EUR,RUB,98.5,cbr\n2026-01-15,EUR,RUB,99,cbr\n",
            "row 3: rate: differs from row 2",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_row_and_field(text: str, problem: str) -> None:
    with pytest.raises(RateFileError) as err:
        parse_rate_file(text)
    assert len(err.value.problems) == 1
    assert problem in str(err.value.problems[0])


def test_a_bom_blank_lines_and_a_repeated_identical_row_are_accepted() -> None:
    text = "\ufeffday,base,quote,rate,source\r\n2026-01-15,EUR,RUB,98.5,cbr\r\n\r\n"
    text += "2026-01-15,EUR,RUB,98.50,cbr\r\n"
    rates = parse_rate_file(text)
    assert len(rates) == 2 and rates[0].rate == Decimal("98.5")


def _snapshot(db: Database) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with db.read() as conn:
        states = [tuple(r) for r in conn.execute(select(message_state).order_by("message_id"))]
        found = [
            tuple(r)
            for r in conn.execute(
                select(mismatches.c.subject, mismatches.c.kind, mismatches.c.status).order_by(
                    mismatches.c.subject, mismatches.c.kind
                )
            )
        ]
    return states, found


def test_projecting_fx_rate_events_stores_them_and_changes_no_figure(db: Database) -> None:
    """Messages with neither revenue nor a cost have no figure a rate could change: the
    rates land in ``fx_rates`` (the last one per day and pair), and only the rows'
    bookkeeping (the position and time that last touched them) moves."""
    traffic = [
        accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3),
        accepted("m2"), submitted("m2", "c2"), report("ghost", 1, 6),
    ]  # fmt: skip
    append(db, traffic)
    catch_up(db, RULES, grace_seconds=GRACE, batch_size=100)
    before = _snapshot(db)
    assert before[0], "the traffic projects into message_state"
    # Rates of the traffic's own day and the day before: their times (00:00 UTC) are not
    # ahead of the log's clock, so this isolates what the fold does with them.
    rates = (
        "day,base,quote,rate,source\n"
        "2026-01-15,EUR,RUB,98.50,cbr\n"
        "2026-01-14,USD,EUR,0.92,ecb\n"
        "2026-01-15,USD,EUR,0.93,ecb\n"
    )
    append(db, [rate_event(fx) for fx in parse_rate_file(rates)])
    folded = catch_up(db, RULES, grace_seconds=GRACE, batch_size=100)[0]
    assert folded == 3  # the checkpoint moves past them...
    moved = {"last_position", "updated_at"}
    after = _snapshot(db)
    names = [c.name for c in message_state.c]
    strip = [
        tuple(v for n, v in zip(names, row, strict=True) if n not in moved) for row in after[0]
    ]
    was = [tuple(v for n, v in zip(names, row, strict=True) if n not in moved) for row in before[0]]
    assert (strip, after[1]) == (was, before[1])  # ...and no figure or mismatch changes
    with db.read() as conn:
        stored = conn.execute(
            select(fx_rates.c.day, fx_rates.c.base, fx_rates.c.quote, fx_rates.c.rate).order_by(
                fx_rates.c.day, fx_rates.c.base
            )
        ).all()
    assert [tuple(r) for r in stored] == [
        ("2026-01-14", "USD", "EUR", Decimal("0.92")),
        ("2026-01-15", "EUR", "RUB", Decimal("98.50")),
        ("2026-01-15", "USD", "EUR", Decimal("0.93")),
    ]
    assert verify(db, RULES, grace_seconds=GRACE, batch_size=2)[1] == 0


def test_a_rate_for_a_later_day_never_moves_the_projectors_clock(db: Database) -> None:
    """Reference data (rates, invoice headers) says nothing about when messages happened:
    a rate for tomorrow must not run out the grace of a report held today."""
    append(db, [accepted("m1"), submitted("m1", "c1"), report("ghost", 1, 6)])
    catch_up(db, RULES, grace_seconds=GRACE, batch_size=100)
    tomorrow = "day,base,quote,rate,source\n2026-01-16,EUR,RUB,98.50,cbr\n"
    append(db, [rate_event(fx) for fx in parse_rate_file(tomorrow)])
    catch_up(db, RULES, grace_seconds=GRACE, batch_size=100)
    with db.read() as conn:
        kinds = [row.kind for row in conn.execute(select(mismatches)).all()]
    assert kinds == []
    # The report's grace still runs out on message time: 10 minutes after it was held.
    append(db, [report("c1", 1, 6 + GRACE / 60 + 1)])
    catch_up(db, RULES, grace_seconds=GRACE, batch_size=100)
    with db.read() as conn:
        kinds = [row.kind for row in conn.execute(select(mismatches)).all()]
    assert kinds == ["unknown_message"]
    assert verify(db, RULES, grace_seconds=GRACE, batch_size=1)[1] == 0
