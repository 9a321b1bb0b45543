"""Entry point: global options and the command table (commands load on first use)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from pipeline.cli.context import AppContext

# One loader per command, each importing its module only when the command runs, so a
# one-shot cron command does not pay for the HTTP server's imports. Plain imports (not
# module names in strings), so a renamed module or command fails the linter, not a user.


def _db() -> click.Command:
    from pipeline.cli.db_commands import db

    return db


def _dashboard() -> click.Command:
    from pipeline.cli.dashboard_command import dashboard

    return dashboard


def _deliveries() -> click.Command:
    from pipeline.cli.dispatch_commands import deliveries

    return deliveries


def _dispatch() -> click.Command:
    from pipeline.cli.dispatch_commands import dispatch

    return dispatch


def _demo() -> click.Command:
    from pipeline.cli.demo_command import demo

    return demo


def _events() -> click.Command:
    from pipeline.cli.event_commands import events

    return events


def _explain() -> click.Command:
    from pipeline.cli.explain_command import explain

    return explain


def _fx() -> click.Command:
    from pipeline.cli.fx_commands import fx

    return fx


def _project() -> click.Command:
    from pipeline.cli.project_commands import project

    return project


def _replay() -> click.Command:
    from pipeline.cli.project_commands import replay

    return replay


def _replay_worker() -> click.Command:
    from pipeline.cli.replay_worker_command import replay_worker

    return replay_worker


def _ingest() -> click.Command:
    from pipeline.cli.ingest_commands import ingest

    return ingest


def _mismatches() -> click.Command:
    from pipeline.cli.mismatch_commands import mismatches

    return mismatches


def _quarantine() -> click.Command:
    from pipeline.cli.ingest_commands import quarantine

    return quarantine


def _reconcile() -> click.Command:
    from pipeline.cli.reconcile_commands import reconcile

    return reconcile


def _report() -> click.Command:
    from pipeline.cli.report_commands import report

    return report


def _period() -> click.Command:
    from pipeline.cli.report_commands import period

    return period


def _prices() -> click.Command:
    from pipeline.cli.prices_commands import prices

    return prices


def _resend() -> click.Command:
    from pipeline.cli.dispatch_commands import resend

    return resend


def _run() -> click.Command:
    from pipeline.cli.run_command import run

    return run


def _sandbox() -> click.Command:
    from pipeline.cli.sandbox_commands import sandbox

    return sandbox


def _serve() -> click.Command:
    from pipeline.cli.ingest_commands import serve

    return serve


#: Every command: name -> its loader.
COMMANDS: dict[str, Callable[[], click.Command]] = {
    "dashboard": _dashboard,
    "db": _db,
    "deliveries": _deliveries,
    "dispatch": _dispatch,
    "demo": _demo,
    "events": _events,
    "explain": _explain,
    "fx": _fx,
    "project": _project,
    "replay": _replay,
    "replay-worker": _replay_worker,
    "ingest": _ingest,
    "mismatches": _mismatches,
    "prices": _prices,
    "quarantine": _quarantine,
    "period": _period,
    "reconcile": _reconcile,
    "report": _report,
    "resend": _resend,
    "run": _run,
    "sandbox": _sandbox,
    "serve": _serve,
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        load = COMMANDS.get(cmd_name)
        return None if load is None else load()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $SMSRECON_CONFIG, else ./config.yaml).",
)
@click.option("--database-url", default=None, help="Overrides database.url.")
@click.version_option(package_name="smsrecon")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, database_url: str | None) -> None:
    """smsrecon: SMS delivery statuses and billing, from carrier reports to Altegio."""
    app = AppContext(config_path=config_path, overrides={"database.url": database_url})
    ctx.obj = app
    ctx.call_on_close(app.close)


def main(argv: list[str] | None = None) -> Any:
    """The console script. A database that stops answering mid-command is one line on
    stderr and exit 1, not a traceback (the work done so far is committed or rolled back
    whole, so running the command again is safe)."""
    from sqlalchemy.exc import OperationalError

    from pipeline.cli.context import EXIT_FAILURE, database_error_text, fail

    try:
        return cli.main(args=argv, prog_name="smsrecon")
    except OperationalError as exc:
        fail(f"database error: {database_error_text(exc)}", EXIT_FAILURE)
