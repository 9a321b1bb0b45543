"""Retry arithmetic: exponential backoff with full jitter, and ``Retry-After`` parsing.

Pure functions of their arguments (the clock and the random source are passed in), so the
dispatcher's retry schedule can be tested exactly.

Why full jitter: when Altegio has an outage every pending message fails at once; a delay
drawn uniformly from ``[0, min(cap, base * 2**attempt)]`` spreads the retries over the
whole window instead of sending them back in synchronised waves (the "thundering herd").
"""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: Beyond this many doublings every sensible cap has long been reached; stopping here keeps
#: ``2 ** attempt`` from overflowing a float for absurd attempt counts.
_MAX_DOUBLINGS = 64

#: RFC 9110 §10.2.3: ``Retry-After = HTTP-date / delay-seconds`` with
#: ``delay-seconds = 1*DIGIT``. A leading minus is not in the grammar, but a server that sends
#: one means "now", so it is read as zero rather than thrown away.
_DELAY_SECONDS = re.compile(r"-?[0-9]+")


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    Uniform in ``[0, min(cap, base * 2**attempt)]`` ("full jitter").
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if base < 0 or cap < 0:
        raise ValueError("base and cap must be >= 0")
    ceiling = min(cap, base * 2.0 ** min(attempt, _MAX_DOUBLINGS))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds the server asked us to wait, or None when the header is absent or unreadable.

    Both forms of RFC 9110 are read: delay-seconds (``"120"``) and an HTTP-date
    (IMF-fixdate ``"Sun, 06 Nov 1994 08:49:37 GMT"``, and the obsolete RFC 850 and asctime
    forms, which ``email.utils`` understands; a date without a zone is GMT, as the RFC says).
    A negative delay or a date in the past means "retry now": 0.
    ``now`` must be timezone-aware, so the date form is compared in UTC.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELAY_SECONDS.fullmatch(text):
        return float(max(0, int(text)))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # asctime dates carry no zone; HTTP-dates are always GMT.
        when = when.replace(tzinfo=UTC)
    seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_delay(
    attempt: int,
    retry_after: float | None,
    *,
    base: float,
    cap: float,
    rng: random.Random,
) -> float:
    """Seconds to wait before the next attempt after a transient failure.

    When the server sent ``Retry-After`` it is honoured as given (the server knows when it
    will take requests again, and jitter would only delay us further for nothing), but never
    beyond ``cap``: a server asking for days must not park a delivery past the point where the
    dispatcher's own schedule and ``max_age`` decide. Without ``Retry-After``, the jittered
    exponential backoff of ``backoff_delay``.
    """
    if retry_after is not None:
        if retry_after < 0 or not math.isfinite(retry_after):
            raise ValueError(f"retry_after must be a finite number >= 0, got {retry_after}")
        return min(retry_after, cap)
    return backoff_delay(attempt, base=base, cap=cap, rng=rng)
