"""Entry point: global options and the command table (commands load on first use)."""

from __future__ import annotations

import importlib
from typing import Any

import click

from pipeline.cli.context import AppContext

#: name -> "module:attribute". Modules are imported only when their command runs, so a
#: one-shot cron command does not pay for the HTTP server's imports.
COMMANDS: dict[str, str] = {
    "db": "pipeline.cli.db_commands:db",
    "deliveries": "pipeline.cli.dispatch_commands:deliveries",
    "dispatch": "pipeline.cli.dispatch_commands:dispatch",
    "demo": "pipeline.cli.demo_command:demo",
    "events": "pipeline.cli.event_commands:events",
    "explain": "pipeline.cli.explain_command:explain",
    "project": "pipeline.cli.project_commands:project",
    "replay": "pipeline.cli.project_commands:replay",
    "ingest": "pipeline.cli.ingest_commands:ingest",
    "mismatches": "pipeline.cli.mismatch_commands:mismatches",
    "quarantine": "pipeline.cli.ingest_commands:quarantine",
    "resend": "pipeline.cli.dispatch_commands:resend",
    "run": "pipeline.cli.run_command:run",
    "sandbox": "pipeline.cli.sandbox_commands:sandbox",
    "serve": "pipeline.cli.ingest_commands:serve",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


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
