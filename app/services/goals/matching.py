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

The order is `OrderFacts` from the orders domain (`app/services/orders/facts.py`), which keeps
ride class and payment method as text: a tariff goals don't know yet matches no goal that
names classes.
"""

from __future__ import annotations

from datetime import datetime

from app.services.goals.conditions import GoalConditions, MinPrice, ProgressReason
from app.services.orders.facts import OrderFacts, OrderStatus


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
