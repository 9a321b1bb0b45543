"""``smsrecon fx``: exchange rates for margins in finance.reporting_currency."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.context import EXIT_USAGE, app_context, fail
from pipeline.eventlog import append_in
from pipeline.fx.current import current_rates
from pipeline.fx.ratefile import RateFileError, parse_rate_file, rate_event, rate_text

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
    # One transaction for the whole file: it is appended whole or not at all, even if the
    # database fails midway (a rate file is days x pairs rows, never large).
    from pipeline.cli.prices_commands import record_or_fail

    app = app_context()
    db = app.database()
    record_or_fail(db, app.settings)
    with db.write() as conn:
        counting = current_rates(conn, [(fx.day, fx.base, fx.quote) for fx in rates])
        new, same = [], 0
        for fx in rates:
            now = counting.get((fx.day, fx.base, fx.quote))
            if now is not None and now[0] == rate_text(fx.rate):
                same += 1
                continue
            new.append(rate_event(fx, after=now[1] if now else 0))
        result = append_in(conn, new)
    click.echo(f"appended {len(result.appended)}, duplicates {same + len(result.duplicates)}")
