"""``smsrecon project`` and ``smsrecon replay``: build and check the read model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from pipeline.cli.context import (
    EXIT_FAILURE,
    EXIT_NOT_RUN,
    app_context,
    fail,
    friendly_errors,
    progress,
)
from pipeline.cli.remote_options import remote_failures, remote_options, remote_split
from pipeline.db.engine import Database
from pipeline.domain.tariffs import TariffError
from pipeline.projector.lock import projector_lock
from pipeline.projector.runner import checkpoint_position, fold_rules, head_position, run_project

BUSY = "another projector is active"


@click.command()
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=None,
    help="Events folded per transaction (default: projector.batch_size).",
)
@click.option(
    "--max-events",
    type=click.IntRange(1),
    default=None,
    help="Stop after this many events (default: catch up to the head).",
)
@click.option("--wait", is_flag=True, help="Wait for another active projector instead of exiting.")
@friendly_errors
def project(batch_size: int | None, max_events: int | None, wait: bool) -> None:
    """Fold new events into message_state and mismatches (exactly once)."""
    app = app_context()
    settings = app.settings
    database = app.database()
    try:
        fold_rules(settings)
    except TariffError as exc:
        fail(f"billing.tariffs: {exc}")
    behind = max(0, head_position(database) - checkpoint_position(database))
    total = min(behind, max_events) if max_events else behind
    with progress(total, "projecting", enabled=total > 0) as bar:
        summary = run_project(
            database,
            settings,
            batch_size=batch_size,
            max_events=max_events,
            wait=wait,
            on_batch=bar.advance,
        )
    if summary is None:
        click.echo(f"{BUSY}; nothing done")
        return
    click.echo(summary.line())


@click.command()
@click.option("--verify", "mode", flag_value="verify", help="Fold from scratch and compare.")
@click.option("--rebuild", "mode", flag_value="rebuild", help="Fold from scratch and swap in.")
@click.option("--batch-size", type=click.IntRange(1), default=None)
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for an active projector to finish instead of exiting 4 (for cron).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    help="Fold in this many processes, each its share of the messages (docs/projector.md).",
)
@remote_options
@friendly_errors
def replay(
    mode: str | None,
    batch_size: int | None,
    wait: bool,
    workers: int,
    local_workers: int | None,
    worker_timeout: float,
) -> None:
    """Fold the whole log from scratch: --verify compares, --rebuild replaces the read model.

    While another projector is active it does nothing and exits 4 (not 0: a scheduled
    verify that checked nothing must not look like one that passed); --wait waits instead.
    """
    from pipeline.projector import replay as replaying

    if mode is None:
        fail("say --verify or --rebuild")
    app = app_context()
    settings = app.settings
    database = app.database()
    try:
        rules = fold_rules(settings)
    except TariffError as exc:
        fail(f"billing.tariffs: {exc}")
    from pipeline.cli.event_archive import refuse_missing_months
    from pipeline.cli.prices_commands import record_or_fail

    # Recorded first, as by every command that projects: a rebuild then folds the tables
    # the log holds, whatever config.yaml says today.
    record_or_fail(database, settings)
    refuse_missing_months(database)  # archived months detached from the log
    remote = remote_split(database, workers, local_workers, worker_timeout)
    size = batch_size or settings.projector.batch_size
    grace = settings.projector.correlation_grace
    with remote_failures(), _replay_lock(database, wait=wait) as acquired:
        if not acquired:
            done = "verified" if mode == "verify" else "rebuilt"
            click.echo(f"{BUSY}; nothing {done} (--wait waits for it)")
            raise SystemExit(EXIT_NOT_RUN)
        target = checkpoint_position(database) if mode == "verify" else head_position(database)
        with progress(target, f"replay --{mode}", enabled=target > 0) as bar:
            if mode == "rebuild":
                position = replaying.rebuild(
                    database, rules, grace_seconds=grace, batch_size=size,
                    on_batch=bar.advance, workers=workers, remote=remote,
                )  # fmt: skip
                click.echo(f"rebuilt message_state and mismatches from {position} events")
                _rebuild_dashboard_rollup(database)
                return
            upto, differences = replaying.verify(
                database,
                rules,
                grace_seconds=grace,
                batch_size=size,
                on_batch=bar.advance,
                report=lambda d: click.echo(d.line()),
                workers=workers,
                remote=remote,
            )
    if differences:
        click.echo(
            f"replay differs from message_state in {differences} place(s) (up to position {upto})"
        )
        raise SystemExit(EXIT_FAILURE)
    click.echo(f"replay matches message_state (up to position {upto})")


def _rebuild_dashboard_rollup(database: Database) -> None:
    """A rebuild under changed settings can change amounts without moving any message's
    ``last_position``, which is all the dashboard's incremental refresh looks at: its daily
    rollup is rebuilt whole here, so the dashboard never shows the read model it replaced."""
    from pipeline.dashboard.rollup import refresh

    with database.write() as conn:
        done = refresh(conn, full=True)
    click.echo(f"rebuilt the dashboard's daily rollup ({done.days} days)")


@contextmanager
def _replay_lock(database: Database, *, wait: bool) -> Iterator[bool]:
    """The projector lock; with ``wait``, says on stderr that it waits before blocking, so a
    log shows why a scheduled replay took long."""
    with projector_lock(database, wait=False) as acquired:
        if acquired or not wait:
            yield acquired
            return
    click.echo(f"{BUSY}; waiting for it to finish", err=True)
    with projector_lock(database, wait=True) as acquired:
        yield acquired
