"""The promocode price function: worked examples per kind, then properties over all inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.models.promocodes import PromocodeKind
from app.services.promocodes.pricing import discount, final_price

FREE = PromocodeKind.FREE
FIXED = PromocodeKind.FIXED_PRICE
AMOUNT = PromocodeKind.AMOUNT
PERCENT = PromocodeKind.PERCENT

EXAMPLES = [
    # (list price, kind, value, final price)
    (1000, FREE, 0, 0),
    (0, FREE, 0, 0),
    (1, FREE, 0, 0),
    (1000, FIXED, 500, 500),
    (1000, FIXED, 1000, 1000),
    (1000, FIXED, 1001, 1000),  # a fixed price above the list price: the list price
    (1000, FIXED, 10**9, 1000),
    (1000, FIXED, 0, 0),
    (0, FIXED, 5, 0),
    (1, FIXED, 1, 1),
    (1000, AMOUNT, 300, 700),
    (1000, AMOUNT, 999, 1),
    (1000, AMOUNT, 1000, 0),
    (1000, AMOUNT, 1001, 0),  # an amount larger than the price: never below 0
    (1000, AMOUNT, 10**9, 0),
    (1000, AMOUNT, 0, 1000),
    (1, AMOUNT, 1, 0),
    (0, AMOUNT, 1, 0),
    (1000, PERCENT, 1, 990),
    (1000, PERCENT, 10, 900),
    (1000, PERCENT, 99, 10),
    (1000, PERCENT, 100, 0),
    (999, PERCENT, 33, 670),  # discount 329.67 rounds down to 329
    (999, PERCENT, 1, 990),  # discount 9.99 rounds down to 9
    (999, PERCENT, 99, 10),  # discount 989.01 rounds down to 989
    (999, PERCENT, 100, 0),
    (199, PERCENT, 50, 100),  # discount 99.5 rounds down to 99
    (101, PERCENT, 99, 2),  # discount 99.99 rounds down to 99
    (1, PERCENT, 1, 1),  # one minor unit: 1 % of it rounds down to nothing
    (1, PERCENT, 50, 1),
    (1, PERCENT, 99, 1),
    (1, PERCENT, 100, 0),
    (0, PERCENT, 50, 0),
    (100, PERCENT, 33, 67),
    (2_147_483_647, PERCENT, 1, 2_126_008_811),
]

INVALID = [
    # (list price, kind, value, words in the message)
    (-1, FREE, 0, "list price"),
    (-1, PERCENT, 10, "list price"),
    (-100, AMOUNT, 5, "list price"),
    (100, AMOUNT, -1, "negative"),
    (100, FIXED, -5, "negative"),
    (100, PERCENT, -10, "negative"),
    (100, PERCENT, 0, "between 1 and 100"),
    (100, PERCENT, 101, "between 1 and 100"),
    (100, FREE, 1, "FREE"),
]


@pytest.mark.parametrize(("list_price", "kind", "value", "expected"), EXAMPLES)
def test_final_price_examples(
    list_price: int, kind: PromocodeKind, value: int, expected: int
) -> None:
    assert final_price(list_price, kind, value) == expected
    assert discount(list_price, kind, value) == list_price - expected


@pytest.mark.parametrize(("list_price", "kind", "value", "message"), INVALID)
def test_invalid_inputs_are_rejected(
    list_price: int, kind: PromocodeKind, value: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        final_price(list_price, kind, value)
    with pytest.raises(ValueError, match=message):
        discount(list_price, kind, value)


@pytest.mark.parametrize("bad", [9.99, "999", True, None])
def test_money_must_be_integers_and_the_error_names_which(bad: object) -> None:
    with pytest.raises(TypeError) as price:
        final_price(bad, AMOUNT, 1)  # type: ignore[arg-type]
    assert str(price.value) == f"the list price must be an int in minor units, got {bad!r}"
    with pytest.raises(TypeError) as value:
        final_price(1000, AMOUNT, bad)  # type: ignore[arg-type]
    assert str(value.value) == f"the value must be an int in minor units, got {bad!r}"


def test_an_unknown_kind_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^unknown promocode kind 'BOGUS'$"):
        final_price(1000, "BOGUS", 1)  # type: ignore[arg-type]


def test_kind_given_as_its_string_value() -> None:
    assert final_price(1000, "PERCENT", 25) == 750  # type: ignore[arg-type]


# --- properties --------------------------------------------------------------------------

prices = st.integers(min_value=0, max_value=10**12)
percents = st.integers(min_value=1, max_value=100)
amounts = st.integers(min_value=0, max_value=10**13)


@st.composite
def valid_codes(draw: st.DrawFn) -> tuple[PromocodeKind, int]:
    kind = draw(st.sampled_from(PromocodeKind))
    value = {
        FREE: st.just(0),
        FIXED: amounts,
        AMOUNT: amounts,
        PERCENT: percents,
    }[kind]
    return kind, draw(value)


@given(prices, valid_codes())
def test_final_price_stays_between_zero_and_list_price(
    list_price: int, code: tuple[PromocodeKind, int]
) -> None:
    kind, value = code
    final = final_price(list_price, kind, value)
    assert 0 <= final <= list_price
    assert discount(list_price, kind, value) == list_price - final


@given(prices, percents, percents)
def test_percent_is_monotonic(list_price: int, lower: int, higher: int) -> None:
    lower, higher = sorted((lower, higher))
    assert final_price(list_price, PERCENT, higher) <= final_price(list_price, PERCENT, lower)


@given(prices)
def test_hundred_percent_is_free(list_price: int) -> None:
    assert final_price(list_price, PERCENT, 100) == 0


@given(prices)
def test_free_is_free(list_price: int) -> None:
    assert final_price(list_price, FREE, 0) == 0


@given(prices, amounts)
def test_amount_takes_off_the_amount_but_never_below_zero(list_price: int, value: int) -> None:
    assert final_price(list_price, AMOUNT, value) == max(0, list_price - value)


@given(prices, percents)
def test_percent_discount_is_the_largest_not_exceeding_the_percentage(
    list_price: int, percent: int
) -> None:
    off = discount(list_price, PERCENT, percent)
    assert off * 100 <= list_price * percent  # never more than `percent` % off
    assert (off + 1) * 100 > list_price * percent  # and rounded down by less than one unit


@given(prices, amounts)
def test_fixed_price_never_exceeds_its_value_or_the_list_price(list_price: int, value: int) -> None:
    assert final_price(list_price, FIXED, value) == min(value, list_price)


@given(st.integers(max_value=-1), valid_codes())
def test_negative_list_price_is_rejected(list_price: int, code: tuple[PromocodeKind, int]) -> None:
    with pytest.raises(ValueError, match="list price"):
        final_price(list_price, *code)


@given(prices, st.sampled_from(PromocodeKind), st.integers(max_value=-1))
def test_negative_value_is_rejected(list_price: int, kind: PromocodeKind, value: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        final_price(list_price, kind, value)


@given(prices, st.one_of(st.integers(max_value=0), st.integers(min_value=101)))
def test_percent_outside_1_to_100_is_rejected(list_price: int, value: int) -> None:
    with pytest.raises(ValueError, match=r"PERCENT|negative"):
        final_price(list_price, PERCENT, value)


@given(prices, st.integers(min_value=1))
def test_free_with_a_value_is_rejected(list_price: int, value: int) -> None:
    with pytest.raises(ValueError, match="FREE"):
        final_price(list_price, FREE, value)
