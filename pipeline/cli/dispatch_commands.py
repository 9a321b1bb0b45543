"""``smsrecon dispatch``, ``resend`` and ``deliveries``: sending statuses to Altegio.

``dispatch`` exits 0 when the run went through (transient failures are retried later and
are not a failure), 1 when it left something for a person: a message parked or expired, or
a partner's circuit opened or still open (see docs/dispatcher.md), 2 for configuration or
schema problems, a configured partner's token variable unset or too short included.
"""

from __future__ import annotations

import json

import click

from pipeline import logsafe
from pipeline.cli.context import EXIT_FAILURE, EXIT_USAGE, app_context, fail, friendly_errors
from pipeline.eventlog.model import utc_now


def _setup_logging() -> None:
    """Log to stderr; tokens are masked in every record before any handler sees it."""
    from pipeline.logs import configure_logging

    configure_logging(app_context().settings.logging)


@click.command()
@click.option("--until-idle", is_flag=True, help="Keep claiming until nothing is due.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Claim at most N messages.")
@friendly_errors
def dispatch(until_idle: bool, limit: int | None) -> None:
    """Send changed statuses to Altegio (one round, or until idle)."""
    from pipeline.dispatch.dispatcher import dispatch_once
    from pipeline.dispatch.routes import PartnerTokens

    _setup_logging()
    app = app_context()
    PartnerTokens(app.settings).require_all()  # a missing token: exit 2, before any work
    summary = dispatch_once(app.database(), app.settings, until_idle=until_idle, limit=limit)
    click.echo(summary.line())
    if summary.needs_attention:
        raise SystemExit(EXIT_FAILURE)


@click.command()
@click.argument("message_ids", nargs=-1)
@click.option("--parked", is_flag=True, help="Every parked or expired message.")
@click.option("--kind", default=None, help="With --parked: only those held for this kind.")
@friendly_errors
def resend(message_ids: tuple[str, ...], parked: bool, kind: str | None) -> None:
    """Send the current status of messages again at the next dispatch."""
    from pipeline.dispatch.manage import resend as queue_resend

    if parked == bool(message_ids):
        fail("give message ids or --parked (not both)", EXIT_USAGE)
    if kind is not None and not parked:
        fail("--kind only goes with --parked", EXIT_USAGE)
    result = queue_resend(
        app_context().database(),
        now=utc_now(),
        message_ids=message_ids,
        parked=parked,
        kind=kind,
    )
    parts = [f"resend: {len(result.queued)} queued"]
    if result.in_flight:
        parts.append(f"{len(result.in_flight)} in flight (left alone)")
    if result.unknown:
        parts.append(f"{len(result.unknown)} without a delivery: {', '.join(result.unknown)}")
    click.echo(", ".join(parts))
    if result.unknown:
        raise SystemExit(EXIT_FAILURE)


@click.command()
@click.option(
    "--state",
    type=click.Choice(["pending", "in_flight", "acknowledged", "parked", "expired"]),
    default=None,
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--limit", type=click.IntRange(1), default=None)
@friendly_errors
def deliveries(state: str | None, fmt: str, limit: int | None) -> None:
    """List deliveries to Altegio and their state (tokens masked)."""
    from pipeline.dispatch.manage import list_deliveries

    rows = list_deliveries(app_context().database(), now=utc_now(), state=state, limit=limit)
    if fmt == "json":
        click.echo(json.dumps([r.as_json() for r in rows], ensure_ascii=False, indent=2))
        return
    click.echo(
        f"{'message_id':<20} {'partner':<10} {'state':<13} {'status':>6} {'ver':>4} "
        f"{'acked':>5} {'tries':>5} {'http':>4}  next attempt / reason"
    )
    for r in rows:
        when = r.next_attempt_at.isoformat().replace("+00:00", "Z") if r.next_attempt_at else ""
        note = r.held_reason or when or (r.last_error or "")
        click.echo(
            f"{r.message_id:<20} {r.partner or '-':<10} {r.state:<13} {r.status or '-':>6} "
            f"{r.version:>4} {r.acked_version or '-':>5} {r.attempts:>5} "
            f"{r.last_status_code or '-':>4}  {logsafe.mask_secrets(note)}"
        )
    click.echo(f"{len(rows)} deliveries")
