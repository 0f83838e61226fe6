"""What a goal asks for: the conditions an order must meet to count, parsed from JSON.

`parse_conditions` validates a JSON-like mapping with camelCase keys and raises the first
DomainError, naming the field (`conditions.timeWindow.start`); unknown keys are refused so
that a misspelt key never silently widens a goal. `conditions_to_json` writes the canonical
form back (sorted lists, UTC times): `parse_conditions(conditions_to_json(c)) == c`.

    {
      "rideClasses": ["comfort", "econom"],      # empty or absent = any class
      "target": 5,                               # 1-1000 orders
      "periodDays": 7,                           # or "startsAt"/"endsAt" (ISO 8601 with offset)
      "timeWindow": {"start": "22:00", "end": "06:00"},   # optional; may cross midnight
      "paymentMethods": ["card"],                # empty or absent = any method
      "minPrice": {"amountMinor": 50000, "currency": "RUB"},  # optional
      "orderKinds": ["RIDE"]                     # absent = RIDE; never empty
    }

Ride classes, payment methods and order kinds are the orders domain's values
(`app/services/orders/facts.py`). `snapshot_conditions` reads a user goal's stored copy.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from app.services.errors import DomainError
from app.services.goals.codes import GoalErrorCode
from app.services.goals.fields import (
    MAX_MINOR,
    check_keys,
    read_currency,
    read_enum_set,
    read_int,
    read_mapping,
    read_moment,
)
from app.services.goals.time_window import TimeWindow, parse_time_window
from app.services.orders.facts import OrderKind, PaymentMethod, RideClass

__all__ = [
    "FixedPeriod",
    "GoalConditions",
    "GoalErrorCode",
    "MinPrice",
    "Period",
    "ProgressReason",
    "RollingPeriod",
    "conditions_to_json",
    "goal_period",
    "parse_conditions",
    "snapshot_conditions",
]

Code = GoalErrorCode

MIN_TARGET, MAX_TARGET = 1, 1000
MIN_PERIOD_DAYS, MAX_PERIOD_DAYS = 1, 366


class ProgressReason(enum.StrEnum):
    """Why a processed order did (COUNTED) or did not count: one ledger row per order."""

    COUNTED = "COUNTED"
    WRONG_ORDER_KIND = "WRONG_ORDER_KIND"
    NOT_COMPLETE = "NOT_COMPLETE"
    OUTSIDE_PERIOD = "OUTSIDE_PERIOD"
    WRONG_RIDE_CLASS = "WRONG_RIDE_CLASS"
    PAYMENT_METHOD = "PAYMENT_METHOD"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    BELOW_MIN_PRICE = "BELOW_MIN_PRICE"
    OUTSIDE_TIME_WINDOW = "OUTSIDE_TIME_WINDOW"
    NO_ACTIVE_GOAL = "NO_ACTIVE_GOAL"  # decided by the caller: there was no goal to match


@dataclass(frozen=True, slots=True)
class RollingPeriod:
    """The goal lasts `days` times 24 hours from the moment it becomes ACTIVE."""

    days: int


@dataclass(frozen=True, slots=True)
class FixedPeriod:
    """The goal runs between absolute UTC times, [starts_at, ends_at)."""

    starts_at: datetime
    ends_at: datetime


Period = RollingPeriod | FixedPeriod


@dataclass(frozen=True, slots=True)
class MinPrice:
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class GoalConditions:
    target: int
    period: Period
    ride_classes: frozenset[RideClass] = frozenset()  # empty = any
    payment_methods: frozenset[PaymentMethod] = frozenset()  # empty = any
    time_window: TimeWindow | None = None  # None = the whole day
    min_price: MinPrice | None = None
    order_kinds: frozenset[OrderKind] = field(default=frozenset({OrderKind.RIDE}))


_KEYS = (
    "rideClasses",
    "target",
    "periodDays",
    "startsAt",
    "endsAt",
    "timeWindow",
    "paymentMethods",
    "minPrice",
    "orderKinds",
)


def parse_conditions(
    data: Mapping[str, Any], *, field: str = "conditions", now: datetime | None = None
) -> GoalConditions:
    """Validated conditions, or the first DomainError naming `field.<key>`.

    With `now`, an absolute period that has already ended is refused (for new goals; stored
    conditions are re-read without it).
    """
    data = read_mapping(data, field, Code.INVALID_CONDITIONS)
    check_keys(data, _KEYS, field, Code.INVALID_CONDITIONS)
    window = data.get("timeWindow")
    price = data.get("minPrice")
    return GoalConditions(
        target=read_int(
            data.get("target"), f"{field}.target", Code.INVALID_TARGET, MIN_TARGET, MAX_TARGET
        ),
        period=_parse_period(data, field, now),
        ride_classes=read_enum_set(
            data.get("rideClasses"), RideClass, f"{field}.rideClasses", Code.UNKNOWN_RIDE_CLASS
        ),
        payment_methods=read_enum_set(
            data.get("paymentMethods"),
            PaymentMethod,
            f"{field}.paymentMethods",
            Code.UNKNOWN_PAYMENT_METHOD,
        ),
        time_window=None if window is None else parse_time_window(window, f"{field}.timeWindow"),
        min_price=None if price is None else _parse_min_price(price, f"{field}.minPrice"),
        order_kinds=_parse_order_kinds(data.get("orderKinds"), f"{field}.orderKinds"),
    )


@functools.lru_cache(maxsize=1024)
def _conditions_from_bytes(raw: bytes) -> GoalConditions:
    return parse_conditions(orjson.loads(raw))


def snapshot_conditions(data: Mapping[str, Any]) -> GoalConditions:
    """A user goal's stored conditions, parsed once per distinct snapshot (they are immutable)."""
    return _conditions_from_bytes(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def _parse_period(data: Mapping[str, Any], field: str, now: datetime | None) -> Period:
    days, starts, ends = data.get("periodDays"), data.get("startsAt"), data.get("endsAt")
    if days is not None and (starts is not None or ends is not None):
        raise DomainError(
            Code.INVALID_PERIOD,
            "Give periodDays or startsAt/endsAt, not both.",
            f"{field}.periodDays",
        )
    if days is not None:
        code = Code.INVALID_PERIOD
        return RollingPeriod(
            read_int(days, f"{field}.periodDays", code, MIN_PERIOD_DAYS, MAX_PERIOD_DAYS)
        )
    if starts is None and ends is None:
        raise DomainError(
            Code.INVALID_PERIOD, "Give periodDays or startsAt and endsAt.", f"{field}.periodDays"
        )
    return _parse_fixed_period(starts, ends, field, now)


def _parse_fixed_period(
    starts: object, ends: object, field: str, now: datetime | None
) -> FixedPeriod:
    starts_at = read_moment(starts, f"{field}.startsAt", Code.INVALID_PERIOD)
    ends_at = read_moment(ends, f"{field}.endsAt", Code.INVALID_PERIOD)
    if ends_at <= starts_at:
        raise DomainError(Code.INVALID_PERIOD, "endsAt must be after startsAt.", f"{field}.endsAt")
    if now is not None and ends_at <= now:
        raise DomainError(Code.INVALID_PERIOD, "endsAt is in the past.", f"{field}.endsAt")
    return FixedPeriod(starts_at, ends_at)


def _parse_min_price(value: object, field: str) -> MinPrice:
    data = read_mapping(value, field, Code.INVALID_MIN_PRICE)
    check_keys(data, ("amountMinor", "currency"), field, Code.INVALID_MIN_PRICE)
    amount = read_int(
        data.get("amountMinor"), f"{field}.amountMinor", Code.INVALID_MIN_PRICE, 0, MAX_MINOR
    )
    return MinPrice(amount, read_currency(data.get("currency"), f"{field}.currency"))


def _parse_order_kinds(value: object, field: str) -> frozenset[OrderKind]:
    if value is None:
        return frozenset({OrderKind.RIDE})
    kinds = read_enum_set(value, OrderKind, field, Code.UNKNOWN_ORDER_KIND)
    if not kinds:
        raise DomainError(Code.UNKNOWN_ORDER_KIND, "Give at least one order kind.", field)
    return kinds


def conditions_to_json(conditions: GoalConditions) -> dict[str, Any]:
    """The canonical JSON form; `parse_conditions` reads it back to an equal value."""
    return {
        "rideClasses": sorted(c.value for c in conditions.ride_classes),
        "target": conditions.target,
        **_period_to_json(conditions.period),
        "timeWindow": None if conditions.time_window is None else conditions.time_window.to_json(),
        "paymentMethods": sorted(m.value for m in conditions.payment_methods),
        "minPrice": _min_price_to_json(conditions.min_price),
        "orderKinds": sorted(k.value for k in conditions.order_kinds),
    }


def _period_to_json(period: Period) -> dict[str, Any]:
    if isinstance(period, RollingPeriod):
        return {"periodDays": period.days}
    return {"startsAt": period.starts_at.isoformat(), "endsAt": period.ends_at.isoformat()}


def _min_price_to_json(price: MinPrice | None) -> dict[str, Any] | None:
    if price is None:
        return None
    return {"amountMinor": price.amount_minor, "currency": price.currency}


def goal_period(conditions: GoalConditions, activated_at: datetime) -> tuple[datetime, datetime]:
    """The user goal's [starts_at, expires_at) when it becomes ACTIVE at `activated_at`.

    A rolling period starts at activation. A fixed period never starts before its `startsAt`
    nor before activation (orders from before the goal was active don't count); when
    activation comes after `endsAt` the result is empty (starts_at >= expires_at) and the
    caller marks the goal MISSED.
    """
    if isinstance(conditions.period, RollingPeriod):
        return activated_at, activated_at + timedelta(days=conditions.period.days)
    return max(activated_at, conditions.period.starts_at), conditions.period.ends_at
