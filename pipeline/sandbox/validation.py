"""What Altegio's status callback accepts, as pure functions of headers and body bytes.

Strict on purpose: everything the contract does not allow is refused, so a dispatcher that
passes against the sandbox sends exactly the documented form. JSON numbers are parsed as
``Decimal`` (never float), so ``4.545`` is seen as three decimals, not as a float that
happens to print as 4.545.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pipeline.domain.money import currency_exponent
from pipeline.domain.status import KNOWN_STATUSES

ACCEPT = "application/vnd.api.v2+json"
CONTENT_TYPE = "application/json"
FIELDS = ("id", "status", "payment_sum", "currency_iso", "parts_amount")
STATUSES = KNOWN_STATUSES

#: Altegio's documented error codes.
ENTITY_VALIDATION_ERROR = 5
FIELD_VALIDATION_ERROR = 10
ACCESS_FORBIDDEN = 15
INVALID_PARTNER_TOKEN = 20
RESOURCE_NOT_FOUND = 30

#: How many problems one error message lists before it says "and N more".
_MAX_LISTED = 10


@dataclass(frozen=True)
class Rejection:
    """A refusal: the HTTP status, Altegio's error code and the text explaining it."""

    status: int
    code: int
    message: str


@dataclass(frozen=True)
class StatusItem:
    """One accepted status object, as sent (``payment_sum`` kept as the exact Decimal)."""

    id: str
    status: int
    payment_sum: Decimal
    currency_iso: str
    parts_amount: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "payment_sum": str(self.payment_sum),
            "currency_iso": self.currency_iso,
            "parts_amount": self.parts_amount,
        }


def check_headers(headers: Mapping[str, str]) -> Rejection | None:
    """The ``Accept`` and ``Content-Type`` the contract requires (400, code 5 otherwise)."""
    accept = headers.get("Accept")
    if accept is None:
        return _entity(f"missing Accept header (expected {ACCEPT})")
    media_ranges = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    if ACCEPT not in media_ranges:
        return _entity(f"Accept must be {ACCEPT}, got {accept!r}")
    content_type = headers.get("Content-Type")
    if content_type is None:
        return _entity(f"missing Content-Type header (expected {CONTENT_TYPE})")
    mime, _, params = content_type.partition(";")
    if mime.strip().lower() != CONTENT_TYPE:
        return _entity(f"Content-Type must be {CONTENT_TYPE}, got {content_type!r}")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return _entity(f"Content-Type charset must be utf-8, got {value.strip()!r}")
    return None


def parse_body(raw: bytes, *, shape: Literal["array", "object"]) -> list[StatusItem] | Rejection:
    """The status items of a request body, or why the body is refused.

    Body-level problems (not JSON, wrong container, empty array, an item that is not an
    object, missing or extra keys) are code 5; a field whose value is wrong is code 10. Every
    problem is listed with the item's index and the field, so the sender can tell exactly
    which status was refused.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _entity(f"body is not UTF-8 (byte {exc.start})")
    if not text.strip():
        return _entity("body is empty")
    try:
        document = json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except RecursionError:
        return _entity("body is not valid JSON: nested too deeply")
    except ValueError as exc:  # JSONDecodeError, duplicate keys, NaN, absurdly long integers
        return _entity(f"body is not valid JSON: {exc}")
    if shape == "array":
        if not isinstance(document, list):
            return _entity(f"body must be a JSON array of status objects, got {_kind(document)}")
        if not document:
            return _entity("body is an empty array")
        candidates = document
    else:
        if not isinstance(document, dict):
            return _entity(f"body must be one JSON status object, got {_kind(document)}")
        candidates = [document]

    structural: list[str] = []
    for index, candidate in enumerate(candidates):
        structural.extend(_structure_problems(index, candidate))
    if structural:
        return _entity(_listing(structural))

    field_problems: list[str] = []
    items: list[StatusItem] = []
    for index, candidate in enumerate(candidates):
        problems = _field_problems(index, candidate)
        field_problems.extend(problems)
        if not problems:
            items.append(
                StatusItem(
                    id=candidate["id"],
                    status=candidate["status"],
                    payment_sum=Decimal(candidate["payment_sum"]),
                    currency_iso=candidate["currency_iso"],
                    parts_amount=candidate["parts_amount"],
                )
            )
    if field_problems:
        return Rejection(400, FIELD_VALIDATION_ERROR, _listing(field_problems))
    return items


def _structure_problems(index: int, candidate: Any) -> list[str]:
    if not isinstance(candidate, dict):
        return [f"item {index}: must be an object, got {_kind(candidate)}"]
    problems = []
    missing = [name for name in FIELDS if name not in candidate]
    extra = sorted(name for name in candidate if name not in FIELDS)
    if missing:
        problems.append(f"item {index}: missing field(s) {', '.join(missing)}")
    if extra:
        problems.append(f"item {index}: unexpected field(s) {', '.join(extra)}")
    return problems


def _field_problems(index: int, item: dict[str, Any]) -> list[str]:
    message_id = item["id"]
    where = f"item {index}"
    if isinstance(message_id, str) and message_id.strip():
        where += f" (id {message_id!r})"
    problems = []
    if not isinstance(message_id, str):
        problems.append(f"{where}: id must be a string, got {_kind(message_id)}")
    elif not message_id.strip():
        problems.append(f"{where}: id must not be empty")

    status = item["status"]
    if not _is_integer(status):
        problems.append(f"{where}: status must be an integer, got {_show(status)}")
    elif status not in STATUSES:
        allowed = ", ".join(str(s) for s in sorted(STATUSES))
        problems.append(f"{where}: status {status} is not one of {allowed}")

    currency = item["currency_iso"]
    exponent = None
    if not isinstance(currency, str):
        problems.append(f"{where}: currency_iso must be a string, got {_kind(currency)}")
    else:
        exponent = currency_exponent(currency)
        if exponent is None:
            problems.append(f"{where}: currency_iso {currency!r} is not an ISO 4217 code")

    amount = item["payment_sum"]
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
        problems.append(f"{where}: payment_sum must be a JSON number, got {_kind(amount)}")
    else:
        value = Decimal(amount)
        if value < 0:
            problems.append(f"{where}: payment_sum must be >= 0, got {value}")
        elif exponent is not None and _decimals(value) > exponent:
            problems.append(
                f"{where}: payment_sum {value} has {_decimals(value)} decimal(s), "
                f"more than {currency}'s {exponent}"
            )

    parts = item["parts_amount"]
    if not _is_integer(parts):
        problems.append(f"{where}: parts_amount must be an integer, got {_show(parts)}")
    elif parts < 1:
        problems.append(f"{where}: parts_amount must be >= 1, got {parts}")
    return problems


def _decimals(value: Decimal) -> int:
    """Digits after the point as written: ``4.540`` has three, ``5`` and ``1E+2`` none."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _is_integer(value: Any) -> bool:
    """A JSON integer literal (``1``), not ``true`` and not ``1.0``."""
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: Any) -> str:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return _kind(value)


def _listing(problems: list[str]) -> str:
    shown = "; ".join(problems[:_MAX_LISTED])
    more = len(problems) - _MAX_LISTED
    return f"{shown}; and {more} more" if more > 0 else shown


def _entity(message: str) -> Rejection:
    return Rejection(400, ENTITY_VALIDATION_ERROR, message)


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects whose keys repeat are ambiguous (which one wins?): refused."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
