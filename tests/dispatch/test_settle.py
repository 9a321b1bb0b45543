"""The pure rules that turn Altegio's answer into each message's next step."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pipeline.config import DispatcherSettings
from pipeline.dispatch.claim import ClaimedItem
from pipeline.dispatch.outcome import Outcome
from pipeline.dispatch.payload import StatusPayload
from pipeline.dispatch.routes import Refusal, Routed
from pipeline.dispatch.settle import settle, settle_refusal
from pipeline.mismatches.kinds import (
    KIND_EXPIRED,
    KIND_FORBIDDEN,
    KIND_NOT_FOUND,
    KIND_PARTNER_UNKNOWN,
    KIND_TOKEN_INVALID,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
TOKEN = "settle-partner-token-9z"
CONFIG = DispatcherSettings(backoff_base=5, backoff_cap=3600, max_age=86_400, auth_cooldown=600)


def routed(message_id: str = "m1", *, failures: int = 0, pending_for: float = 60) -> Routed:
    item = ClaimedItem(
        message_id=message_id, partner="default", delivery_callback_url=None, status=1,
        is_final=True, payment_sum=Decimal("2.45"), currency_iso="RUB", parts_amount=1,
        payload_hash="h", version=3, attempt=failures + 1, failures=failures,
        first_pending_at=NOW - timedelta(seconds=pending_for),
    )  # fmt: skip
    url = f"https://app.alteg.io/smsprovider/status/callback/{TOKEN}"
    payload = StatusPayload(message_id, 1, Decimal("2.45"), "RUB", 1)
    return Routed(item, payload, url, TOKEN, url.replace(TOKEN, "***"))


def run(batch: list[Routed], outcome: Outcome | None, **kw: object) -> list:  # type: ignore[type-arg]
    return settle(batch, outcome, now=NOW, config=CONFIG, rng=random.Random(7), **kw)  # type: ignore[arg-type]


def test_an_acknowledged_batch_acknowledges_every_message_and_masks_the_token() -> None:
    answer = Outcome("acknowledged", 200, text=f"ok for {TOKEN}")
    results = run([routed("a"), routed("b")], answer)
    assert [(r.item.message_id, r.result) for r in results] == [("a", "acknowledged"),
                                                                ("b", "acknowledged")]  # fmt: skip
    assert all(TOKEN not in (r.error or "") and TOKEN not in r.url for r in results)


def test_a_transient_failure_retries_within_the_backoff_cap() -> None:
    answer = Outcome("retry", 503, text="busy")
    [result] = run([routed(failures=3)], answer)
    assert result.result == "retry"
    delay = (result.next_attempt_at - NOW).total_seconds()
    assert 0 <= delay <= min(CONFIG.backoff_cap, CONFIG.backoff_base * 2**3)


def test_retry_after_is_honoured() -> None:
    [result] = run([routed()], Outcome("retry", 429, retry_after=120.0))
    assert result.next_attempt_at == NOW + timedelta(seconds=120)


def test_a_message_pending_longer_than_max_age_expires_instead_of_retrying() -> None:
    [result] = run([routed(pending_for=CONFIG.max_age)], Outcome("retry", 500))
    assert (result.result, result.kind) == ("expired", KIND_EXPIRED)


def test_an_invalid_token_opens_the_circuit_until_the_cooldown_ends() -> None:
    answer = Outcome("open_circuit", 401, altegio_code=20, kind=KIND_TOKEN_INVALID)
    [result] = run([routed()], answer)
    assert (result.result, result.kind) == ("circuit", KIND_TOKEN_INVALID)
    assert result.probe_at == NOW + timedelta(seconds=CONFIG.auth_cooldown)


def test_a_url_that_answers_404_to_everything_is_treated_like_a_bad_token() -> None:
    answer = Outcome("split", 404, altegio_code=30, kind=KIND_NOT_FOUND)
    [result] = run([routed()], answer, url_wrong=True)
    assert result.result == "circuit" and result.extra == {"url_wrong": True}
    assert result.error.startswith("every request to this URL answered 404")


def test_a_refusal_parks_the_message_with_its_kind() -> None:
    [result] = run([routed()], Outcome("park", 403, altegio_code=15, kind=KIND_FORBIDDEN))
    assert (result.result, result.kind) == ("parked", KIND_FORBIDDEN)


def test_a_request_not_sent_defers_the_message() -> None:
    [result] = run([routed()], None)
    assert result.result == "deferred" and result.outcome is None


def test_an_unconfigured_partner_is_looked_at_again_after_the_cooldown() -> None:
    refusal = Refusal(routed().item, KIND_PARTNER_UNKNOWN, "partner x is not configured", "")
    result = settle_refusal(refusal, now=NOW, config=CONFIG)
    assert result.result == "retry"
    assert result.next_attempt_at == NOW + timedelta(seconds=CONFIG.auth_cooldown)
