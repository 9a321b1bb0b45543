"""The one scheduling policy every smsrecon job uses.

``max_instances=1``: a run that outlasts its interval is never joined by a second one in
this process. ``coalesce=True``: the ticks it missed become one run, not a burst.
``misfire_grace_time``: a run that starts up to that late still runs. Which process does
the work is decided by the database (the projector lock, the dispatcher's leases), never
by the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from apscheduler.schedulers.base import BaseScheduler

from pipeline.config import Settings


def add_interval_job(
    scheduler: BaseScheduler,
    func: Callable[..., Any],
    *,
    every: float,
    args: Sequence[Any],
    job_id: str,
    name: str,
    settings: Settings,
) -> None:
    scheduler.add_job(
        func,
        trigger="interval",
        seconds=every,
        args=tuple(args),
        id=job_id,
        name=name,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(1, int(settings.scheduler.misfire_grace_time)),
        replace_existing=True,
    )
