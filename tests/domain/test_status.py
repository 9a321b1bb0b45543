"""The status fold: one track's rules, and how parts make a message."""

from __future__ import annotations

from decimal import Decimal

from pipeline.domain.status import Track, combine_parts, report_status, track_status
from pipeline.domain.tariffs import TariffRule
from pipeline.projector.derive import FoldRules
from tests.projector.events import accepted, fold_all, refused, report, stored, submitted

RUB = FoldRules(tariffs=[TariffRule(prefix="+7", price_per_part=Decimal("2.27"), currency="RUB")])


def _track(*reports: tuple[int, str, int]) -> Track:
    track = Track()
    for status, time, position in reports:
        track = report_status(track, status, (time, position))
    return track


def test_status_moves_forward_from_transferred_to_sent_to_delivered() -> None:
    assert track_status(_track((8, "a", 1))).status == 8
    assert track_status(_track((8, "a", 1), (4, "b", 2))).status == 4
    done = track_status(_track((8, "a", 1), (4, "b", 2), (1, "c", 3)))
    assert (done.status, done.final) == (1, True)


def test_late_enroute_after_delivered_is_ignored() -> None:
    status = track_status(_track((1, "b", 1), (4, "c", 2), (8, "d", 3)))
    assert (status.status, status.final, status.conflicting) == (1, True, False)


def test_duplicate_reports_change_nothing() -> None:
    once = _track((4, "a", 1), (1, "b", 2))
    assert report_status(report_status(once, 1, ("b", 2)), 4, ("a", 1)) == once


def test_two_different_finals_conflict_and_the_later_carrier_time_wins() -> None:
    status = track_status(_track((2, "2026-01-15T10:05", 1), (1, "2026-01-15T10:03", 2)))
    assert (status.status, status.conflicting) == (2, True)


def test_conflicting_finals_at_the_same_carrier_time_go_to_the_later_position() -> None:
    assert track_status(_track((2, "t", 7), (1, "t", 9))).status == 1
    assert track_status(_track((1, "t", 9), (2, "t", 7))).status == 1


def test_a_message_is_delivered_only_when_every_part_is() -> None:
    delivered = track_status(_track((1, "b", 2)))
    pending = track_status(_track((4, "a", 1)))
    assert combine_parts([delivered, pending]) == (4, "b", False)
    assert combine_parts([delivered, delivered])[0] == 1


def test_a_failed_part_makes_the_message_not_delivered() -> None:
    delivered = track_status(_track((1, "b", 2)))
    failed = track_status(_track((2, "c", 3)))
    pending = track_status(_track((8, "a", 1)))
    assert combine_parts([delivered, failed]) == (2, "c", True)
    assert combine_parts([pending, failed])[0:3:2] == (2, True)


def test_a_message_is_rejected_only_when_every_finished_part_was_rejected() -> None:
    rejected = track_status(_track((16, "c", 3)))
    delivered = track_status(_track((1, "b", 2)))
    assert combine_parts([rejected, rejected])[0] == 16
    assert combine_parts([rejected, delivered])[0] == 2


def test_submission_alone_means_transferred_to_the_operator() -> None:
    _facts, view = fold_all("m1", stored([accepted("m1"), submitted("m1", "c1")]), RUB)
    assert (view.status, view.is_final) == (8, False)
    assert view.payment_sum == Decimal("2.27") and view.currency_iso == "RUB"


def test_accepted_only_has_no_status_yet() -> None:
    _facts, view = fold_all("m1", stored([accepted("m1")]), RUB)
    assert view.status is None


def test_refused_message_is_final_not_enough_funds_and_costs_nothing() -> None:
    _facts, view = fold_all("m1", stored([accepted("m1"), refused("m1")]), RUB)
    assert (view.status, view.is_final, view.payment_sum) == (52, True, Decimal("0.00"))


def test_delivered_report_after_refusal_is_a_refused_then_delivered_mismatch() -> None:
    events = stored([accepted("m1"), refused("m1"), report(None, 1, mid="m1")])
    _facts, view = fold_all("m1", events, RUB)
    assert view.status == 52
    assert "refused_then_delivered" in view.conditions


def test_per_part_reports_do_not_multiply_the_message_or_its_parts() -> None:
    text = "a" * 200  # 2 parts
    events = stored([
        accepted("m1", text=text),
        submitted("m1", "c1", part=1, parts=2), submitted("m1", "c2", part=2, parts=2),
        report("c1", 1, 3), report("c2", 4, 3),
    ])  # fmt: skip
    _facts, view = fold_all("m1", events, RUB)
    assert (view.status, view.parts_amount, view.parts_source) == (4, 2, "carrier")
    assert view.payment_sum == Decimal("4.54")
    _facts, view = fold_all("m1", [*events, *stored([report("c2", 1, 4)], start=10)], RUB)
    assert (view.status, view.is_final, view.parts_amount) == (1, True, 2)


def test_reports_with_a_part_number_count_parts_the_carrier_stated() -> None:
    events = stored([
        accepted("m1", text="a" * 200), submitted("m1", "c1", parts=2),
        report("c1", 1, 3, part=1),
    ])  # fmt: skip
    _facts, view = fold_all("m1", events, RUB)
    assert (view.status, view.is_final) == (4, False)  # part 2 not yet delivered


def test_parts_come_from_the_dlr_first_then_the_submission_then_the_text() -> None:
    base = [accepted("m1", text="Hello")]
    assert fold_all("m1", stored(base), RUB)[1].parts_source == "computed"
    with_sub = [*base, submitted("m1", "c1", parts=2)]
    assert fold_all("m1", stored(with_sub), RUB)[1].parts_amount == 2
    with_dlr = [*with_sub, report("c1", 1, 3, parts=3)]
    _facts, view = fold_all("m1", stored(with_dlr), RUB)
    assert (view.parts_amount, view.parts_source) == (3, "carrier")
    assert view.conditions["parts_mismatch"] == {"carrier": 3, "computed": 1}


def test_no_tariff_leaves_the_price_null_and_opens_no_tariff() -> None:
    _facts, view = fold_all("m1", stored([accepted("m1", phone="+14155550100")]), RUB)
    assert view.payment_sum is None and view.currency_iso is None
    assert "no_tariff" in view.conditions


def test_free_message_costs_zero_in_the_tariff_currency() -> None:
    _facts, view = fold_all("m1", stored([accepted("m1", free=True)]), RUB)
    assert (view.payment_sum, view.currency_iso) == (Decimal("0.00"), "RUB")


def test_carrier_cost_sums_distinct_parts_and_is_kept_beside_the_price() -> None:
    events = stored([
        accepted("m1", text="a" * 200),
        submitted("m1", "c1", part=1), submitted("m1", "c2", part=2),
        report("c1", 1, 3, cost="0.0333", currency="EUR", cost_scope="part"),
        report("c1", 1, 3.5, cost="0.0333", currency="EUR", cost_scope="part"),
        report("c2", 1, 4, cost="0.0333", currency="EUR", cost_scope="part"),
    ])  # fmt: skip
    _facts, view = fold_all("m1", events, RUB)
    assert (view.carrier_cost, view.carrier_cost_currency) == (Decimal("0.0666"), "EUR")
    assert view.currency_iso == "RUB"


def test_version_rises_only_when_the_altegio_payload_changes() -> None:
    events = stored([accepted("m1"), submitted("m1", "c1"), report("c1", 8, 2), report("c1", 4, 3)])
    facts, _view = fold_all("m1", events[:3], RUB)
    assert facts.version == 2  # accepted (no status), then 8; the repeated 8 changed nothing
    facts, _view = fold_all("m1", events, RUB)
    assert facts.version == 3
