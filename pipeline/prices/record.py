"""Record the price tables in force (``prices.recorded``), before a command appends anything.

``billing.tariffs`` and every ``carriers.<name>.rates`` are configuration, and configuration
is edited. So that a price never depends on the file as it is today, every command that
appends to the log or projects it first calls ``record_prices``: each scope's table, when it
differs from the one the log recorded last for that scope, is appended as a new version.
Unchanged tables append nothing, so calling it on every run costs one indexed query.

Read from the log, not from the projection, so the answer is the same however far the
projector has come.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.domain.price_tables import BILLING, carrier_scope, rules_json, table_sha256
from pipeline.domain.tariffs import TariffRule, rules_from_settings
from pipeline.eventlog import NewEvent, StoredEvent, append_in
from pipeline.eventlog.model import utc_now
from pipeline.eventlog.ordering import serialise_appends
from pipeline.eventlog.read import read_rows_leniently

RECORDED = "prices.recorded"
REPRICED = "prices.repriced"
SOURCE = "config"


@dataclass(frozen=True, slots=True)
class Recorded:
    """The latest ``prices.recorded`` of a scope in the log."""

    scope: str
    version: int
    sha256: str
    position: int


def configured_tables(settings: Settings) -> dict[str, list[TariffRule]]:
    """Every scope's table as the settings give it (raises TariffError on a bad one)."""
    tables = {BILLING: rules_from_settings(settings.billing.tariffs)}
    for name, carrier in sorted(settings.carriers.items()):
        tables[carrier_scope(name)] = rules_from_settings(carrier.rates)
    return tables


def latest_recorded(conn: Connection) -> dict[str, Recorded]:
    """The latest recorded table of each scope (a scan of the few ``prices.recorded``
    events, by the index on type and position)."""
    out: dict[str, Recorded] = {}
    # Each row decoded on its own: one no reader can decode records no table.
    for row in read_rows_leniently(conn, events.c.type == RECORDED):
        if type(row) is not StoredEvent:
            continue
        payload = row.payload
        scope, version, sha = payload.get("scope"), payload.get("version"), payload.get("sha256")
        if isinstance(scope, str) and type(version) is int and isinstance(sha, str):
            out[scope] = Recorded(scope, version, sha, row.position)
    return out


def price_event(scope: str, rules: Iterable[TariffRule], previous: Recorded | None) -> NewEvent:
    """The ``prices.recorded`` event of a table replacing ``previous`` (None: the first).

    The dedup key is the scope, the table's hash and the position it replaces: two
    recorders that read the same latest table and hold the same configuration write the
    same key, so the log keeps one of them.
    """
    rules = list(rules)
    sha = table_sha256(rules)
    after = previous.position if previous else 0
    return NewEvent(
        type=RECORDED,
        occurred_at=utc_now(),
        source=SOURCE,
        payload={
            "scope": scope,
            "version": (previous.version if previous else 0) + 1,
            "sha256": sha,
            "rules": rules_json(rules),
            "replaces": after or None,
        },
        dedup_key=f"prices:{scope}:{sha}:after:{after}",
    )


def record_prices_in(conn: Connection, settings: Settings) -> list[tuple[int, NewEvent]]:
    """``record_prices`` in the caller's write transaction: the appended (position, event).

    Failure policy: the append lock is taken before the latest tables are read, so two
    recorders never both number a version 2; the second sees the first's event (or its
    duplicate key) and appends nothing. If the process dies before the commit, nothing was
    recorded and the next command records it.
    """
    wanted = configured_tables(settings)
    serialise_appends(conn)
    latest = latest_recorded(conn)
    new = []
    for scope, rules in wanted.items():
        previous = latest.get(scope)
        if previous is None and not rules:
            continue  # nothing configured, nothing recorded: no table to speak of
        if previous is not None and previous.sha256 == table_sha256(rules):
            continue
        new.append(price_event(scope, rules, previous))
    # A scope recorded before and gone from the configuration (a carrier removed) keeps its
    # last table: messages sent through it are still priced by what it charged.
    if not new:
        return []
    return append_in(conn, new).appended


def record_prices(db: Database, settings: Settings) -> list[tuple[int, NewEvent]]:
    """Record every price table that changed since the log last recorded it (one write
    transaction); the events appended, usually none."""
    with db.write() as conn:
        return record_prices_in(conn, settings)
