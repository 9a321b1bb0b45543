"""What the sandbox saw: accepted items in arrival order, every request's outcome, overlaps.

Tests read it through ``GET /_sandbox/received`` to check what reached "Altegio", in which
order, and whether a sender ever had two requests for one message in flight at once.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pipeline.sandbox.validation import StatusItem


class Recorder:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._outcomes: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._in_flight_requests = 0
        self._max_in_flight_requests = 0
        self._overlaps: list[dict[str, Any]] = []
        self._next_request = 0

    def next_request_number(self) -> int:
        self._next_request += 1
        return self._next_request

    def accept(self, request_number: int, token_label: str, items: list[StatusItem]) -> None:
        """Record accepted items, in the order they appeared in the request."""
        received_at = _now()
        for index, item in enumerate(items):
            self._items.append(
                {
                    "seq": len(self._items) + 1,
                    "request": request_number,
                    "index": index,
                    "received_at": received_at,
                    "token": token_label,
                    **item.to_json(),
                }
            )

    def outcome(self, request_number: int, outcome: str, items: int | None) -> None:
        """Note how a request was answered: an HTTP status (``"200"``) or a fault kind."""
        self._outcomes[outcome] += 1
        self._requests.append(
            {"request": request_number, "outcome": outcome, "items": items, "at": _now()}
        )

    def enter(self, request_number: int, ids: list[str]) -> None:
        """A request carrying ``ids`` is being answered; note any id already in flight."""
        self._in_flight_requests += 1
        self._max_in_flight_requests = max(self._max_in_flight_requests, self._in_flight_requests)
        for message_id in ids:
            if self._in_flight[message_id]:
                self._overlaps.append({"request": request_number, "id": message_id})
            self._in_flight[message_id] += 1

    def leave(self, ids: list[str]) -> None:
        self._in_flight_requests -= 1
        for message_id in ids:
            self._in_flight[message_id] -= 1
            if not self._in_flight[message_id]:
                del self._in_flight[message_id]

    def snapshot(self) -> dict[str, Any]:
        return {
            "count": len(self._items),
            "items": list(self._items),
            "requests": sorted(self._requests, key=lambda r: r["request"]),
            "stats": {
                "requests": self._next_request,
                "outcomes": dict(sorted(self._outcomes.items())),
                "max_in_flight_requests": self._max_in_flight_requests,
                "overlapping_ids": list(self._overlaps),
            },
        }


def _now() -> str:
    return datetime.now(UTC).isoformat()
