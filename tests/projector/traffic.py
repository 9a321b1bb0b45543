"""Random but reproducible traffic: many messages, their events shuffled within a window."""

from __future__ import annotations

import random

from pipeline.eventlog import NewEvent
from tests.projector.events import accepted, refused, report, submitted

TEXTS = ["Hello", "a" * 200, "Привет, ваша запись в 15:00", "€" * 80]


def message_events(rng: random.Random, mid: str, minute: float) -> list[NewEvent]:
    out = [accepted(mid, minute, text=rng.choice(TEXTS),
                    phone=rng.choice(["+79161234567", "+14155550100"]))]  # fmt: skip
    if rng.random() < 0.05:
        return [*out, refused(mid, minute + 0.1)]
    parts = rng.choice([None, 1, 2])
    cmids = [f"{mid}-c{i}" for i in range(1 if parts != 2 or rng.random() < 0.5 else 2)]
    for i, cmid in enumerate(cmids):
        extra = {"part": i + 1} if len(cmids) > 1 else {}
        out.append(submitted(mid, cmid, minute + 0.2, parts=parts, **extra))
        for status, dt in ((8, 0.3), (4, 0.5), (rng.choice([1, 1, 1, 2, 16]), 1.0)):
            if rng.random() < 0.85:
                cost = {"cost": "0.0333", "currency": "EUR", "cost_scope": "part"}
                out.append(report(cmid, status, minute + dt + rng.random(),
                                  **(cost if status in (1, 2) else {})))  # fmt: skip
        if rng.random() < 0.1:
            out.append(report(cmid, rng.choice([1, 2]), minute + 5 + rng.random()))
    if rng.random() < 0.03:
        out.append(report(f"ghost-{mid}", 1, minute + 1))
    return out


def traffic(seed: int, messages: int, start: int = 0) -> list[NewEvent]:
    """Events of ``messages`` messages, locally shuffled (reports before submissions happen)."""
    rng = random.Random(seed)
    events: list[NewEvent] = []
    for n in range(start, start + messages):
        events += message_events(rng, f"m{n}", n * 0.5)
    window = 12
    for i in range(0, len(events), window):
        chunk = events[i : i + window]
        rng.shuffle(chunk)
        events[i : i + window] = chunk
    if rng.random() < 0.5 and events:
        events.append(events[rng.randrange(len(events))])  # a duplicate delivery
    return events
