"""The dashboard's rollup equals the daily views after any sequence of changes.

Random traffic over several days (late reports, Altegio's acknowledgements, FX rates that
price margins after the fact, invoice lines that change a cost, duplicates) is appended
and projected in random slices; after each slice the rollup is refreshed incrementally and
every figure the overview and margin pages read from it is compared with the views'
rows, exactly, on each engine. Then a rebuild from scratch must give the same rows as the
increments did.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from pipeline.dashboard import queries, rollup
from pipeline.dashboard.filters import Filters
from pipeline.dashboard.tables import dashboard_daily
from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append
from tests.finance.money_events import acked, line, project, rate, rules
from tests.projector.events import accepted, report, submitted
from tests.projector.traffic import message_events

DAY = 24 * 60
#: The test messages' days: 2026-01-15 (the events' T0) and the four after it.
FIRST, AFTER = date(2026, 1, 14), date(2026, 1, 21)
PARTNERS = ("alpha", "beta")


def events_over_days(seed: int, messages: int) -> list[NewEvent]:
    """Traffic on five days, two partners and two countries, with the money that reaches
    a message later: acknowledgements, FX rates per day, invoice lines."""
    rng = random.Random(seed)
    out: list[NewEvent] = []
    for n in range(messages):
        day = rng.randrange(5)
        mid = f"r{n}"
        events = message_events(rng, mid, day * DAY + rng.random() * 600)
        partner = rng.choice(PARTNERS)
        for i, event in enumerate(events):
            if event.type == "message.accepted":
                events[i] = replace(event, payload={**event.payload, "partner": partner})
        out += events
        if rng.random() < 0.4:
            out.append(acked(mid, "2.27", n=n))
    for day in range(5):
        when = f"2026-01-{15 + day:02d}"
        out += [rate(when, "RUB", "EUR", "0.0101"), rate(when, "EUR", "RUB", "99.01")]
    # Extra messages with invoice lines (a cost that arrives with the invoice).
    for n in range(6):
        mid, cmid = f"i{n}", f"i{n}-c"
        out += [
            accepted(mid, n * DAY / 2),
            submitted(mid, cmid, n * DAY / 2 + 1),
            report(cmid, 1, n * DAY / 2 + 2),
            line("INV-R", n + 1, f"0.{n + 1}", cmid=cmid),
        ]
    rng.shuffle(out)
    return out


def _filters(**names: str | None) -> Filters:
    return Filters("custom", FIRST, FIRST, AFTER, **names)  # type: ignore[arg-type]


def _view(db: Database, sql: str, **params: Any) -> list[Any]:
    with db.read() as conn:
        return conn.execute(text(sql), params).all()


def sorted_rows(rows: Any) -> list[tuple[Any, ...]]:
    return sorted(rows, key=repr)


def assert_rollup_is_the_views(db: Database) -> None:
    with db.read() as conn:
        margin = queries.margin_data(conn, _filters())
        delivery = queries.delivery_data(conn, _filters())
        billing = queries.billing_data(conn, _filters())
        by_partner = {p: queries.billing_data(conn, _filters(partner=p)) for p in PARTNERS}
    # v_margin_daily, row for row.
    got = sorted_rows(
        (*key, m.messages, m.revenue, m.cost, m.margin, m.fx_missing)
        for key, m in margin.by(*queries.MARGIN_KEYS)
    )  # fmt: skip
    want = sorted_rows(
        (r.day, r.partner, r.carrier, r.country, r.messages, r.revenue_nano, r.cost_nano,
         r.margin_nano, r.fx_missing)
        for r in _view(db, "SELECT * FROM v_margin_daily")
    )  # fmt: skip
    assert got == want
    assert want, "the log should give margin rows"
    # v_delivery_daily, cell for cell, the rate as the view rounds it.
    cells = {
        (r.day, r.carrier): (
            r.messages, r.delivered, r.messages - r.in_progress,
            None if r.delivery_rate is None else Decimal(str(r.delivery_rate)),
        )
        for r in _view(db, "SELECT * FROM v_delivery_daily")
    }  # fmt: skip
    assert delivery.cells == cells
    # v_billing_daily per currency, for everyone and for each partner.
    for partner, data in ((None, billing), *by_partner.items()):
        sums: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for r in _view(db, "SELECT * FROM v_billing_daily"):
            if partner is None or r.partner == partner:
                s = sums[r.currency_iso]
                s[0] += r.messages
                s[1] += r.parts
                s[2] += r.charged_messages
                s[3] += r.payment_sum_minor
                s[4] = max(s[4], r.currency_exponent or 0)
        want_billing = {c: (s[0], s[1], s[2], Decimal(s[3]).scaleb(-s[4])) for c, s in sums.items()}
        got_billing = {
            b.currency: (b.messages, b.parts, b.charged_messages, b.payment_sum) for b in data.rows
        }
        assert got_billing == want_billing, partner


def rollup_rows(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        rows = conn.execute(select(dashboard_daily)).all()
    return sorted((tuple(r) for r in rows), key=repr)


def refresh(db: Database, *, full: bool = False) -> rollup.Refreshed:
    with db.write() as conn:
        return rollup.refresh(conn, full=full)


@pytest.mark.parametrize("seed", [3, 17])
def test_incremental_refreshes_keep_the_rollup_equal_to_the_views(db: Database, seed: int) -> None:
    fold_rules = rules()
    events = events_over_days(seed, messages=60)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(events)), 5))
    first = refresh(db)
    assert first.full and first.position == 0  # an empty projection: an empty rollup
    assert rollup_rows(db) == []
    incremental = 0
    for start, end in zip([0, *cuts], [*cuts, len(events)], strict=True):
        append(db, events[start:end])
        project(db, fold_rules, batch_size=rng.choice([1, 7, 100]))
        done = refresh(db)
        assert not done.full
        incremental += done.days
        assert_rollup_is_the_views(db)
        assert refresh(db).days == 0  # nothing changed since: nothing recomputed
    assert incremental > 5, "later slices should have changed days already rolled up"
    increments = rollup_rows(db)
    again = refresh(db, full=True)
    assert again.full
    assert rollup_rows(db) == increments
    assert_rollup_is_the_views(db)


def test_a_projection_behind_the_checkpoint_is_rolled_up_again_whole(db: Database) -> None:
    """A restored (older) database: the highest last_position is below the checkpoint."""
    append(db, events_over_days(5, messages=20))
    project(db, rules())
    done = refresh(db)
    assert done.full and done.position > 0
    with db.write() as conn:
        conn.execute(
            text("UPDATE dashboard_rollup SET position = position + 1000 WHERE name = 'daily'")
        )
        conn.execute(text("DELETE FROM dashboard_daily"))
    assert refresh(db).full
    assert_rollup_is_the_views(db)


def test_the_invoices_page_reads_the_rows_of_v_invoices(db: Database) -> None:
    """The page computes v_invoices's figures its own, faster way: the same rows, on a log
    with matched, disputed, unclaimed and credited lines."""
    from tests.reporting.test_views import load

    load(db)
    wide = Filters("custom", date(2000, 1, 1), date(2000, 1, 1), date(2100, 1, 1))
    with db.read() as conn:
        got = sorted_rows(
            (i.invoice_id, i.version, i.lines, i.stated_total, i.lines_total, i.matched,
             i.disputed, i.open_mismatches, i.closed)
            for i in queries.invoices(conn, wide)
        )  # fmt: skip
    want = sorted_rows(
        (r.invoice_id, r.version, r.lines, queries.nano(r.stated_total_nano),
         queries.nano(r.lines_total_nano), queries.nano(r.matched_amount_nano),
         queries.nano(r.disputed_amount_nano), r.open_mismatches, bool(r.closed))
        for r in _view(db, "SELECT * FROM v_invoices")
    )  # fmt: skip
    assert got == want
    assert any(row[6] for row in want), "the log should dispute some invoice line"


@pytest.mark.parametrize("partner", [None, "default"])
def test_the_disputes_page_counts_in_sql_and_reads_only_the_rows_it_shows(
    db: Database, partner: str | None
) -> None:
    from tests.reporting.test_views import load

    load(db)
    wide = Filters("custom", date(2000, 1, 1), date(2000, 1, 1), date(2100, 1, 1), partner)
    with db.read() as conn:
        groups = queries.disputes(conn, wide, shown=2)
    rows = _view(
        db,
        "SELECT o.*, s.partner FROM v_open_mismatches o "
        "LEFT JOIN v_message_status s ON s.message_id = o.message_id",
    )
    want: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
    for r in rows:
        if partner is None or r.partner == partner:
            want[(r.kind, r.currency)].append(r)
    assert {(g.kind, g.currency) for g in groups} == set(want)
    assert any(len(v) > 2 for v in want.values()), "the log should have a group beyond 2"
    for g in groups:
        mine = want[(g.kind, g.currency)]
        assert g.count == len(mine)
        amounts = [r.amount_at_stake_nano for r in mine if r.amount_at_stake_nano is not None]
        assert g.at_stake == (sum(amounts) if amounts else None)
        top = sorted(mine, key=lambda r: (r.amount_at_stake_nano is None,
                                         -(r.amount_at_stake_nano or 0), r.id))[:2]  # fmt: skip
        assert [d.id for d in g.rows] == [r.id for r in top]


def test_the_rebuild_command_rolls_the_days_up_again(db_url: str, db: Database) -> None:
    """``smsrecon dashboard --rebuild-rollup``: after a rebuild that re-derived figures
    without raising any last_position (here: a rollup row tampered with), whole again."""
    from click.testing import CliRunner

    from pipeline.cli.main import cli

    append(db, events_over_days(7, messages=15))
    project(db, rules())
    refresh(db)
    with db.write() as conn:
        conn.execute(text("UPDATE dashboard_daily SET messages = messages + 1"))
    result = CliRunner().invoke(cli, ["--database-url", db_url, "dashboard", "--rebuild-rollup"])
    assert result.exit_code == 0, result.output
    assert "rollup rebuilt:" in result.output
    assert_rollup_is_the_views(db)


def test_replay_rebuild_rolls_the_days_up_again_itself(db_url: str, db: Database) -> None:
    """``smsrecon replay --rebuild`` under other settings than the live fold's re-derives
    amounts without raising any last_position: it rebuilds the rollup as its last step."""
    from click.testing import CliRunner

    from pipeline.cli.main import cli

    append(db, events_over_days(11, messages=15))
    project(db, rules())
    refresh(db)
    with db.write() as conn:
        conn.execute(text("UPDATE dashboard_daily SET messages = messages + 1"))
    result = CliRunner().invoke(cli, ["--database-url", db_url, "replay", "--rebuild"])
    assert result.exit_code == 0, result.output
    assert "rebuilt the dashboard's daily rollup" in result.output
    assert_rollup_is_the_views(db)
