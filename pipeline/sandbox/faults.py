"""The fault plan: which request fails and how, reproducibly.

One ``random.Random(seed)`` draw per request, taken in arrival order before the handler first
yields to the event loop, so the same seed and the same request sequence give the same faults
(requests that arrive concurrently are ordered by when the server starts handling them).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime


class FaultPlan:
    def __init__(self, rates: Mapping[str, float], seed: int) -> None:
        self._rates = [(kind, rate) for kind, rate in rates.items() if rate > 0]
        self._seed = seed
        self._rng = random.Random(seed)
        self._alternate_429 = 0

    def reset(self) -> None:
        """Start the sequence again, as if the sandbox had just been started."""
        self._rng = random.Random(self._seed)
        self._alternate_429 = 0

    def draw(self) -> str | None:
        """The fault for the next request, or None for an honest answer."""
        if not self._rates:
            return None
        roll = self._rng.random()
        edge = 0.0
        for kind, rate in self._rates:
            edge += rate
            if roll < edge:
                return self._resolve_429(kind)
        return None

    def _resolve_429(self, kind: str) -> str:
        if kind != "429":
            return kind
        self._alternate_429 += 1
        return "429s" if self._alternate_429 % 2 == 1 else "429date"


def retry_after_value(kind: str, seconds: int, now: float | None = None) -> str:
    """The ``Retry-After`` header for a 429 of ``kind`` (``429s`` or ``429date``).

    The date form is an IMF-fixdate rounded up to the next whole second, so a client never
    reads it as earlier than ``seconds`` from now.
    """
    if kind == "429s":
        return str(seconds)
    moment = math.ceil((time.time() if now is None else now) + seconds)
    return format_datetime(datetime.fromtimestamp(moment, UTC), usegmt=True)
