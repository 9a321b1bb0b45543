"""Replaying a quarantined request through the current code and configuration.

The request is parsed exactly as if it had just arrived at its original path, with its
original receive time and source, so the events (and their dedup keys) are the ones the
live request would have produced had the code been right then.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.eventlog import append_in
from pipeline.ingest.quarantine import Entry, resolve_in
from pipeline.ingest.routing import InputError, UnknownCarrier, interpret, target_of


@dataclass(frozen=True, slots=True)
class ReplayResult:
    entry_id: int
    resolved: bool
    appended: int = 0
    duplicates: int = 0
    #: Why it is still open (the parse error now, or a configuration problem).
    error: str | None = None


class _AlreadyResolved(Exception):
    pass


def replay(db: Database, settings: Settings, entry: Entry) -> ReplayResult:
    """Parse ``entry`` again; on success append its events and resolve it, atomically.

    Failure policy: the append and the status change share one transaction, so a crash
    leaves either both (resolved, events stored) or neither (still open, replay again);
    replaying twice is harmless because the events' dedup keys make the second a duplicate.
    """
    if entry.status != "open":
        return ReplayResult(entry.id, False, error=f"already {entry.status}")
    if (entry.format or "").startswith("invoice-"):
        return ReplayResult(
            entry.id,
            False,
            error="an invoice line is fixed in its file: import the corrected file with "
            "`smsrecon reconcile import-invoice --supersede`, which resolves this entry",
        )
    target = target_of(entry.request.path)
    if target is None:
        return ReplayResult(entry.id, False, error=f"path {entry.request.path} names no route")
    try:
        outcome = interpret(
            settings,
            target,
            entry.request,
            received_at=entry.received_at,
            source=entry.source,
        )
    except UnknownCarrier:
        return ReplayResult(entry.id, False, error=f"carrier {target.carrier!r} is not configured")
    except InputError as exc:
        problems = "; ".join(_problem_text(p) for p in exc.detail)
        return ReplayResult(entry.id, False, error=f"{exc.error}: {problems}")
    try:
        with db.write() as conn:
            result = append_in(conn, outcome.events)
            note = f"replayed: appended {len(result.appended)}, duplicates {len(result.duplicates)}"
            if not resolve_in(conn, entry.id, result.positions, note):
                raise _AlreadyResolved
    except _AlreadyResolved:
        return ReplayResult(entry.id, False, error="resolved meanwhile by another replay")
    return ReplayResult(entry.id, True, len(result.appended), len(result.duplicates))


def _problem_text(problem: dict[str, object]) -> str:
    index = problem.get("index")
    where = f"[{index}]." if index is not None else ""
    return f"{where}{problem.get('field')}: {problem.get('reason')}"
