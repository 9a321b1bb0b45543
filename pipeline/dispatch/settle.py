"""Turning Altegio's answer to a request into one Resolution per message: pure rules.

Everything here is a function of its arguments (the clock and the random source are passed
in), so the retry and parking rules are tested without a network or a database.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from pipeline.config import DispatcherSettings
from pipeline.dispatch.backoff import retry_delay
from pipeline.dispatch.model import ClaimedItem, Outcome, Refusal, Resolution, Routed
from pipeline.dispatch.urls import mask_token
from pipeline.logsafe import mask_url
from pipeline.mismatches.kinds import KIND_EXPIRED, KIND_PARTNER_UNKNOWN


def masked(text: str, token: str) -> str:
    return mask_token(mask_url(text), token)


def settle(
    batch: Sequence[Routed],
    outcome: Outcome | None,
    *,
    now: datetime,
    config: DispatcherSettings,
    rng: random.Random,
    url_wrong: bool = False,
) -> list[Resolution]:
    """One Resolution per message of ``batch`` (``outcome`` None: the request was not sent)."""
    if outcome is not None and outcome.action == "acknowledged":
        # The common case, kept lean: one masking per batch (one token per batch).
        error = masked(outcome.text, batch[0].token) if batch else None
        return [
            Resolution(r.item, "acknowledged", outcome, r.masked_url, None, error) for r in batch
        ]
    out = []
    for r in batch:
        item = r.item
        error = masked(outcome.text, r.token) if outcome else None
        base = {"item": item, "outcome": outcome, "url": r.masked_url, "error": error}
        if outcome is None:
            out.append(Resolution(result="deferred", **base))
        elif url_wrong or outcome.action == "open_circuit":
            probe_at = now + timedelta(seconds=config.auth_cooldown)
            extra = {"url_wrong": True} if url_wrong else {}
            if url_wrong:
                base["error"] = f"every request to this URL answered 404: {error}"
            out.append(
                Resolution(
                    result="circuit",
                    kind=outcome.kind,
                    next_attempt_at=probe_at,
                    probe_at=probe_at,
                    extra=extra,
                    **base,
                )
            )
        elif outcome.action == "retry":
            out.append(_retry(item, outcome, now, base, config, rng))
        else:  # park, or a split that came down to this one item
            out.append(Resolution(result="parked", kind=outcome.kind, **base))
    return out


def _retry(
    item: ClaimedItem,
    outcome: Outcome,
    now: datetime,
    base: dict,  # type: ignore[type-arg]
    config: DispatcherSettings,
    rng: random.Random,
) -> Resolution:
    if (now - item.first_pending_at).total_seconds() >= config.max_age:
        return Resolution(result="expired", kind=KIND_EXPIRED, **base)
    delay = retry_delay(
        item.failures,
        outcome.retry_after,
        base=config.backoff_base,
        cap=config.backoff_cap,
        rng=rng,
    )
    return Resolution(result="retry", next_attempt_at=now + timedelta(seconds=delay), **base)


def settle_refusal(refusal: Refusal, *, now: datetime, config: DispatcherSettings) -> Resolution:
    """A message decided without a request: an unknown partner, a refused callback URL."""
    base = {"item": refusal.item, "outcome": None, "url": refusal.url, "error": refusal.error}
    if refusal.kind == KIND_PARTNER_UNKNOWN:
        # Configuration can be fixed without touching the message: look again later.
        if (now - refusal.item.first_pending_at).total_seconds() >= config.max_age:
            return Resolution(result="expired", kind=KIND_EXPIRED, **base)
        retry_at = now + timedelta(seconds=config.auth_cooldown)
        return Resolution(result="retry", kind=refusal.kind, next_attempt_at=retry_at, **base)
    return Resolution(result="parked", kind=refusal.kind, **base)
