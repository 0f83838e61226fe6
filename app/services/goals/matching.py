"""Does an order count towards a goal, and if not, why: one pure function.

`match_order` checks in this order and returns the first failing reason, else COUNTED:

1. kind — the order's kind is one of the goal's `order_kinds` (WRONG_ORDER_KIND);
2. status — the order is COMPLETE (NOT_COMPLETE);
3. period — completed within the user goal's [starts_at, expires_at) (OUTSIDE_PERIOD);
4. ride class — when the goal names classes (WRONG_RIDE_CLASS);
5. payment method — when the goal names methods (PAYMENT_METHOD);
6. minimum price — in the same currency (CURRENCY_MISMATCH), at least the minimum
   (BELOW_MIN_PRICE); prices in different currencies are never converted;
7. time window — the local wall-clock time of completion in the order's city timezone
   (OUTSIDE_TIME_WINDOW).

NO_ACTIVE_GOAL is the caller's reason when there is no goal to match against.

Ride class and payment method come from the ordering service as text and are kept as text:
a tariff the goals domain doesn't know yet (say `cargo`) is recorded and simply matches no
goal that names classes, instead of rejecting the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from app.services.errors import DomainError
from app.services.goals.codes import GoalErrorCode
from app.services.goals.conditions import (
    GoalConditions,
    MinPrice,
    OrderKind,
    OrderStatus,
    ProgressReason,
)
from app.services.goals.fields import MAX_MINOR, read_currency
from app.services.validation import InvalidValue, check_timezone

Code = GoalErrorCode


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What matching needs to know about one order; validated on construction.

    Error fields are the `orderRecord` input's camelCase names.
    """

    order_id: str
    kind: OrderKind
    status: OrderStatus
    ride_class: str | None
    payment_method: str | None
    price_minor: int
    currency: str
    completed_at: datetime | None  # required when COMPLETE; tz-aware
    city_timezone: str  # an IANA name such as Europe/Moscow

    def __post_init__(self) -> None:
        _check_timezone(self.city_timezone)
        _check_completed_at(self.status, self.completed_at)
        if not _is_int(self.price_minor) or not 0 <= self.price_minor <= MAX_MINOR:
            raise DomainError(
                Code.INVALID_ORDER, f"The price is 0-{MAX_MINOR} minor units.", "price.amountMinor"
            )
        read_currency(self.currency, "price.currency")

    @property
    def local_completed_at(self) -> datetime | None:
        """The completion time on the wall clock of the order's city."""
        if self.completed_at is None:
            return None
        return self.completed_at.astimezone(ZoneInfo(self.city_timezone))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_timezone(name: str) -> None:
    try:
        check_timezone(name)
    except InvalidValue as exc:
        raise DomainError(Code.INVALID_TIMEZONE, str(exc), "cityTimezone") from exc


def _check_completed_at(status: OrderStatus, completed_at: datetime | None) -> None:
    if completed_at is not None and completed_at.tzinfo is None:
        raise DomainError(
            Code.INVALID_ORDER, "Give the time with a timezone offset.", "completedAt"
        )
    if status is OrderStatus.COMPLETE and completed_at is None:
        raise DomainError(
            Code.INVALID_ORDER, "A complete order has a completion time.", "completedAt"
        )


def match_order(
    conditions: GoalConditions,
    order: OrderFacts,
    *,
    goal_starts_at: datetime,
    goal_expires_at: datetime,
) -> ProgressReason:
    """The first reason `order` does not count towards the goal, or COUNTED (see module doc)."""
    if order.kind not in conditions.order_kinds:
        return ProgressReason.WRONG_ORDER_KIND
    if order.status is not OrderStatus.COMPLETE or order.completed_at is None:
        return ProgressReason.NOT_COMPLETE
    if not goal_starts_at <= order.completed_at < goal_expires_at:
        return ProgressReason.OUTSIDE_PERIOD
    if conditions.ride_classes and order.ride_class not in conditions.ride_classes:
        return ProgressReason.WRONG_RIDE_CLASS
    if conditions.payment_methods and order.payment_method not in conditions.payment_methods:
        return ProgressReason.PAYMENT_METHOD
    price_reason = _price_reason(conditions.min_price, order)
    if price_reason is not None:
        return price_reason
    return _window_reason(conditions, order)


def _price_reason(min_price: MinPrice | None, order: OrderFacts) -> ProgressReason | None:
    if min_price is None:
        return None
    if order.currency != min_price.currency:
        return ProgressReason.CURRENCY_MISMATCH
    if order.price_minor < min_price.amount_minor:
        return ProgressReason.BELOW_MIN_PRICE
    return None


def _window_reason(conditions: GoalConditions, order: OrderFacts) -> ProgressReason:
    local = order.local_completed_at
    window = conditions.time_window
    if window is None or local is None:
        return ProgressReason.COUNTED
    if window.contains(local.time()):
        return ProgressReason.COUNTED
    return ProgressReason.OUTSIDE_TIME_WINDOW
