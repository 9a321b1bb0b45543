"""The delivery-status fold: Altegio codes, reports per part, and how parts make a message.

A message's reports can arrive in any order, twice, or contradict each other, and the
answer must not depend on the order they were read in. So a *track* (the reports about one
part, or about the whole message) keeps only what the order cannot change:

* the best intermediate status (``8`` transferred to the operator < ``4`` sent to phone),
  with the earliest (carrier time, position) at which it was reported;
* for each final status (``1`` delivered, ``2`` not delivered, ``16`` rejected, ``52`` not
  enough funds), the latest (carrier time, position) at which it was reported.

A final always beats an intermediate (never backwards: a late ``4`` after a ``1`` is in the
log but changes nothing). Two different finals are a conflict; the one reported at the later
carrier time wins, a tie going to the later log position. Duplicates are idempotent because
every update is a max.

Parts combine into the message status like this:

* a message is delivered (1) when every known part is delivered;
* a failed part makes the message failed, even while other parts are pending: ``16`` when
  every failed-or-delivered part was rejected by the operator (nothing reached the phone),
  otherwise ``2``;
* otherwise the message has the *least advanced* status among its parts that have one
  (so it is ``4`` only once a part is reported on the phone, and stays ``4`` while any part
  is still unreported), a delivered part counting as ``4`` until the others finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DELIVERED = 1
NOT_DELIVERED = 2
SENT_TO_PHONE = 4
TRANSFERRED = 8
REJECTED = 16
NOT_ENOUGH_FUNDS = 52

#: Each Altegio code's name, as reports show it.
STATUS_NAMES = {
    DELIVERED: "delivered",
    NOT_DELIVERED: "not_delivered",
    SENT_TO_PHONE: "sent_to_phone",
    TRANSFERRED: "transferred",
    REJECTED: "rejected",
    NOT_ENOUGH_FUNDS: "not_enough_funds",
}

FINAL_STATUSES = frozenset({DELIVERED, NOT_DELIVERED, REJECTED, NOT_ENOUGH_FUNDS})
INTERMEDIATE_RANK = {TRANSFERRED: 1, SENT_TO_PHONE: 2}
KNOWN_STATUSES = FINAL_STATUSES | frozenset(INTERMEDIATE_RANK)

#: (carrier time as RFC 3339 UTC text, log position): sortable, JSON-friendly.
Stamp = tuple[str, int]


def is_final(status: int | None) -> bool:
    return status in FINAL_STATUSES


@dataclass(slots=True)
class Track:
    """What the reports about one part (or the whole message) say, order-independently."""

    intermediate: int | None = None
    intermediate_at: Stamp | None = None
    finals: dict[int, Stamp] = field(default_factory=dict)

    def copy(self) -> Track:
        return Track(self.intermediate, self.intermediate_at, dict(self.finals))

    def to_json(self) -> dict:
        return {
            "i": self.intermediate,
            "ia": list(self.intermediate_at) if self.intermediate_at else None,
            "f": {str(s): list(st) for s, st in self.finals.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> Track:
        ia = data.get("ia")
        return cls(
            data.get("i"),
            (ia[0], ia[1]) if ia else None,
            {int(s): (st[0], st[1]) for s, st in data.get("f", {}).items()},
        )


def report_status(track: Track, status: int, stamp: Stamp) -> Track:
    """The track after one more report; a new Track, the given one is not changed."""
    if status not in KNOWN_STATUSES:
        raise ValueError(f"unknown Altegio status {status!r}")
    out = track.copy()
    if status in FINAL_STATUSES:
        seen = out.finals.get(status)
        if seen is None or stamp > seen:
            out.finals[status] = stamp
        return out
    rank = INTERMEDIATE_RANK[status]
    current = INTERMEDIATE_RANK.get(out.intermediate, 0) if out.intermediate else 0
    if rank > current or (
        rank == current and (out.intermediate_at is None or stamp < out.intermediate_at)
    ):
        out.intermediate, out.intermediate_at = status, stamp
    return out


def merge_tracks(tracks: list[Track]) -> Track:
    """One track holding every report of the given ones (for a part plus whole-message ones)."""
    out = Track()
    for track in tracks:
        if track.intermediate is not None and track.intermediate_at is not None:
            out = report_status(out, track.intermediate, track.intermediate_at)
        for status, stamp in track.finals.items():
            out = report_status(out, status, stamp)
    return out


@dataclass(frozen=True, slots=True)
class TrackStatus:
    status: int | None
    at: str | None
    final: bool
    #: Every distinct final reported, latest stamp each, oldest first: >1 is a conflict.
    finals: tuple[tuple[int, Stamp], ...]

    @property
    def conflicting(self) -> bool:
        return len(self.finals) > 1


def track_status(track: Track) -> TrackStatus:
    items = track.finals
    finals = tuple(items.items()) if len(items) < 2 else tuple(sorted(items.items(), key=_second))
    if finals:
        winner, stamp = finals[-1]
        return TrackStatus(winner, stamp[0], True, finals)
    if track.intermediate is not None and track.intermediate_at is not None:
        return TrackStatus(track.intermediate, track.intermediate_at[0], False, ())
    return TrackStatus(None, None, False, ())


def _second(item: tuple[int, Stamp]) -> Stamp:
    return item[1]


def combine_parts(parts: list[TrackStatus]) -> tuple[int | None, str | None, bool]:
    """(status, status time, final) of a message from its parts' statuses (module docstring)."""
    if not parts:
        return None, None, False
    if len(parts) == 1:
        # The rules below, for one part, give the part's own status: a final one as it is
        # (1, 2, 16 or 52), an intermediate one as it is (8 or 4). Most messages have one.
        only = parts[0]
        return only.status, only.at, only.final
    finals = [p for p in parts if p.final]
    failed = [p for p in finals if p.status != DELIVERED]
    if failed:
        everything_rejected = all(p.status in (REJECTED, NOT_ENOUGH_FUNDS) for p in finals)
        status = REJECTED if everything_rejected else NOT_DELIVERED
        if all(p.status == NOT_ENOUGH_FUNDS for p in finals):
            status = NOT_ENOUGH_FUNDS
        return status, max(p.at for p in failed if p.at), True
    if len(finals) == len(parts):
        return DELIVERED, max(p.at for p in finals if p.at), True
    known = [p for p in parts if p.status is not None]
    pending = [p for p in parts if not p.final]
    if any(p.status is None for p in pending):
        # A part with no report yet: the message is only as far as its slowest part, but a
        # submission already means "transferred to the operator".
        rank = min((INTERMEDIATE_RANK.get(p.status, 2) for p in known), default=None)
    else:
        rank = min(INTERMEDIATE_RANK.get(p.status, 2) for p in pending)
    if rank is None:
        return None, None, False
    status = SENT_TO_PHONE if rank >= 2 else TRANSFERRED
    at = max((p.at for p in known if p.at), default=None)
    return status, at, False
