"""``smsrecon fx``: exchange rates for margins in finance.reporting_currency."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.context import EXIT_USAGE, app_context, fail
from pipeline.fx.importer import append_rates
from pipeline.fx.ratefile import RateFileError, parse_rate_file

#: A rate file is days x currency pairs: years of daily rates for every pair fit in far less.
MAX_FILE_BYTES = 16 * 1_048_576


@click.group()
def fx() -> None:
    """Exchange rates (fx.rate events)."""


@fx.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(file: Path) -> None:
    """Append the rates of a CSV FILE (header day,base,quote,rate,source) as fx.rate events.

    The whole file is checked first: if any row is bad, each is reported with its row
    number and nothing is appended (exit 2). The rows are appended in one transaction; a
    rate that already counts for its day and pair is skipped, so importing the same file
    again appends nothing.
    """
    if file.stat().st_size > MAX_FILE_BYTES:
        fail(f"{file}: larger than {MAX_FILE_BYTES // 1_048_576} MiB; nothing appended", EXIT_USAGE)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"{file}: not UTF-8 text; nothing appended", EXIT_USAGE)
    try:
        rates = parse_rate_file(text)
    except RateFileError as exc:
        for problem in exc.problems:
            click.echo(f"{file}:{problem}", err=True)
        fail(f"{len(exc.problems)} problem(s) in {file}; nothing appended", EXIT_USAGE)
    from pipeline.cli.prices_commands import record_or_fail

    app = app_context()
    db = app.database()
    record_or_fail(db, app.settings)
    with db.write() as conn:
        imported = append_rates(conn, rates)
    click.echo(f"appended {imported.appended}, duplicates {imported.duplicates}")
