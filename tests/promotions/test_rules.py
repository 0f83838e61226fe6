"""The promotion rules, pure: the status machine, the deadlines, why a ride counts, the rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models.promotions import PromotionUserStatus, RideReason
from app.services.promotions import rules
from app.services.validation import InvalidValue

S = PromotionUserStatus
START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
END = START + timedelta(days=14)
TERMS = rules.Terms(
    min_ride_amount_minor=5_000, currency="MXN", started_at=START, challenge_ends_at=END
)


def ride(**changes: object) -> rules.Ride:
    fields: dict[str, object] = {
        "is_ride": True,
        "complete": True,
        "amount_minor": 5_000,
        "currency": "MXN",
        "at": START + timedelta(days=1),
    }
    return rules.Ride(**(fields | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (S.STARTED, S.COMPLETED),
        (S.STARTED, S.EXPIRED),
        (S.COMPLETED, S.REWARDED),
        (S.COMPLETED, S.REWARD_EXPIRED),
    ],
)
def test_the_machine_allows_its_four_transitions(current: S, wanted: S) -> None:
    assert rules.transition(current, wanted) is wanted


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (S.STARTED, S.REWARDED),
        (S.STARTED, S.REWARD_EXPIRED),
        (S.STARTED, S.STARTED),
        (S.COMPLETED, S.EXPIRED),
        (S.COMPLETED, S.STARTED),
        *((final, other) for final in (S.REWARDED, S.EXPIRED, S.REWARD_EXPIRED) for other in S),
    ],
)
def test_every_other_transition_is_refused_naming_both(current: S, wanted: S) -> None:
    with pytest.raises(rules.InvalidTransition) as raised:
        rules.transition(current, wanted)
    assert (raised.value.current, raised.value.wanted) == (current, wanted)
    assert str(raised.value) == f"a promotion user can't go from {current} to {wanted}"


def test_the_deadlines_count_whole_days_from_their_start() -> None:
    assert rules.challenge_deadline(START, 14) == END
    assert rules.claim_deadline(END, 7) == END + timedelta(days=7)


@pytest.mark.parametrize(
    ("status", "now", "expected"),
    [
        (S.STARTED, END - timedelta(microseconds=1), S.STARTED),
        (S.STARTED, END, S.EXPIRED),  # half-open: the deadline itself is too late
        (S.COMPLETED, END + timedelta(days=7) - timedelta(microseconds=1), S.COMPLETED),
        (S.COMPLETED, END + timedelta(days=7), S.REWARD_EXPIRED),
        (S.REWARDED, END + timedelta(days=30), S.REWARDED),
        (S.EXPIRED, END + timedelta(days=30), S.EXPIRED),
    ],
)
def test_status_at_applies_the_deadlines(status: S, now: datetime, expected: S) -> None:
    assert rules.status_at(status, END, END + timedelta(days=7), now) is expected


def test_a_completed_run_without_a_claim_deadline_stays_completed() -> None:
    assert rules.status_at(S.COMPLETED, END, None, END + timedelta(days=99)) is S.COMPLETED


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, RideReason.COUNTED),
        ({"at": START}, RideReason.COUNTED),  # the first instant of the window
        ({"at": END - timedelta(microseconds=1)}, RideReason.COUNTED),
        ({"at": END}, RideReason.OUTSIDE_WINDOW),
        ({"at": START - timedelta(microseconds=1)}, RideReason.OUTSIDE_WINDOW),
        ({"amount_minor": 4_999}, RideReason.BELOW_MINIMUM),
        ({"amount_minor": 1_000_000}, RideReason.COUNTED),
        ({"currency": "USD"}, RideReason.CURRENCY_MISMATCH),
        ({"complete": False}, RideReason.NOT_COMPLETE),
        ({"at": None}, RideReason.NOT_COMPLETE),
        ({"is_ride": False}, RideReason.NOT_A_RIDE),
        # the first failing condition is the reason
        ({"is_ride": False, "complete": False}, RideReason.NOT_A_RIDE),
        ({"complete": False, "currency": "USD"}, RideReason.NOT_COMPLETE),
        ({"currency": "USD", "amount_minor": 1}, RideReason.CURRENCY_MISMATCH),
        ({"amount_minor": 1, "at": END}, RideReason.BELOW_MINIMUM),
    ],
)
def test_why_a_ride_counts_or_not(changes: dict[str, object], reason: RideReason) -> None:
    assert rules.ride_reason(ride(**changes), TERMS) is reason


@pytest.mark.parametrize(
    ("value", "normalized"),
    [("15", "15"), ("15.0", "15"), (" 12.50 ", "12.5"), ("0.01", "0.01"), ("100", "100")],
)
def test_a_repayment_rate_is_normalized(value: str, normalized: str) -> None:
    assert rules.check_repayment_rate(value) == normalized


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fifteen", "Give the repayment rate as a decimal percent, e.g. 15."),
        ("", "Give the repayment rate as a decimal percent, e.g. 15."),
        ("NaN", "The repayment rate must be more than 0 and at most 100."),
        ("Infinity", "The repayment rate must be more than 0 and at most 100."),
        ("0", "The repayment rate must be more than 0 and at most 100."),
        ("-1", "The repayment rate must be more than 0 and at most 100."),
        ("100.01", "The repayment rate must be more than 0 and at most 100."),
        ("1.005", "The repayment rate may have at most two decimals."),
    ],
)
def test_a_bad_repayment_rate_is_refused_saying_why(value: str, message: str) -> None:
    with pytest.raises(InvalidValue) as raised:
        rules.check_repayment_rate(value)
    assert (raised.value.reason, str(raised.value)) == ("INVALID_RATE", message)
