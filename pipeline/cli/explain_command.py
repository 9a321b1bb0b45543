"""``smsrecon explain ID``: a message's audit trail, optionally as of a point in the log."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from pipeline.cli.context import EXIT_FAILURE, app_context, fail, friendly_errors
from pipeline.dispatch.explain import dispatch_section
from pipeline.domain.tariffs import TariffError
from pipeline.projector.explain import (
    AsOf,
    SectionProvider,
    explain_message,
    mismatch_section,
    render_text,
)
from pipeline.projector.runner import fold_rules

#: The sections shown after the trail, in this order. Listed here, in the CLI, because the
#: projector (which folds the trail) must not import the dispatcher.
SECTIONS: tuple[SectionProvider, ...] = (mismatch_section, dispatch_section)


def parse_as_of(value: str | None) -> AsOf:
    """A log position (digits) or an RFC 3339 time with a zone."""
    if value is None:
        return AsOf()
    if value.isdigit():
        return AsOf(position=int(value))
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--as-of: not a position or an RFC 3339 time: {value!r}")
    if when.tzinfo is None:
        fail(f"--as-of: the time has no zone (add Z or an offset): {value!r}")
    return AsOf(time=when.astimezone(UTC))


@click.command()
@click.argument("message_id")
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="TIME|POSITION",
    help="Show the message as it was at this log position or recorded time.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@friendly_errors
def explain(message_id: str, as_of: str | None, fmt: str) -> None:
    """Show MESSAGE_ID's events with the effect of each, its state and its mismatches."""
    point = parse_as_of(as_of)
    app = app_context()
    try:
        rules = fold_rules(app.settings)
    except TariffError as exc:
        fail(f"billing.tariffs: {exc}")
    with app.database().read() as conn:
        doc = explain_message(conn, message_id, rules, point, SECTIONS)
    if doc is None:
        click.echo(f"smsrecon: no events for message {message_id}", err=True)
        raise SystemExit(EXIT_FAILURE)
    if fmt == "json":
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(render_text(doc))
