"""Database-backed gauges, read at scrape time with bounded cost.

Each scrape runs a handful of indexed or small-set queries in one read transaction:
- lag: ``max(position)`` and the first row after the checkpoint, by primary key;
- deliveries by stored state: counts over ``ix_deliveries_state`` for the states still in
  play (pending, in_flight, parked, expired), each stopped at ``COUNT_CAP``; acknowledged
  rows (one per message ever sent) are not counted;
- open mismatches by kind and the amount at stake: over ``ix_mismatches_status_kind``, the
  open rows only;
- open quarantine entries: over ``ix_quarantine_status_id`` (ingest caps them);
- circuits: one row per partner.
``smsrecon_events_appended_total{type}`` is a database-wide counter kept incrementally:
each scrape counts by type only the positions appended since the previous scrape (a
primary-key range, at most ``APPEND_STEP`` positions per scrape), so every append counts,
whichever process or cron command made it, and no scrape reads the whole log. It starts
at 0 when this process starts (Prometheus' ``rate`` handles that like any counter reset).
Every node reports the same database-wide values: aggregate them with ``max``, not ``sum``.
If the database cannot be read, these families are left out of that scrape and
``smsrecon_metrics_database_up`` is 0.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import SQLAlchemyError

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.dispatch.tables import DELIVERY_STATES, deliveries, partner_circuits
from pipeline.eventlog.model import utc_now
from pipeline.health.check import HealthCheck, HealthReport
from pipeline.health.decide import Measurements, lag_seconds
from pipeline.ingest.tables import quarantine
from pipeline.mismatches.table import mismatches
from pipeline.projector.lag import read_lag

log = logging.getLogger(__name__)

#: A state's count stops here: the gauge then reads "at least this many".
COUNT_CAP = 1_000_000
#: Log positions one scrape counts at most; the rest are counted by the next scrapes.
APPEND_STEP = 200_000
#: Delivery states counted (acknowledged grows with every message ever sent).
COUNTED_STATES = tuple(s for s in DELIVERY_STATES if s != "acknowledged")


class DatabaseCollector(Collector):
    def __init__(self, db: Database, settings: Settings, health: HealthCheck | None) -> None:
        self._db = db
        self._partners = tuple(settings.altegio.partners)
        self._health = health
        self._lock = threading.Lock()
        #: The last position counted into ``_appended`` (None: not started yet).
        self._counted_to: int | None = None
        self._appended: dict[str, int] = {}

    def describe(self) -> Iterable[Any]:
        # Names only: registering must not query the database.
        described = list(self._families({}, 1.0))
        if self._health is not None:
            described.extend(_health_families(None))
        return described

    def collect(self) -> Iterator[Any]:
        families: list[Any] = []
        with self._lock:
            try:
                with self._db.read() as conn:
                    values = self._read(conn)
                up = 1.0
            except (SQLAlchemyError, OSError) as exc:
                log.warning("metrics: the database could not be read: %s", type(exc).__name__)
                values, up = {}, 0.0
            families.extend(self._families(values, up))
        if self._health is not None:
            families.extend(_health_families(self._health.report()))
        yield from families

    # -- reading ----------------------------------------------------------------------

    def _read(self, conn: Connection) -> dict[str, Any]:
        lag = read_lag(conn)
        self._count_appended(conn, lag.head)
        states = {
            state: _capped_count(conn, deliveries.c.message_id, deliveries.c.state == state)
            for state in COUNTED_STATES
        }
        is_open = mismatches.c.status == "open"
        open_by_kind = dict(
            conn.execute(
                select(mismatches.c.kind, func.count()).where(is_open).group_by(mismatches.c.kind)
            ).all()
        )
        at_stake = conn.execute(
            select(
                mismatches.c.kind,
                mismatches.c.amount_currency,
                func.sum(mismatches.c.amount_at_stake_nano),
            )
            .where(is_open, mismatches.c.amount_at_stake_nano.is_not(None))
            .group_by(mismatches.c.kind, mismatches.c.amount_currency)
        ).all()
        open_quarantine = _capped_count(conn, quarantine.c.id, quarantine.c.status == "open")
        circuits = dict(
            conn.execute(select(partner_circuits.c.partner, partner_circuits.c.state)).all()
        )
        lag_s = lag_seconds(
            Measurements(now=utc_now(), oldest_unprojected_at=lag.oldest_unprojected)
        )
        return {
            "lag_events": lag.events,
            "lag_seconds": lag_s,
            "states": states,
            "open_by_kind": open_by_kind,
            "at_stake": at_stake,
            "quarantine": open_quarantine,
            "circuits": circuits,
        }

    def _count_appended(self, conn: Connection, head: int) -> None:
        if self._counted_to is None:
            self._counted_to = head
            return
        upto = min(head, self._counted_to + APPEND_STEP)
        if upto <= self._counted_to:
            return
        rows = conn.execute(
            select(events.c.type, func.count())
            .where(events.c.position > self._counted_to, events.c.position <= upto)
            .group_by(events.c.type)
        ).all()
        for event_type, count in rows:
            self._appended[event_type] = self._appended.get(event_type, 0) + int(count)
        self._counted_to = upto

    # -- exposition -------------------------------------------------------------------

    def _families(self, values: dict[str, Any], up: float) -> Iterator[Any]:
        yield GaugeMetricFamily(
            "smsrecon_metrics_database_up",
            "1 when this scrape could read the database-backed metrics, else 0.",
            value=up,
        )
        if not values and up:
            values = {"states": {}, "open_by_kind": {}, "at_stake": [], "circuits": {}}
        if not values:
            return
        appended = CounterMetricFamily(
            "smsrecon_events_appended",
            "Events appended to the log since this process started counting, by type "
            "(database-wide: every node reports the same; aggregate with max).",
            labels=["type"],
        )
        for event_type, count in sorted(self._appended.items()):
            appended.add_metric([event_type], count)
        yield appended
        yield GaugeMetricFamily(
            "smsrecon_projector_lag_events",
            "Log positions after the projector's checkpoint.",
            value=values.get("lag_events", 0),
        )
        yield GaugeMetricFamily(
            "smsrecon_projector_lag_seconds",
            "Age of the oldest event the projector has not folded yet (0: none).",
            value=values.get("lag_seconds", 0.0),
        )
        states = GaugeMetricFamily(
            "smsrecon_deliveries",
            f"Deliveries by stored state (acknowledged not counted; capped at {COUNT_CAP}).",
            labels=["state"],
        )
        for state in COUNTED_STATES:
            states.add_metric([state], values["states"].get(state, 0))
        yield states
        circuit = GaugeMetricFamily(
            "smsrecon_partner_circuit_open",
            "1 while the partner's circuit is open (nothing is sent for it), else 0.",
            labels=["partner"],
        )
        known = {**dict.fromkeys(self._partners, "closed"), **values["circuits"]}
        for partner, state in sorted(known.items()):
            circuit.add_metric([partner], 1.0 if state == "open" else 0.0)
        yield circuit
        open_kinds = GaugeMetricFamily(
            "smsrecon_mismatches_open", "Open mismatches by kind.", labels=["kind"]
        )
        for kind, count in sorted(values["open_by_kind"].items()):
            open_kinds.add_metric([kind], count)
        yield open_kinds
        stake = GaugeMetricFamily(
            "smsrecon_mismatches_at_stake",
            "Money at stake in open mismatches, by kind and currency (a float for graphs; "
            "the exact sums are in the reporting views).",
            labels=["kind", "currency"],
        )
        for kind, currency, nano in sorted(values["at_stake"], key=lambda r: (r[0], r[1] or "")):
            stake.add_metric([kind, currency or ""], float(Decimal(int(nano)).scaleb(-9)))
        yield stake
        yield GaugeMetricFamily(
            "smsrecon_quarantine_entries",
            f"Open quarantine entries (refused requests kept for replay; capped at {COUNT_CAP}).",
            value=values.get("quarantine", 0),
        )


def _capped_count(conn: Connection, column: Any, *where: Any) -> int:
    """``count(*)`` of the rows matching ``where``, stopped at ``COUNT_CAP``."""
    capped = select(column).where(*where).limit(COUNT_CAP).subquery()
    return int(conn.scalar(select(func.count()).select_from(capped)) or 0)


def _health_families(report: HealthReport | None) -> Iterator[Any]:
    yield GaugeMetricFamily(
        "smsrecon_healthy",
        "1 when /healthz answers 200, else 0.",
        value=1.0 if report is None or report.healthy else 0.0,
    )
    reasons = GaugeMetricFamily(
        "smsrecon_health_reason",
        "1 for each reason /healthz gives for 503 now.",
        labels=["code"],
    )
    for code in sorted({reason.code for reason in report.reasons} if report else ()):
        reasons.add_metric([code], 1.0)
    yield reasons
