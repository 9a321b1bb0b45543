"""``smsrecon report`` and ``smsrecon period``: reports, pinned runs, period close.

See docs/reports.md.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import IO, Any

import click

from pipeline.cli.context import EXIT_FAILURE, EXIT_USAGE, app_context, fail, friendly_errors
from pipeline.cli.remote_options import remote_options
from pipeline.reports.catalog import REPORTS

FORMATS = ("table", "csv", "json", "parquet")


@click.group()
def report() -> None:
    """Reports over the projection; pinned runs: verify, diff; corrections after a close."""


def _day(_ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO date (YYYY-MM-DD): {value[:20]!r}") from None


def _make_report_command(name: str) -> click.Command:
    definition = REPORTS[name]

    @click.command(name, help=f"The {name} report, one row per {definition.grain}.")
    @click.option("--from", "date_from", required=True, callback=_day, help="First day (UTC).")
    @click.option("--to", "date_to", required=True, callback=_day, help="Day after the last.")
    @click.option("--partner", default=None, help="Only this partner's messages.")
    @click.option("--carrier", default=None, help="Only this carrier's messages.")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table")
    @click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
    @click.option("--save", is_flag=True, help="Pin this run (report_runs + report.generated).")
    @friendly_errors
    def command(
        date_from: date,
        date_to: date,
        partner: str | None,
        carrier: str | None,
        fmt: str,
        output: Path | None,
        save: bool,
    ) -> None:
        from pipeline.reports.model import ReportParams
        from pipeline.reports.runs import run_report

        if date_from >= date_to:
            fail("--from must be before --to (--to is the day after the last)", EXIT_USAGE)
        if fmt == "parquet" and output is None:
            fail("--format parquet writes a file: say --output FILE", EXIT_USAGE)
        app = app_context()
        params = ReportParams(date_from, date_to, partner, carrier,
                              app.settings.finance.reporting_currency)  # fmt: skip
        database = app.database()
        writer = _writer(definition, fmt, output)
        count, position, run = run_report(database, definition, params, writer, save=save)
        note = f"{name}: {count} rows as of log position {position}"
        if run is not None:
            note += f"; saved as run {run.id} (sha256 {run.sha256})"
        click.echo(note, err=True)

    return command


def _writer(definition: Any, fmt: str, output: Path | None) -> Any:
    from pipeline.reports import formats

    def write(rows: Any) -> int:
        if fmt == "parquet":
            return formats.write_parquet(definition, rows, str(output))
        write_text = {
            "csv": formats.write_csv,
            "json": formats.write_json,
            "table": formats.write_table,
        }[fmt]
        if output is None:
            return write_text(definition, rows, sys.stdout)
        with output.open("w", encoding="utf-8", newline="") as out:
            return write_text(definition, rows, out)

    return write


for _name in REPORTS:
    report.add_command(_make_report_command(_name))


@report.command("verify")
@click.argument("run_id", type=int)
@click.option("--batch-size", type=click.IntRange(1), default=None)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    help="Fold in this many processes, each its share of the messages (docs/projector.md).",
)
@remote_options
@friendly_errors
def verify_command(
    run_id: int,
    batch_size: int | None,
    workers: int,
    local_workers: int | None,
    worker_timeout: float,
) -> None:
    """Rebuild run RUN_ID from the log up to its pinned position and compare hashes."""
    from pipeline.cli.context import progress
    from pipeline.cli.event_archive import refuse_missing_months
    from pipeline.cli.remote_options import remote_failures, remote_split
    from pipeline.projector.runner import fold_rules
    from pipeline.reports.runs import RunNotFound, verify_run

    app = app_context()
    settings = app.settings
    database = app.database()
    refuse_missing_months(database)  # archived months detached from the log
    remote = remote_split(database, workers, local_workers, worker_timeout)
    try:
        with remote_failures(), progress(None, f"rebuilding run {run_id}", enabled=False) as bar:
            verdict = verify_run(
                database,
                fold_rules(settings),
                run_id,
                grace_seconds=settings.projector.correlation_grace,
                batch_size=batch_size or settings.projector.batch_size,
                on_batch=bar.advance,
                workers=workers,
                remote=remote,
            )
    except RunNotFound as exc:
        fail(str(exc), EXIT_USAGE)
    run = verdict.run
    if verdict.equal:
        click.echo(
            f"run {run.id} ({run.report}) verified: {verdict.rows} rows as of position "
            f"{run.as_of_position}, sha256 {run.sha256}"
        )
        return
    click.echo(
        f"run {run.id} ({run.report}) differs: pinned sha256 {run.sha256} ({run.rows} rows), "
        f"rebuilt {verdict.sha256} ({verdict.rows} rows) as of position {run.as_of_position}"
    )
    for line in verdict.only_pinned:
        click.echo(f"- pinned:  {line.rstrip()}")
    for line in verdict.only_rebuilt:
        click.echo(f"+ rebuilt: {line.rstrip()}")
    raise SystemExit(EXIT_FAILURE)


@report.command("diff")
@click.argument("run_id", type=int)
@friendly_errors
def diff_command(run_id: int) -> None:
    """What the log learned after run RUN_ID's position, for the messages in its scope."""
    from pipeline.reports.changes import changes_since
    from pipeline.reports.runs import RunNotFound, load_run

    database = app_context().database()
    try:
        with database.read() as conn:
            run, _ = load_run(conn, run_id)
    except RunNotFound as exc:
        fail(str(exc), EXIT_USAGE)
    count = 0
    for change in changes_since(database, run.as_of_position, run.params):
        click.echo(change.line())
        count += 1
    click.echo(
        f"run {run.id} ({run.report}): {count} change(s) after position {run.as_of_position}"
    )


@report.command("corrections")
@click.option("--period", "month", required=True, help="The closed month, YYYY-MM.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
@friendly_errors
def corrections_command(month: str, fmt: str) -> None:
    """Each message of a closed month whose fields changed since the close."""
    from pipeline.reports.formats import csv_line
    from pipeline.reports.periods import PeriodRefused, corrections

    database = app_context().database()
    try:
        run, found = corrections(database, month)
    except PeriodRefused as exc:
        fail(str(exc), EXIT_USAGE)
    out: IO[str] = sys.stdout
    if fmt == "csv":
        out.write(csv_line(["message_id", "field", "closed", "current"]))
    count = 0
    for c in found:
        count += 1
        if fmt == "csv":
            out.write(csv_line([c.message_id, c.field, c.closed, c.current]))
        else:
            click.echo(f"{c.message_id}  {c.field}: closed {c.closed!r}, now {c.current!r}")
    click.echo(
        f"period {month}: {count} correction(s) since run {run.id} (position {run.as_of_position})",
        err=fmt == "csv",
    )


@click.group()
def period() -> None:
    """Close a month (pin its standard reports) or reopen it."""


@period.command("close")
@click.argument("month")
@click.option("--note", default=None, help="Why, or who; kept in the period.closed event.")
@friendly_errors
def close_command(month: str, note: str | None) -> None:
    """Save the standard reports for MONTH (YYYY-MM) and record period.closed."""
    from pipeline.reports.periods import PeriodRefused, close_period

    app = app_context()
    currency = app.settings.finance.reporting_currency
    try:
        runs, position = close_period(app.database(), month, note=note, reporting_currency=currency)
    except PeriodRefused as exc:
        fail(str(exc), EXIT_USAGE)
    for run in runs:
        click.echo(f"run {run.id}: {run.report}, {run.rows} rows, sha256 {run.sha256}")
    as_of = runs[0].as_of_position if runs else 0
    click.echo(f"period {month} closed as of position {as_of} (event {position})")


@period.command("reopen")
@click.argument("month")
@click.option("--note", required=True, help="Why the month is open again (required).")
@friendly_errors
def reopen_command(month: str, note: str) -> None:
    """Record period.reopened for MONTH; its closed runs stay as they were."""
    from pipeline.reports.periods import PeriodRefused, reopen_period

    try:
        position = reopen_period(app_context().database(), month, note=note)
    except PeriodRefused as exc:
        fail(str(exc), EXIT_USAGE)
    click.echo(f"period {month} reopened (event {position})")
