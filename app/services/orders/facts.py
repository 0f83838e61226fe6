"""What an order is, as the consumers of the order stream (goals, cashback) read it: pure.

`OrderFacts` is validated on construction and raises `DomainError(OrderErrorCode.X)` naming
the `orderRecord` input field at fault, so `orderRecord` reports it as it is.

Ride class and payment method come from the ordering service as text and are kept as text:
a tariff nobody knows yet (say `cargo`) is recorded and simply matches no goal that names
classes, instead of rejecting the order. `RideClass` and `PaymentMethod` are the values goal
conditions and bonuses may name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from app.services.errors import DomainError
from app.services.orders.codes import OrderErrorCode
from app.services.validation import MAX_MINOR, InvalidValue, check_currency, check_timezone

Code = OrderErrorCode


class RideClass(enum.StrEnum):
    ECONOM = "econom"
    COMFORT = "comfort"
    COMFORT_PLUS = "comfort_plus"
    BUSINESS = "business"
    MINIVAN = "minivan"
    PREMIER = "premier"


class PaymentMethod(enum.StrEnum):
    CARD = "card"
    CASH = "cash"
    WALLET = "wallet"
    FAMILY = "family"


class OrderKind(enum.StrEnum):
    """The kind of event an order is; stored as text, so a new kind is a new member only."""

    RIDE = "RIDE"
    PLUS_PURCHASE = "PLUS_PURCHASE"


class OrderStatus(enum.StrEnum):
    COMPLETE = "COMPLETE"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"
    IN_PROGRESS = "IN_PROGRESS"


REVERSING = frozenset({OrderStatus.CANCELLED, OrderStatus.REFUNDED})


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What a consumer needs to know about one order; validated on construction.

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
        _check_currency(self.currency)

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


def _check_currency(value: object) -> None:
    field = "price.currency"
    if not isinstance(value, str):
        raise DomainError(Code.INVALID_CURRENCY, "Give a string.", field)
    try:
        check_currency(value)
    except InvalidValue as exc:
        raise DomainError(Code.INVALID_CURRENCY, str(exc), field) from exc
