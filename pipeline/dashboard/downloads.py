"""The dashboard's downloads: each report of ``smsrecon report``, computed by the same
definition through the same writer, so a download is byte for byte the file
``smsrecon report NAME --from … --to … [--partner …] [--carrier …] --format csv|parquet
--output FILE`` writes at the same projection position.

The file is written to a temporary directory first (a month of messages is far larger than
a page's memory should hold) and streamed from there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline.dashboard.filters import Filters
from pipeline.db.engine import Database
from pipeline.reports import formats
from pipeline.reports.catalog import REPORTS
from pipeline.reports.model import ReportParams
from pipeline.reports.runs import run_report

FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def report_params(f: Filters, reporting_currency: str) -> ReportParams:
    return ReportParams(f.first, f.after, f.partner, f.carrier, reporting_currency)


def cli_command(name: str, f: Filters, fmt: str) -> str:
    """The ``smsrecon report`` command that writes the same file (shell-quoted)."""
    import shlex

    words = ["smsrecon", "report", name, "--from", f.first.isoformat(),
             "--to", f.after.isoformat()]  # fmt: skip
    if f.partner:
        words += ["--partner", f.partner]
    if f.carrier:
        words += ["--carrier", f.carrier]
    words += ["--format", fmt, "--output", file_name(name, f, fmt)]
    return shlex.join(words)


def file_name(name: str, f: Filters, fmt: str) -> str:
    return f"{name}_{f.first.isoformat()}_{f.last.isoformat()}.{fmt}"


def write_report(
    database: Database, name: str, fmt: str, f: Filters, reporting_currency: str, directory: Path
) -> Path:
    """Write the report to a file in ``directory`` as ``smsrecon report`` would; its path."""
    definition = REPORTS[name]
    path = directory / file_name(name, f, fmt)

    def write(rows):  # type: ignore[no-untyped-def]
        if fmt == "parquet":
            return formats.write_parquet(definition, rows, str(path))
        with path.open("w", encoding="utf-8", newline="") as out:
            return formats.write_csv(definition, rows, out)

    run_report(database, definition, report_params(f, reporting_currency), write)
    return path


def scratch_directory() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="smsrecon-dashboard-")
