"""`match_order`: every progress reason, the check order, periods, DST (order facts are
tested in tests/orders/test_facts.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from app.services.goals.conditions import (
    GoalConditions,
    MinPrice,
    ProgressReason,
    RollingPeriod,
)
from app.services.goals.matching import match_order
from app.services.goals.time_window import TimeWindow
from app.services.orders.facts import OrderFacts, OrderKind, OrderStatus, PaymentMethod, RideClass

START = datetime(2025, 3, 1, tzinfo=UTC)
EXPIRES = datetime(2025, 4, 1, tzinfo=UTC)


def order(**overrides: Any) -> OrderFacts:
    fields: dict[str, Any] = {
        "order_id": "o-1",
        "kind": OrderKind.RIDE,
        "status": OrderStatus.COMPLETE,
        "ride_class": "comfort",
        "payment_method": "card",
        "price_minor": 50_000,
        "currency": "RUB",
        "completed_at": datetime(2025, 3, 10, 20, 0, tzinfo=UTC),  # 23:00 in Moscow
        "city_timezone": "Europe/Moscow",
    }
    fields.update(overrides)
    return OrderFacts(**fields)


def match(conditions: GoalConditions, facts: OrderFacts) -> ProgressReason:
    return match_order(conditions, facts, goal_starts_at=START, goal_expires_at=EXPIRES)


# --- matching ----------------------------------------------------------------------------

STRICT = GoalConditions(
    target=5,
    period=RollingPeriod(31),
    ride_classes=frozenset({RideClass.COMFORT, RideClass.BUSINESS}),
    payment_methods=frozenset({PaymentMethod.CARD}),
    time_window=TimeWindow(time(22), time(6)),
    min_price=MinPrice(30_000, "RUB"),
)

REASONS = [
    # (order overrides, reason) — each fails exactly one check of STRICT
    ({}, ProgressReason.COUNTED),
    ({"kind": OrderKind.PLUS_PURCHASE}, ProgressReason.WRONG_ORDER_KIND),
    ({"status": OrderStatus.CANCELLED}, ProgressReason.NOT_COMPLETE),
    ({"status": OrderStatus.REFUNDED}, ProgressReason.NOT_COMPLETE),
    ({"status": OrderStatus.IN_PROGRESS, "completed_at": None}, ProgressReason.NOT_COMPLETE),
    ({"completed_at": EXPIRES}, ProgressReason.OUTSIDE_PERIOD),
    ({"completed_at": START - timedelta(microseconds=1)}, ProgressReason.OUTSIDE_PERIOD),
    ({"ride_class": "econom"}, ProgressReason.WRONG_RIDE_CLASS),
    ({"ride_class": "cargo"}, ProgressReason.WRONG_RIDE_CLASS),
    ({"ride_class": None}, ProgressReason.WRONG_RIDE_CLASS),
    ({"payment_method": "cash"}, ProgressReason.PAYMENT_METHOD),
    ({"payment_method": None}, ProgressReason.PAYMENT_METHOD),
    ({"currency": "USD"}, ProgressReason.CURRENCY_MISMATCH),
    ({"price_minor": 29_999}, ProgressReason.BELOW_MIN_PRICE),
    ({"price_minor": 30_000}, ProgressReason.COUNTED),
    # 15:00 UTC is 18:00 in Moscow: outside 22-06 local, though 22-06 UTC would not matter
    ({"completed_at": datetime(2025, 3, 10, 15, tzinfo=UTC)}, ProgressReason.OUTSIDE_TIME_WINDOW),
    # 02:30 UTC is 05:30 in Moscow (inside), 03:00 UTC is 06:00 (the end is exclusive)
    ({"completed_at": datetime(2025, 3, 10, 2, 30, tzinfo=UTC)}, ProgressReason.COUNTED),
    ({"completed_at": datetime(2025, 3, 10, 3, tzinfo=UTC)}, ProgressReason.OUTSIDE_TIME_WINDOW),
]


@pytest.mark.parametrize(("overrides", "reason"), REASONS)
def test_match_order_reasons(overrides: dict[str, Any], reason: ProgressReason) -> None:
    assert match(STRICT, order(**overrides)) is reason


def test_every_reason_but_no_active_goal_comes_from_match_order() -> None:
    reached = {reason for _, reason in REASONS}
    assert reached == set(ProgressReason) - {ProgressReason.NO_ACTIVE_GOAL}


def test_checks_run_in_the_documented_order() -> None:
    everything_wrong = order(
        kind=OrderKind.PLUS_PURCHASE,
        status=OrderStatus.CANCELLED,
        completed_at=EXPIRES,
        ride_class="econom",
        payment_method="cash",
        price_minor=1,
        currency="USD",
    )
    expected = [
        ProgressReason.WRONG_ORDER_KIND,
        ProgressReason.NOT_COMPLETE,
        ProgressReason.OUTSIDE_PERIOD,
        ProgressReason.WRONG_RIDE_CLASS,
        ProgressReason.PAYMENT_METHOD,
        ProgressReason.CURRENCY_MISMATCH,
        ProgressReason.BELOW_MIN_PRICE,
        ProgressReason.OUTSIDE_TIME_WINDOW,
    ]
    fixes: list[dict[str, Any]] = [
        {"kind": OrderKind.RIDE},
        {"status": OrderStatus.COMPLETE},
        {"completed_at": datetime(2025, 3, 10, 12, tzinfo=UTC)},  # 15:00 Moscow
        {"ride_class": "comfort"},
        {"payment_method": "card"},
        {"currency": "RUB"},
        {"price_minor": 30_000},
        {"completed_at": datetime(2025, 3, 10, 20, tzinfo=UTC)},  # 23:00 Moscow
    ]
    facts = everything_wrong
    for reason, fix in zip(expected, fixes, strict=True):
        assert match(STRICT, facts) is reason
        facts = replace(facts, **fix)
    assert match(STRICT, facts) is ProgressReason.COUNTED


def test_open_conditions_count_any_complete_ride_in_period() -> None:
    anything = GoalConditions(target=1, period=RollingPeriod(1))
    facts = order(ride_class="cargo", payment_method=None, price_minor=0, currency="USD")
    assert match(anything, facts) is ProgressReason.COUNTED


def test_period_is_half_open() -> None:
    conditions = GoalConditions(target=1, period=RollingPeriod(1))
    on_start = order(completed_at=START)
    just_before_end = order(completed_at=EXPIRES - timedelta(microseconds=1))
    assert match(conditions, on_start) is ProgressReason.COUNTED
    assert match(conditions, just_before_end) is ProgressReason.COUNTED
    assert match(conditions, order(completed_at=EXPIRES)) is ProgressReason.OUTSIDE_PERIOD


def test_period_compares_instants_across_offsets() -> None:
    conditions = GoalConditions(target=1, period=RollingPeriod(1))
    moscow = datetime.fromisoformat("2025-04-01T02:59:59+03:00")  # 23:59:59 UTC, Mar 31
    assert match(conditions, order(completed_at=moscow)) is ProgressReason.COUNTED
    moscow_end = datetime.fromisoformat("2025-04-01T03:00:00+03:00")
    assert match(conditions, order(completed_at=moscow_end)) is ProgressReason.OUTSIDE_PERIOD


NIGHT = GoalConditions(target=1, period=RollingPeriod(1), time_window=TimeWindow(time(22), time(6)))
LATE_EVENING = GoalConditions(
    target=1, period=RollingPeriod(1), time_window=TimeWindow(time(22), time(23))
)
NEW_YORK_DAYS = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("conditions", "completed_at", "reason"),
    [
        # 2025-03-09 is the spring-forward day in New York (EST -5 -> EDT -4).
        (NIGHT, "2025-03-10T03:30:00+00:00", ProgressReason.COUNTED),  # 23:30 EDT, Mar 9
        (NIGHT, "2025-03-09T04:30:00+00:00", ProgressReason.COUNTED),  # 23:30 EST, Mar 8
        (NIGHT, "2025-03-09T07:30:00+00:00", ProgressReason.COUNTED),  # 03:30 EDT, after the jump
        (NIGHT, "2025-03-09T10:00:00+00:00", ProgressReason.OUTSIDE_TIME_WINDOW),  # 06:00 EDT
        # 02:30 UTC on Mar 10 is 22:30 EDT; on the old offset it would be 21:30, outside.
        (LATE_EVENING, "2025-03-10T02:30:00+00:00", ProgressReason.COUNTED),
        (LATE_EVENING, "2025-03-09T02:30:00+00:00", ProgressReason.OUTSIDE_TIME_WINDOW),  # 21:30
        # 2025-11-02 is the fall-back day: 23:30 EST is 04:30 UTC the next day.
        (NIGHT, "2025-11-03T04:30:00+00:00", ProgressReason.COUNTED),
        (LATE_EVENING, "2025-11-03T03:30:00+00:00", ProgressReason.COUNTED),  # 22:30 EST
        (LATE_EVENING, "2025-11-02T02:30:00+00:00", ProgressReason.COUNTED),  # 22:30 EDT, Nov 1
        (LATE_EVENING, "2025-11-03T02:30:00+00:00", ProgressReason.OUTSIDE_TIME_WINDOW),  # 21:30
    ],
)
def test_time_window_in_new_york_across_dst(
    conditions: GoalConditions, completed_at: str, reason: ProgressReason
) -> None:
    facts = order(
        completed_at=datetime.fromisoformat(completed_at), city_timezone="America/New_York"
    )
    starts, expires = NEW_YORK_DAYS
    assert match_order(conditions, facts, goal_starts_at=starts, goal_expires_at=expires) is reason


def test_the_repeated_hour_on_fall_back_is_the_same_wall_clock() -> None:
    one_am = GoalConditions(
        target=1, period=RollingPeriod(1), time_window=TimeWindow(time(1), time(2))
    )
    starts, expires = NEW_YORK_DAYS
    for utc in ("2025-11-02T05:30:00+00:00", "2025-11-02T06:30:00+00:00"):  # 01:30 EDT, 01:30 EST
        facts = order(completed_at=datetime.fromisoformat(utc), city_timezone="America/New_York")
        assert facts.local_completed_at is not None
        assert facts.local_completed_at.time() == time(1, 30)
        assert match_order(one_am, facts, goal_starts_at=starts, goal_expires_at=expires) is (
            ProgressReason.COUNTED
        )
