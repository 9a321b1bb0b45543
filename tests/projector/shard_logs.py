"""Random logs that exercise everything a parallel fold must agree on with one fold.

Reports before their submission (held, then released), carrier ids nobody claims, a carrier
id claimed by a second message, invoice lines by carrier id and by message, superseded
invoice versions, totals that do not add up, closings, FX rates, acknowledgements, events
that fail to fold, a report naming no message, receive-time events, stale messages, price
tables recorded and a repricing.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.domain.tariffs import TariffRule
from pipeline.eventlog import NewEvent
from pipeline.prices.record import latest_recorded, price_event
from pipeline.projector.store import ProjectionTables
from tests.finance.money_events import acked, closed, header, line, rate
from tests.projector.events import at, report, submitted
from tests.projector.traffic import message_events


def random_log(rng: random.Random, tag: str, start: float) -> list[NewEvent]:
    """A chunk of traffic: messages ``<tag>-<n>``, their money, and some trouble."""
    out: list[NewEvent] = []
    mids = [f"{tag}-{n}" for n in range(rng.randint(3, 14))]
    for n, mid in enumerate(mids):
        out += message_events(rng, mid, start + n * 0.5)
    for mid in rng.sample(mids, k=min(3, len(mids))):
        out.append(acked(mid, "2.27", n=rng.randint(1, 3)))
    if rng.random() < 0.5:  # a carrier id claimed by a second message
        other = f"{tag}-second"
        out.append(submitted(other, f"{mids[0]}-c0", start + 2))
    if rng.random() < 0.4:  # fails to fold: no plausible count
        out.append(report(f"{rng.choice(mids)}-c0", 4, start + 1.5, parts=20_000))
    if rng.random() < 0.3:  # names no message at all
        out.append(report(None, 1, start + 1.7))
    if rng.random() < 0.3:  # a report timed only by our receipt
        out.append(report(f"{rng.choice(mids)}-c0", 4, start + 3, time_source="received"))
    invoice = f"INV-{tag}"
    lines: list[NewEvent] = []
    for number, mid in enumerate(rng.sample(mids, k=min(4, len(mids))), start=1):
        by_mid = rng.random() < 0.3
        lines.append(line(invoice, number, rng.choice(["0.50", "0.51", "0.70"]),
                          mid=mid if by_mid else None, cmid=None if by_mid else f"{mid}-c0",
                          minute=start + 1.2))  # fmt: skip
    lines.append(line(invoice, len(lines) + 1, "0.50", cmid=f"ghost-{tag}", minute=start + 1))
    out += lines
    out.append(header(invoice, total=rng.choice(["2.00", "2.21", None]), lines=len(lines)))
    if rng.random() < 0.4:  # a second version drops a line
        kept = lines[1:]
        for number, old in enumerate(kept, start=1):
            payload = dict(old.payload, version=2, line=number)
            out.append(NewEvent(old.type, old.occurred_at, old.source, payload,
                                message_id=old.message_id, carrier=old.carrier,
                                carrier_message_id=old.carrier_message_id,
                                dedup_key=f"invoice:{invoice}:v2:line:{number}"))  # fmt: skip
        out.append(header(invoice, version=2, total=None, lines=len(kept)))
    if rng.random() < 0.4:
        out.append(closed(invoice))
    out.append(rate("2026-01-15", "RUB", "EUR", rng.choice(["0.011", "0.0105"])))
    if rng.random() < 0.3:  # time passes: timers run out, messages go stale
        late = NewEvent("message.accepted", at(start) + timedelta(days=4), "test",
                        {"partner": "default", "phone": "+79161234567", "channel": "sms",
                         "dispatch_type": "service", "free": False, "text": "late"},
                        message_id=f"{tag}-late", dedup_key=f"accepted:{tag}-late")  # fmt: skip
        out.append(late)
    window = 9
    for i in range(0, len(out), window):
        chunk = out[i : i + window]
        rng.shuffle(chunk)
        out[i : i + window] = chunk
    return out


def price_tables(db: Database, rng: random.Random) -> list[NewEvent]:
    """A new billing table now and then, and a repricing of every message by the latest."""
    with db.read() as conn:
        previous = latest_recorded(conn).get("billing")
    price = rng.choice(["2.27", "1.90", "2.50"])
    rules = [TariffRule(prefix="+7", price_per_part=Decimal(price), currency="RUB")]
    out = [price_event("billing", rules, previous)]
    if previous is not None and rng.random() < 0.5:
        payload = {"scope": "billing", "version": previous.version,
                   "accepted_from": "2026-01-01T00:00:00Z", "accepted_to": "2026-02-01T00:00:00Z",
                   "note": "repriced", "messages": 0}  # fmt: skip
        out.append(NewEvent("prices.repriced", at(0), "cli", payload,
                            dedup_key=f"reprice:{previous.position}:{rng.random()}"))  # fmt: skip
    return out


def acknowledgements(db: Database, rng: random.Random, tables: ProjectionTables) -> list[NewEvent]:
    """A person acknowledges a few of the open rows a fold made (applied when folded)."""
    mm = tables.mismatches
    with db.read() as conn:
        rows = conn.execute(
            select(mm.c.message_id, mm.c.subject, mm.c.kind, mm.c.origin, mm.c.first_position)
            .where(mm.c.status == "open")
            .order_by(mm.c.subject, mm.c.kind, mm.c.first_position)
        ).all()
    out = []
    for row in rng.sample(rows, k=min(3, len(rows))):
        payload: dict[str, Any] = {"subject": row.subject, "kind": row.kind,
                                   "origin": row.origin, "first_position": row.first_position,
                                   "note": "seen"}  # fmt: skip
        key = f"ack:{row.subject}:{row.kind}:{row.first_position}"
        out.append(NewEvent("mismatch.acknowledged", at(0), "cli", payload,
                            message_id=row.message_id, dedup_key=key))  # fmt: skip
    return out
