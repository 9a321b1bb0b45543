"""``smsrecon mismatches``: what needs a person's eye, and closing it with a note."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime

import click

from pipeline.cli.context import EXIT_FAILURE, app_context, fail
from pipeline.mismatches import ACKNOWLEDGED, OPEN, RESOLVED, MismatchError

STATUSES = (OPEN, RESOLVED, ACKNOWLEDGED, "all")


@click.group()
def mismatches() -> None:
    """Mismatches: conflicting reports, refusals by Altegio, missing tariffs, …"""


@mismatches.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=OPEN, show_default=True)
@click.option("--kind", default=None, help="Only this kind (e.g. conflicting_final).")
@click.option("--message", "message_id", default=None, help="Only this message.")
@click.option("--limit", type=click.IntRange(1), default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def list_command(
    status: str, kind: str | None, message_id: str | None, limit: int | None, fmt: str
) -> None:
    """List mismatches, oldest first (open ones by default)."""
    from pipeline.mismatches import list_mismatches

    database = app_context().database()
    with database.read() as conn:
        rows = list_mismatches(
            conn,
            status=None if status == "all" else status,
            kind=kind,
            message_id=message_id,
            limit=limit,
        )
    if fmt == "json":
        for m in rows:
            click.echo(
                json.dumps(
                    {
                        "id": m.id, "message_id": m.message_id, "subject": m.subject,
                        "kind": m.kind, "origin": m.origin, "status": m.status,
                        "detail": m.detail, "note": m.note,
                        "opened_at": m.opened_at.isoformat(),
                        "resolved_at": m.resolved_at.isoformat() if m.resolved_at else None,
                    },
                    ensure_ascii=False, sort_keys=True, default=str,
                )
            )  # fmt: skip
        return
    for m in rows:
        detail = json.dumps(m.detail, ensure_ascii=False, sort_keys=True, default=str)
        click.echo(
            f"#{m.id:<6} {m.status:<12} {m.kind:<24} {m.message_id or m.subject:<16} "
            f"{m.opened_at:%Y-%m-%d %H:%M}Z  {detail[:100]}"
        )
    click.echo(f"{len(rows)} mismatch(es)")


@mismatches.command("ack")
@click.argument("mismatch_id", type=int)
@click.option("--note", required=True, help="Why it is closed (kept with the mismatch).")
@click.option("--who", default=None, help="Who closes it (default: the login name).")
def ack(mismatch_id: int, note: str, who: str | None) -> None:
    """Close an open mismatch with a note; recorded as a mismatch.acknowledged event."""
    from pipeline.mismatches import acknowledge_mismatch

    if not note.strip():
        fail("--note must say why the mismatch is closed")
    who = who or getpass.getuser()
    database = app_context().database()
    try:
        with database.write() as conn:
            closed = acknowledge_mismatch(
                conn, mismatch_id, who=who, note=note.strip(), now=datetime.now(UTC)
            )
    except MismatchError as exc:
        fail(str(exc), EXIT_FAILURE)
    if not closed:
        # A projector-owned mismatch closes when the projector applies the event: do it now
        # rather than at the next scheduled run (waiting if another projector is active).
        from pipeline.projector.runner import run_project

        run_project(database, app_context().settings, wait=True)
    click.echo(f"mismatch {mismatch_id} acknowledged by {who}")
