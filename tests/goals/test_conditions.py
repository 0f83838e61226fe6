"""Goal conditions and time windows: parsing, errors naming the field, JSON round trip."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.errors import DomainError
from app.services.goals.conditions import (
    FixedPeriod,
    GoalConditions,
    GoalErrorCode,
    MinPrice,
    RollingPeriod,
    conditions_to_json,
    goal_period,
    parse_conditions,
)
from app.services.goals.time_window import TimeWindow, parse_time_window
from app.services.orders.facts import OrderKind, PaymentMethod, RideClass

Code = GoalErrorCode
START = datetime(2025, 3, 1, tzinfo=UTC)
EXPIRES = datetime(2025, 4, 1, tzinfo=UTC)


def conditions_json(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"target": 5, "periodDays": 7}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not ...}


# --- parsing -----------------------------------------------------------------------------


def test_minimal_conditions_take_the_defaults() -> None:
    conditions = parse_conditions({"target": 5, "periodDays": 7})
    assert conditions == GoalConditions(target=5, period=RollingPeriod(7))
    assert conditions.order_kinds == {OrderKind.RIDE}
    assert conditions.ride_classes == frozenset()
    assert conditions.time_window is None


def test_full_conditions() -> None:
    conditions = parse_conditions(
        {
            "rideClasses": ["econom", "comfort", "econom"],
            "target": 1000,
            "startsAt": "2025-03-01T03:00:00+03:00",
            "endsAt": "2025-04-01T00:00:00Z",
            "timeWindow": {"start": "22:00", "end": "06:00"},
            "paymentMethods": ["card", "wallet"],
            "minPrice": {"amountMinor": 0, "currency": "RUB"},
            "orderKinds": ["RIDE", "PLUS_PURCHASE"],
        }
    )
    assert conditions.ride_classes == {RideClass.ECONOM, RideClass.COMFORT}
    assert conditions.period == FixedPeriod(START, EXPIRES)
    assert conditions.period.starts_at.tzinfo is UTC
    assert conditions.time_window == TimeWindow(time(22), time(6))
    assert conditions.payment_methods == {PaymentMethod.CARD, PaymentMethod.WALLET}
    assert conditions.min_price == MinPrice(0, "RUB")
    assert conditions.order_kinds == {OrderKind.RIDE, OrderKind.PLUS_PURCHASE}


BAD_CONDITIONS = [
    # (overrides, code, field)
    ({"target": 0}, Code.INVALID_TARGET, "conditions.target"),
    ({"target": 1001}, Code.INVALID_TARGET, "conditions.target"),
    ({"target": "5"}, Code.INVALID_TARGET, "conditions.target"),
    ({"target": True}, Code.INVALID_TARGET, "conditions.target"),
    ({"target": 2.0}, Code.INVALID_TARGET, "conditions.target"),
    ({"target": ...}, Code.INVALID_TARGET, "conditions.target"),
    ({"periodDays": 0}, Code.INVALID_PERIOD, "conditions.periodDays"),
    ({"periodDays": 367}, Code.INVALID_PERIOD, "conditions.periodDays"),
    ({"periodDays": ...}, Code.INVALID_PERIOD, "conditions.periodDays"),
    (
        {"startsAt": "2025-03-01T00:00:00Z", "endsAt": "2025-04-01T00:00:00Z"},
        Code.INVALID_PERIOD,
        "conditions.periodDays",
    ),
    (
        {"periodDays": ..., "startsAt": "2025-03-01T00:00:00Z"},
        Code.INVALID_PERIOD,
        "conditions.endsAt",
    ),
    (
        {"periodDays": ..., "endsAt": "2025-03-01T00:00:00Z"},
        Code.INVALID_PERIOD,
        "conditions.startsAt",
    ),
    (
        {"periodDays": ..., "startsAt": "2025-03-01T00:00:00", "endsAt": "2025-04-01T00:00Z"},
        Code.INVALID_PERIOD,
        "conditions.startsAt",
    ),
    (
        {"periodDays": ..., "startsAt": "yesterday", "endsAt": "2025-04-01T00:00Z"},
        Code.INVALID_PERIOD,
        "conditions.startsAt",
    ),
    (
        {"periodDays": ..., "startsAt": "2025-03-01T03:00+03:00", "endsAt": "2025-03-01T00:00Z"},
        Code.INVALID_PERIOD,
        "conditions.endsAt",
    ),
    ({"timeWindow": "22:00-06:00"}, Code.INVALID_TIME_WINDOW, "conditions.timeWindow"),
    ({"timeWindow": {"start": "22:00"}}, Code.INVALID_TIME_WINDOW, "conditions.timeWindow.end"),
    (
        {"timeWindow": {"start": "24:00", "end": "06:00"}},
        Code.INVALID_TIME_WINDOW,
        "conditions.timeWindow.start",
    ),
    (
        {"timeWindow": {"start": "25:00", "end": "06:00"}},
        Code.INVALID_TIME_WINDOW,
        "conditions.timeWindow.start",
    ),
    (
        {"timeWindow": {"start": "22:60", "end": "06:00"}},
        Code.INVALID_TIME_WINDOW,
        "conditions.timeWindow.start",
    ),
    (
        {"timeWindow": {"start": "22:00", "end": "6 am"}},
        Code.INVALID_TIME_WINDOW,
        "conditions.timeWindow.end",
    ),
    (
        {"timeWindow": {"start": "22:00", "end": "06:00:00"}},
        Code.INVALID_TIME_WINDOW,
        "conditions.timeWindow.end",
    ),
    (
        {"timeWindow": {"start": "22:00", "end": 6}},
        Code.INVALID_TIME_WINDOW,
        "conditions.timeWindow.end",
    ),
    (
        {"timeWindow": {"start": "08:00", "end": "8:00"}},
        Code.INVALID_TIME_WINDOW,
        "conditions.timeWindow",
    ),
    (
        {"timeWindow": {"start": "08:00", "end": "09:00", "tz": "UTC"}},
        Code.INVALID_TIME_WINDOW,
        "conditions.timeWindow.tz",
    ),
    ({"rideClasses": ["cargo"]}, Code.UNKNOWN_RIDE_CLASS, "conditions.rideClasses"),
    ({"rideClasses": ["Econom"]}, Code.UNKNOWN_RIDE_CLASS, "conditions.rideClasses"),
    ({"rideClasses": "econom"}, Code.UNKNOWN_RIDE_CLASS, "conditions.rideClasses"),
    ({"paymentMethods": ["bitcoin"]}, Code.UNKNOWN_PAYMENT_METHOD, "conditions.paymentMethods"),
    ({"paymentMethods": [1]}, Code.UNKNOWN_PAYMENT_METHOD, "conditions.paymentMethods"),
    ({"orderKinds": ["TAXI"]}, Code.UNKNOWN_ORDER_KIND, "conditions.orderKinds"),
    ({"orderKinds": []}, Code.UNKNOWN_ORDER_KIND, "conditions.orderKinds"),
    ({"minPrice": 500}, Code.INVALID_MIN_PRICE, "conditions.minPrice"),
    (
        {"minPrice": {"amountMinor": -1, "currency": "RUB"}},
        Code.INVALID_MIN_PRICE,
        "conditions.minPrice.amountMinor",
    ),
    (
        {"minPrice": {"amountMinor": 2_000_000_001, "currency": "RUB"}},
        Code.INVALID_MIN_PRICE,
        "conditions.minPrice.amountMinor",
    ),
    ({"minPrice": {"currency": "RUB"}}, Code.INVALID_MIN_PRICE, "conditions.minPrice.amountMinor"),
    (
        {"minPrice": {"amountMinor": 100}},
        Code.INVALID_CURRENCY,
        "conditions.minPrice.currency",
    ),
    (
        {"minPrice": {"amountMinor": 100, "currency": "rub"}},
        Code.INVALID_CURRENCY,
        "conditions.minPrice.currency",
    ),
    (
        {"minPrice": {"amountMinor": 100, "currency": "XXX"}},
        Code.INVALID_CURRENCY,
        "conditions.minPrice.currency",
    ),
    ({"rideClass": ["econom"]}, Code.INVALID_CONDITIONS, "conditions.rideClass"),
]


@pytest.mark.parametrize(("overrides", "code", "field"), BAD_CONDITIONS)
def test_bad_conditions_name_the_field(
    overrides: dict[str, Any], code: GoalErrorCode, field: str
) -> None:
    with pytest.raises(DomainError) as caught:
        parse_conditions(conditions_json(**overrides))
    assert (caught.value.code, caught.value.field) == (code, field)
    assert caught.value.message


def test_conditions_must_be_an_object() -> None:
    with pytest.raises(DomainError) as caught:
        parse_conditions([1, 2])  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.field) == (Code.INVALID_CONDITIONS, "conditions")


def test_a_custom_field_prefix() -> None:
    with pytest.raises(DomainError) as caught:
        parse_conditions({"target": 0, "periodDays": 1}, field="input.conditions")
    assert caught.value.field == "input.conditions.target"


def test_an_ended_fixed_period_is_refused_only_given_now() -> None:
    data = conditions_json(
        periodDays=..., startsAt="2025-03-01T00:00:00Z", endsAt="2025-04-01T00:00:00Z"
    )
    assert parse_conditions(data).period == FixedPeriod(START, EXPIRES)
    just_before = parse_conditions(data, now=EXPIRES - timedelta(seconds=1))
    assert just_before.period == FixedPeriod(START, EXPIRES)
    with pytest.raises(DomainError) as caught:
        parse_conditions(data, now=EXPIRES)
    assert (caught.value.code, caught.value.field) == (Code.INVALID_PERIOD, "conditions.endsAt")


def test_json_form_is_canonical() -> None:
    data = {
        "rideClasses": ["econom", "comfort"],
        "target": 3,
        "startsAt": "2025-03-01T03:00:00+03:00",
        "endsAt": "2025-04-01T00:00:00Z",
        "timeWindow": {"start": "6:05", "end": "09:00"},
        "paymentMethods": ["wallet", "card"],
        "minPrice": {"amountMinor": 100, "currency": "USD"},
    }
    assert conditions_to_json(parse_conditions(data)) == {
        "rideClasses": ["comfort", "econom"],
        "target": 3,
        "startsAt": "2025-03-01T00:00:00+00:00",
        "endsAt": "2025-04-01T00:00:00+00:00",
        "timeWindow": {"start": "06:05", "end": "09:00"},
        "paymentMethods": ["card", "wallet"],
        "minPrice": {"amountMinor": 100, "currency": "USD"},
        "orderKinds": ["RIDE"],
    }


# --- goal period -------------------------------------------------------------------------


def test_rolling_period_starts_at_activation() -> None:
    conditions = GoalConditions(target=1, period=RollingPeriod(7))
    assert goal_period(conditions, START) == (START, START + timedelta(days=7))


def test_fixed_period_never_starts_before_activation() -> None:
    conditions = GoalConditions(target=1, period=FixedPeriod(START, EXPIRES))
    assert goal_period(conditions, START - timedelta(days=3)) == (START, EXPIRES)
    later = START + timedelta(days=3)
    assert goal_period(conditions, later) == (later, EXPIRES)


# --- time windows ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "moment", "inside"),
    [
        ("08:00", "20:00", time(8, 0), True),
        ("08:00", "20:00", time(19, 59, 59), True),
        ("08:00", "20:00", time(20, 0), False),
        ("08:00", "20:00", time(7, 59), False),
        ("22:00", "06:00", time(22, 0), True),
        ("22:00", "06:00", time(23, 59, 59, 999999), True),
        ("22:00", "06:00", time(0, 0), True),
        ("22:00", "06:00", time(5, 59), True),
        ("22:00", "06:00", time(6, 0), False),
        ("22:00", "06:00", time(12, 0), False),
        ("22:00", "06:00", time(21, 59), False),
        ("00:00", "23:59", time(23, 59), False),
        ("23:59", "00:00", time(23, 59, 30), True),
    ],
)
def test_window_contains(start: str, end: str, moment: time, inside: bool) -> None:
    window = parse_time_window({"start": start, "end": end}, "w")
    assert window.contains(moment) is inside


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("9:05", time(9, 5)), ("09:05", time(9, 5)), ("0:00", time(0, 0)), ("23:59", time(23, 59))],
)
def test_a_one_digit_hour_is_accepted(text: str, parsed: time) -> None:
    """The hour may have one digit ("9:05" is 09:05); the stored form is always HH:MM."""
    window = parse_time_window({"start": text, "end": "23:59" if text != "23:59" else "00:00"}, "w")
    assert window.start == parsed
    assert window.to_json()["start"] == f"{parsed.hour:02d}:{parsed.minute:02d}"


@pytest.mark.parametrize("text", ["9:5", "09:5", "9:", "009:05", "9:005", " 9:05", "9h05"])
def test_minutes_need_two_digits(text: str) -> None:
    with pytest.raises(DomainError) as refused:
        parse_time_window({"start": text, "end": "23:00"}, "w")
    assert (refused.value.code, refused.value.field) == (Code.INVALID_TIME_WINDOW, "w.start")


def test_window_refuses_bad_bounds_in_code() -> None:
    with pytest.raises(ValueError, match="differ"):
        TimeWindow(time(8), time(8))
    with pytest.raises(ValueError, match="whole minute"):
        TimeWindow(time(8, 0, 30), time(9))


minutes = st.builds(time, st.integers(0, 23), st.integers(0, 59))
any_time = st.times()


@given(start=minutes, end=minutes, moment=any_time)
def test_window_and_its_complement_partition_the_day(start: time, end: time, moment: time) -> None:
    if start == end:
        return
    window, complement = TimeWindow(start, end), TimeWindow(end, start)
    assert window.contains(moment) != complement.contains(moment)


# --- conditions JSON round trip ---------------------------------------------------------

utc_moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def fixed_periods(draw: st.DrawFn) -> FixedPeriod:
    starts_at = draw(utc_moments)
    length = draw(st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=800)))
    return FixedPeriod(starts_at, starts_at + length)


@st.composite
def windows(draw: st.DrawFn) -> TimeWindow:
    start = draw(minutes)
    end = draw(minutes.filter(lambda end: end != start))
    return TimeWindow(start, end)


conditions_strategy = st.builds(
    GoalConditions,
    target=st.integers(1, 1000),
    period=st.one_of(st.builds(RollingPeriod, st.integers(1, 366)), fixed_periods()),
    ride_classes=st.frozensets(st.sampled_from(RideClass)),
    payment_methods=st.frozensets(st.sampled_from(PaymentMethod)),
    time_window=st.none() | windows(),
    min_price=st.none()
    | st.builds(MinPrice, st.integers(0, 2_000_000_000), st.sampled_from(["RUB", "USD", "KZT"])),
    order_kinds=st.frozensets(st.sampled_from(OrderKind), min_size=1),
)


@given(conditions_strategy)
def test_conditions_round_trip_through_json(conditions: GoalConditions) -> None:
    data = conditions_to_json(conditions)
    parsed = parse_conditions(data)
    assert parsed == conditions
    assert conditions_to_json(parsed) == data
