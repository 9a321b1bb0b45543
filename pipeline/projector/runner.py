"""Run the projection to the head of the log: the function the CLI and the job both call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.domain.tariffs import rules_from_settings
from pipeline.projector import crashpoints
from pipeline.projector.derive import FoldRules
from pipeline.projector.finance import CarrierTerms, FinanceRules
from pipeline.projector.lock import projector_lock
from pipeline.projector.project import project_batch
from pipeline.projector.statistics import StatisticsSchedule
from pipeline.projector.store import LIVE, ProjectionTables, read_checkpoint


class ProjectorObserver(Protocol):
    """What a metrics collector hears from a projection run (``pipeline.metrics.stages``)."""

    def batch_projected(self, events: int, seconds: float) -> None: ...

    def caught_up(self, unix_time: float) -> None: ...


@dataclass(frozen=True)
class ProjectSummary:
    events: int
    messages_changed: int
    opened: int
    resolved: int
    position: int
    lag: int
    elapsed: float

    def line(self) -> str:
        return (
            f"projected {self.events} events, {self.messages_changed} messages changed, "
            f"mismatches opened {self.opened} resolved {self.resolved}, "
            f"checkpoint {self.position}, lag {self.lag}, {self.elapsed:.2f}s"
        )


def fold_rules(settings: Settings) -> FoldRules:
    """Billing and finance rules from the settings; raises TariffError on a bad tariff."""
    billing = settings.billing
    carriers = {
        name: CarrierTerms(
            rates=tuple(rules_from_settings(carrier.rates)),
            charge_on=carrier.charge_on,
            tolerance_abs=carrier.tolerance.abs,
            tolerance_rel=carrier.tolerance.rel,
        )
        for name, carrier in settings.carriers.items()
    }
    return FoldRules(
        tariffs=rules_from_settings(billing.tariffs),
        non_chargeable=frozenset(billing.non_chargeable_statuses),
        rounding=billing.rounding,
        stale_after=settings.projector.stale_after,
        finance=FinanceRules(
            carriers=carriers, reporting_currency=settings.finance.reporting_currency
        ),
    )


def head_position(db: Database) -> int:
    with db.read() as conn:
        return int(conn.scalar(select(func.max(events.c.position))) or 0)


def checkpoint_position(db: Database, tables: ProjectionTables = LIVE) -> int:
    with db.write() as conn:
        return read_checkpoint(conn, tables)[0]


def catch_up(
    db: Database,
    rules: FoldRules,
    *,
    grace_seconds: float,
    batch_size: int,
    max_events: int | None = None,
    tables: ProjectionTables = LIVE,
    upto: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    observer: ProjectorObserver | None = None,
) -> tuple[int, int, int, int, int]:
    """Project batch after batch until the log (or ``upto``, or ``max_events``) is reached.

    Each batch is its own transaction. Failure policy: a crash mid-batch rolls that batch
    back and the next run starts from the last committed checkpoint.
    """
    applied = changed = opened = resolved = 0
    position = 0
    statistics = StatisticsSchedule(db, tables)
    while max_events is None or applied < max_events:
        limit = batch_size if max_events is None else min(batch_size, max_events - applied)
        batch_started = time.monotonic()
        with db.write() as conn:
            result = project_batch(
                conn, tables, rules, grace_seconds=grace_seconds, limit=limit, upto=upto
            )
        position = result.position
        if result.events == 0:
            break
        if observer is not None:
            observer.batch_projected(result.events, time.monotonic() - batch_started)
        crashpoints.reached("batch_committed")
        applied += result.events
        statistics.applied(applied)
        changed += result.messages_changed
        opened += result.opened
        resolved += result.resolved
        if on_batch is not None:
            on_batch(result.events)
    return applied, changed, opened, resolved, position


def run_project(
    db: Database,
    settings: Settings,
    *,
    batch_size: int | None = None,
    max_events: int | None = None,
    wait: bool = False,
    on_batch: Callable[[int], None] | None = None,
    observer: ProjectorObserver | None = None,
) -> ProjectSummary | None:
    """Catch up under the projector lock; None when another projector holds it.

    The price tables in force are recorded first (``record_prices``): a table changed in
    the configuration prices only messages the log accepts after it is recorded.
    """
    from pipeline.prices.record import record_prices

    rules = fold_rules(settings)
    record_prices(db, settings)
    started = time.monotonic()
    with projector_lock(db, wait=wait) as acquired:
        if not acquired:
            return None
        applied, changed, opened, resolved, position = catch_up(
            db,
            rules,
            grace_seconds=settings.projector.correlation_grace,
            batch_size=batch_size or settings.projector.batch_size,
            max_events=max_events,
            on_batch=on_batch,
            observer=observer,
        )
    if applied == 0:
        position = checkpoint_position(db)
    lag = max(0, head_position(db) - position)
    if observer is not None and max_events is None:
        # Ran until a batch found nothing more: caught up with the log as it was then.
        observer.caught_up(time.time())
    return ProjectSummary(
        applied, changed, opened, resolved, position, lag, time.monotonic() - started
    )
