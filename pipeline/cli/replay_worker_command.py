"""``smsrecon replay-worker``: fold one shard of a parallel fold on this machine, for a
``replay`` or ``report verify`` started elsewhere with ``--local-workers``."""

from __future__ import annotations

import click

from pipeline.cli.context import (
    EXIT_FAILURE,
    EXIT_NOT_RUN,
    EXIT_USAGE,
    app_context,
    fail,
    friendly_errors,
)
from pipeline.projector.board import DEFAULT_TIMEOUT


def _shard(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    index, slash, count = value.partition("/")
    if slash and index.isdigit() and count.isdigit() and int(index) < int(count) <= 64:
        return int(index), int(count)
    raise click.BadParameter(f"not K/N with 0 <= K < N <= 64: {value[:20]!r}")


@click.command("replay-worker")
@click.option(
    "--shard",
    required=True,
    metavar="K/N",
    callback=_shard,
    help="The shard this worker folds: K of N (0..N-1), as the coordinator's --workers N.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the coordinator's round, or for a sign of it between rounds.",
)
@friendly_errors
def replay_worker(shard: tuple[int, int], timeout: float) -> None:
    """Fold shard K of N of a `replay --local-workers` or `report verify --local-workers`
    run on another machine (same configuration, same PostgreSQL).

    Exits 0 once the coordinator has its results (the verdict is the coordinator's); 2
    when this worker cannot serve the run (SQLite, another N, a shard the coordinator
    folds, other fold rules); 4 when another worker claimed the shard or no round came
    within --timeout; 1 when the fold failed, or the coordinator ended the run or went
    silent while this worker still had work.
    """
    from pipeline.domain.tariffs import TariffError
    from pipeline.projector.remote import (
        NoRound,
        RunEnded,
        ShardFoldFailed,
        ShardTaken,
        WorkerRefused,
        serve_shard,
    )
    from pipeline.projector.runner import fold_rules

    index, count = shard
    app = app_context()
    database = app.database()
    try:
        rules = fold_rules(app.settings)
    except TariffError as exc:
        fail(f"billing.tariffs: {exc}")
    try:
        outcome = serve_shard(database, rules, index, count, timeout=timeout, say=click.echo)
    except WorkerRefused as exc:
        fail(str(exc), EXIT_USAGE)
    except (ShardTaken, NoRound) as exc:
        fail(str(exc), EXIT_NOT_RUN)
    except (RunEnded, ShardFoldFailed) as exc:
        fail(str(exc), EXIT_FAILURE)
    ended = {
        "agreed": "the workers agreed; the coordinator merges",
        "serial": "the workers did not agree; the coordinator folds in one process",
    }.get(outcome, "the coordinator ended the run (its output has the verdict)")
    click.echo(f"shard {index}/{count}: done; {ended}")
