"""``--local-workers`` and ``--worker-timeout``: a parallel fold with workers on other
machines, for ``replay`` and ``report verify`` alike (docs/projector.md, "Several machines")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from pipeline.cli.context import EXIT_FAILURE, EXIT_NOT_RUN, EXIT_USAGE, fail
from pipeline.db.engine import Database
from pipeline.projector.board import (
    DEFAULT_TIMEOUT,
    Remote,
    RemoteShardFailed,
    RemoteShardTimeout,
)

F = TypeVar("F", bound=Callable[..., Any])


def remote_options(func: F) -> F:
    """The two options, after ``--workers``."""
    func = click.option(
        "--worker-timeout",
        type=click.FloatRange(min=1),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        help="Seconds a shard of another machine may stay unclaimed, or its worker silent, "
        "before the command gives up (exit 4).",
    )(func)
    return click.option(
        "--local-workers",
        type=click.IntRange(0, 64),
        default=None,
        help="Fold shards 0..M-1 here and wait for `smsrecon replay-worker --shard K/N` on "
        "other machines to fold the rest (PostgreSQL; default: all N here).",
    )(func)  # type: ignore[return-value]


def remote_split(
    database: Database, workers: int, local_workers: int | None, timeout: float
) -> Remote | None:
    """The split the options ask for; None when every worker runs here. Exits 2 for a
    split the database cannot have."""
    if local_workers is None or local_workers == workers:
        return None
    if local_workers > workers:
        fail(f"--local-workers {local_workers} is more than --workers {workers}", EXIT_USAGE)
    if not database.backend.networked:
        fail(
            "--local-workers needs PostgreSQL: workers on other machines cannot share a "
            "SQLite file (leave it out; --workers alone runs every worker here)",
            EXIT_USAGE,
        )
    return Remote(local_workers, timeout)


@contextmanager
def remote_failures() -> Iterator[None]:
    """A remote worker's error exits 1; a shard nobody folded in time exits 4 (the check
    did not run). Either way the live tables are as they were."""
    try:
        yield
    except RemoteShardFailed as exc:
        fail(f"{exc}; nothing changed", EXIT_FAILURE)
    except RemoteShardTimeout as exc:
        fail(f"{exc}; nothing changed", EXIT_NOT_RUN)
