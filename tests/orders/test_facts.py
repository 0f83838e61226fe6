"""Order facts: validated on construction, refused with the orders domain's own codes (the
codes `orderRecord` reports as they are)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.services.errors import DomainError
from app.services.orders.codes import OrderErrorCode
from app.services.orders.facts import REVERSING, OrderFacts, OrderKind, OrderStatus
from app.services.validation import MAX_MINOR

Code = OrderErrorCode


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


TIMEZONE = "Use an IANA timezone such as Europe/Moscow."
PRICE = f"The price is 0-{MAX_MINOR} minor units."
CURRENCY = "Use a supported ISO 4217 currency such as RUB."


@pytest.mark.parametrize(
    ("overrides", "code", "field", "message"),
    [
        ({"city_timezone": "Mars/Olympus"}, Code.INVALID_TIMEZONE, "cityTimezone", TIMEZONE),
        ({"city_timezone": ""}, Code.INVALID_TIMEZONE, "cityTimezone", TIMEZONE),
        ({"city_timezone": "../etc/passwd"}, Code.INVALID_TIMEZONE, "cityTimezone", TIMEZONE),
        ({"completed_at": None}, Code.INVALID_ORDER, "completedAt",
         "A complete order has a completion time."),
        ({"completed_at": datetime(2025, 3, 10, 20)}, Code.INVALID_ORDER, "completedAt",
         "Give the time with a timezone offset."),
        ({"price_minor": -1}, Code.INVALID_ORDER, "price.amountMinor", PRICE),
        ({"price_minor": MAX_MINOR + 1}, Code.INVALID_ORDER, "price.amountMinor", PRICE),
        ({"price_minor": True}, Code.INVALID_ORDER, "price.amountMinor", PRICE),
        ({"currency": "rub"}, Code.INVALID_CURRENCY, "price.currency", CURRENCY),
        ({"currency": 643}, Code.INVALID_CURRENCY, "price.currency", "Give a string."),
    ],
)  # fmt: skip
def test_bad_order_facts(
    overrides: dict[str, Any], code: OrderErrorCode, field: str, message: str
) -> None:
    with pytest.raises(DomainError) as caught:
        order(**overrides)
    assert (caught.value.code, caught.value.field, caught.value.message) == (code, field, message)


@pytest.mark.parametrize("price", [0, MAX_MINOR])
def test_the_price_bounds_are_accepted(price: int) -> None:
    assert order(price_minor=price).price_minor == price


def test_an_order_in_progress_needs_no_completion_time() -> None:
    assert order(status=OrderStatus.IN_PROGRESS, completed_at=None).local_completed_at is None


def test_the_local_completion_time_is_the_citys_wall_clock() -> None:
    local = order().local_completed_at
    assert local is not None and (local.hour, local.minute) == (23, 0)


def test_cancelled_and_refunded_orders_reverse_and_match_stored_text() -> None:
    assert {OrderStatus.CANCELLED, OrderStatus.REFUNDED} == REVERSING
    assert "REFUNDED" in REVERSING  # consumers compare the stored text
    assert "COMPLETE" not in REVERSING
