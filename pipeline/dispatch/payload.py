"""The status object Altegio receives, and the exact bytes of a request body.

``payment_sum`` is a JSON *number* in Altegio's contract, yet money is never a float here:
the body is written by hand so that the number carries exactly the currency's minor-unit
decimals (``4.50`` RUB, ``450`` JPY) and no binary rounding ever touches it. The rest of the
object goes through ``json.dumps`` for correct string escaping.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from pipeline.domain.money import currency_exponent
from pipeline.domain.status import KNOWN_STATUSES, SENT_TO_PHONE

#: Altegio's status codes (contract.md).
STATUS_CODES = KNOWN_STATUSES


class PayloadError(ValueError):
    """The state cannot be put in Altegio's form (a projector bug, never a network issue)."""


@dataclass(frozen=True, slots=True)
class StatusPayload:
    """One status object, as Altegio's contract lists its fields."""

    id: str
    status: int
    payment_sum: Decimal
    currency_iso: str
    parts_amount: int

    def to_json(self) -> str:
        """The object as JSON text, ``payment_sum`` exact to the currency's minor unit."""
        return (
            "{"
            f'"id": {json.dumps(self.id, ensure_ascii=False)}, '
            f'"status": {self.status}, '
            f'"payment_sum": {payment_sum_text(self.payment_sum, self.currency_iso)}, '
            f'"currency_iso": {json.dumps(self.currency_iso)}, '
            f'"parts_amount": {self.parts_amount}'
            "}"
        )


def payment_sum_text(amount: Decimal, currency: str) -> str:
    """``amount`` written with exactly the currency's minor-unit decimals.

    Refuses (rather than rounds) an amount with more decimals than the currency has: the
    projector rounds once, and a second rounding here would hide its bug from finance.
    Prices repeat across thousands of messages, so the text is remembered per (amount,
    sign, currency); a refusal is not remembered and is raised again each time.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise PayloadError(f"payment_sum must be a finite Decimal, got {amount!r}")
    # The sign is part of the key: Decimal("-0") == Decimal("0") but prints differently.
    return _payment_sum_text(amount, amount.is_signed(), currency)


def amount_text(amount: Decimal | None, currency: str | None) -> str | None:
    """An amount as decimal text for events and mismatches: exactly as the body writes it
    when it can (``4.50`` RUB), else the amount's own plain text, never a float.

    Events and mismatches also describe payloads that never left (refused before the
    request, or refused by ``payment_sum_text`` itself), so this never raises.
    """
    if amount is None:
        return None
    if currency is not None:
        try:
            return payment_sum_text(amount, currency)
        except PayloadError:
            pass
    return format(amount, "f")


@lru_cache(maxsize=4096)
def _payment_sum_text(amount: Decimal, _signed: bool, currency: str) -> str:
    if amount < 0:
        raise PayloadError(f"payment_sum must not be negative, got {amount}")
    exponent = currency_exponent(currency)
    if exponent is None:
        raise PayloadError(f"currency_iso {currency!r} is not an ISO 4217 code")
    quantum = Decimal(1).scaleb(-exponent)
    exact = amount.quantize(quantum)
    if exact != amount:
        raise PayloadError(
            f"payment_sum {amount} has more decimals than {currency} allows ({exponent})"
        )
    return format(exact, "f")


def build_payload(
    *,
    message_id: str,
    status: int | None,
    payment_sum: Decimal | None,
    currency_iso: str | None,
    parts_amount: int | None,
) -> StatusPayload:
    """The payload for one message's state, checked against the contract's field rules."""
    if status not in STATUS_CODES:
        raise PayloadError(f"status {status!r} is not an Altegio status code")
    if payment_sum is None or currency_iso is None:
        raise PayloadError("payment_sum and currency_iso are required")
    if not isinstance(parts_amount, int) or parts_amount < 1:
        raise PayloadError(f"parts_amount must be an integer >= 1, got {parts_amount!r}")
    payment_sum_text(payment_sum, currency_iso)
    return StatusPayload(message_id, status, payment_sum, currency_iso, parts_amount)


def should_send(status: int, *, is_final: bool, send_intermediate: bool) -> bool:
    """Whether a state is sent at all under ``dispatcher.send_intermediate``.

    With it off only 8 (which the marketplace rule wants billed) and the finals travel;
    ``4 sent to phone`` is then skipped and Altegio sees the final directly.
    """
    return send_intermediate or is_final or status != SENT_TO_PHONE


def encode_body(items: Sequence[StatusPayload], *, shape: str = "array") -> bytes:
    """The request body: an array of status objects, or (shape ``object``) exactly one."""
    if shape == "object":
        if len(items) != 1:
            raise ValueError("the object body shape carries exactly one status")
        return items[0].to_json().encode("utf-8")
    return ("[" + ", ".join(item.to_json() for item in items) + "]").encode("utf-8")
