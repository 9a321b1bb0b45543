"""``smsrecon prices``: the price tables the log records, and repricing on purpose."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from pipeline.cli.context import EXIT_FAILURE, EXIT_USAGE, app_context, fail, friendly_errors
from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.domain.tariffs import TariffError


def record_or_fail(database: Database, settings: Settings) -> None:
    """Record the price tables in force before a command appends (``record_prices``);
    a bad tariff in the configuration is one line and exit 2, a database that fails is one
    line (never the driver's message, which could quote values) and exit 1."""
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline.ingest.faults import failure_text
    from pipeline.prices.record import record_prices

    try:
        record_prices(database, settings)
    except TariffError as exc:
        fail(f"price tables: {exc}", EXIT_USAGE)
    except SQLAlchemyError as exc:
        reason = failure_text(exc)
        fail(f"the database failed, the rest was not stored (run again): {reason}", EXIT_FAILURE)


@click.group()
def prices() -> None:
    """Price tables (prices.recorded) and repricing (prices.repriced)."""


@prices.command("list")
@friendly_errors
def list_command() -> None:
    """Every recorded table version per scope, and every repricing, in log order."""
    from sqlalchemy import select

    from pipeline.db.tables import events
    from pipeline.eventlog.read import row_to_event
    from pipeline.prices.record import RECORDED, REPRICED

    database = app_context().database()
    with database.read() as conn:
        rows = conn.execute(
            select(events)
            .where(events.c.type.in_([RECORDED, REPRICED]))
            .order_by(events.c.position)
        ).all()
    if not rows:
        click.echo("no price table recorded yet (any command that appends or projects records)")
        return
    for row in rows:
        event = row_to_event(row)
        p = event.payload
        when = event.recorded_at.isoformat().replace("+00:00", "Z")
        head = f"{event.position:>10}  {when}  {p.get('scope')} v{p.get('version')}"
        if event.type == RECORDED:
            rules = p.get("rules") or []
            click.echo(
                f"{head}  recorded  {len(rules)} rule(s)  sha256 {str(p.get('sha256'))[:16]}"
            )
        else:
            span = f"{p.get('accepted_from')} .. {p.get('accepted_to')}"
            click.echo(f"{head}  repriced  accepted {span}  note: {p.get('note')}")


@prices.command("reprice")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First day (UTC) of acceptance to reprice.")  # fmt: skip
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Last day (UTC) of acceptance to reprice, included.")  # fmt: skip
@click.option("--scope", default="billing", show_default=True,
              help="billing, or carrier:<name> for a carrier's rate card.")  # fmt: skip
@click.option("--version", "version", type=click.IntRange(1), default=None,
              help="The table version to apply (default: the latest recorded).")  # fmt: skip
@click.option("--note", required=True, help="Why: kept in the log with the repricing.")
@click.option("--dry-run", is_flag=True, help="Show what would change; append nothing.")
@friendly_errors
def reprice_command(
    start: datetime, end: datetime, scope: str, version: int | None, note: str, dry_run: bool
) -> None:
    """Price the messages accepted from --from to --to again by a recorded table version.

    Appends one prices.repriced event (the log says who changed which prices, and why),
    projects it, and prints the message count and the totals per currency before and after.
    """
    from pipeline.eventlog import append
    from pipeline.prices.reprice import (
        RepriceError,
        plan_reprice,
        reprice_event,
        table_to_apply,
        totals,
    )
    from pipeline.projector.runner import fold_rules, run_project

    if not note.strip():
        fail("--note: say why", EXIT_USAGE)
    if scope != "billing" and not scope.startswith("carrier:"):
        fail("--scope: billing or carrier:<name>", EXIT_USAGE)
    first = start.replace(tzinfo=UTC)
    after = end.replace(tzinfo=UTC) + timedelta(days=1)
    if not first < after:
        fail("--from: on or before --to", EXIT_USAGE)
    app = app_context()
    settings, database = app.settings, app.database()
    try:
        rules = fold_rules(settings)
    except TariffError as exc:
        fail(f"price tables: {exc}", EXIT_USAGE)
    # Records the tables in force and brings the projection to the head, so the plan is
    # made against every message accepted so far (a dry run appends nothing).
    if not dry_run and run_project(database, settings, wait=True) is None:
        fail("another projector is active; nothing done", EXIT_FAILURE)
    try:
        with database.read() as conn:
            table = table_to_apply(conn, scope, version)
            plan = plan_reprice(conn, rules, table, first, after)
    except RepriceError as exc:
        fail(str(exc), EXIT_USAGE)
    if dry_run:
        click.echo("dry run, nothing appended: " + "\n".join(plan.lines()))
        return
    result = append(database, [reprice_event(plan, note.strip())])
    run_project(database, settings, wait=True)
    with database.read() as conn:
        plan.after = totals(conn, scope, first, after)
    click.echo(f"repriced at position {result.positions[0]}: " + "\n".join(plan.lines()))
