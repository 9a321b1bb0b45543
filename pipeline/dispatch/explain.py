"""The "Dispatch attempts" section of ``smsrecon explain``: what Altegio was sent and said.

Listed in ``pipeline.cli.explain_command.SECTIONS``. Every attempt comes from the log's
``dispatch.*`` events (so ``--as-of`` applies); the current delivery row is added when the
whole log is explained. URLs and errors were stored token-masked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from pipeline.db.tables import events
from pipeline.dispatch.tables import deliveries
from pipeline.projector.explain import AsOf, Section

DISPATCH_EVENTS = ("dispatch.acknowledged", "dispatch.failed")


def dispatch_section(conn: Connection, message_id: str, as_of: AsOf) -> Section | None:
    query = (
        select(events.c.position, events.c.type, events.c.occurred_at, events.c.payload)
        .where(events.c.message_id == message_id, events.c.type.in_(DISPATCH_EVENTS))
        .order_by(events.c.position)
    )
    if as_of.position is not None:
        query = query.where(events.c.position <= as_of.position)
    if as_of.time is not None:
        query = query.where(events.c.recorded_at <= as_of.time)
    rows: list[dict[str, Any]] = []
    lines: list[str] = []
    for position, kind, occurred_at, payload in conn.execute(query).all():
        result = "acknowledged" if kind == "dispatch.acknowledged" else payload.get("result")
        rows.append({"position": position, "at": occurred_at.isoformat(), **payload})
        answer = payload.get("http_status") or "no answer"
        line = (
            f"#{payload.get('attempt')} {occurred_at.isoformat()} status {payload.get('status')} "
            f"v{payload.get('version')} -> {answer}: {result}"
        )
        if payload.get("error"):
            line += f" ({payload['error']})"
        lines.append(line)
    current = None
    if as_of.position is None and as_of.time is None:
        current = conn.execute(
            select(deliveries).where(deliveries.c.message_id == message_id)
        ).first()
    if current is not None:
        row = current._asdict()
        rows.append({"delivery": {k: _plain(v) for k, v in row.items() if k != "lease_owner"}})
        lines.append(
            f"now: {row['state']}, {row['attempts']} attempt(s), acknowledged version "
            f"{row['acked_version'] or '-'}"
            + (f", held for {row['held_reason']}" if row["held_reason"] else "")
            + (
                f", next attempt {row['next_attempt_at'].isoformat()}"
                if row["next_attempt_at"]
                else ""
            )
        )
    if not rows:
        return Section("Dispatch attempts", [], ["none"])
    return Section("Dispatch attempts", rows, lines)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
