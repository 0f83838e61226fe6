"""Goal bonus definitions: per-type parsing, errors naming the field, JSON round trip."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.errors import DomainError
from app.services.goals.bonuses import (
    Bonus,
    BonusType,
    CashbackBonus,
    GoalErrorCode,
    PromocodeBonus,
    PromocodeBonusKind,
    WalletBonus,
    bonus_to_json,
    parse_bonus,
)
from app.services.orders.facts import RideClass

Code = GoalErrorCode
PERCENT = PromocodeBonusKind.PERCENT
AMOUNT = PromocodeBonusKind.AMOUNT

GOOD = [
    (
        {"type": "PROMOCODE", "kind": "PERCENT", "value": 15, "validityDays": 30},
        PromocodeBonus(PERCENT, 15, None, 30),
    ),
    (
        {
            "type": "PROMOCODE",
            "kind": "AMOUNT",
            "value": 20_000,
            "currency": "RUB",
            "validityDays": 366,
            "rideClasses": ["comfort", "business"],
        },
        PromocodeBonus(
            AMOUNT, 20_000, "RUB", 366, frozenset({RideClass.COMFORT, RideClass.BUSINESS})
        ),
    ),
    ({"type": "WALLET", "amountMinor": 30_000, "currency": "KZT"}, WalletBonus(30_000, "KZT")),
    ({"type": "CASHBACK", "percent": 10, "days": 14}, CashbackBonus(10, 14)),
    ({"type": "CASHBACK", "percent": 100, "days": 1}, CashbackBonus(100, 1)),
]


@pytest.mark.parametrize(("data", "bonus"), GOOD)
def test_good_bonuses(data: dict[str, Any], bonus: Bonus) -> None:
    parsed = parse_bonus(data)
    assert parsed == bonus
    assert parsed.TYPE is BonusType(data["type"])


PROMO = {"type": "PROMOCODE", "kind": "PERCENT", "value": 15, "validityDays": 30}
PROMO_AMOUNT = {**PROMO, "kind": "AMOUNT", "value": 500, "currency": "RUB"}
WALLET = {"type": "WALLET", "amountMinor": 100, "currency": "RUB"}
CASHBACK = {"type": "CASHBACK", "percent": 5, "days": 7}

BAD = [
    # (base, overrides, code, field); None as an override removes the key
    (PROMO, {"type": "MILES"}, Code.UNKNOWN_BONUS_TYPE, "bonus.type"),
    (PROMO, {"type": "promocode"}, Code.UNKNOWN_BONUS_TYPE, "bonus.type"),
    (PROMO, {"type": None}, Code.UNKNOWN_BONUS_TYPE, "bonus.type"),
    (PROMO, {"kind": "FREE"}, Code.INVALID_BONUS, "bonus.kind"),
    (PROMO, {"value": 0}, Code.INVALID_BONUS, "bonus.value"),
    (PROMO, {"value": 101}, Code.INVALID_BONUS, "bonus.value"),
    (PROMO, {"value": 15.5}, Code.INVALID_BONUS, "bonus.value"),
    (PROMO, {"currency": "RUB"}, Code.INVALID_CURRENCY, "bonus.currency"),
    (PROMO, {"validityDays": 0}, Code.INVALID_BONUS, "bonus.validityDays"),
    (PROMO, {"validityDays": 367}, Code.INVALID_BONUS, "bonus.validityDays"),
    (PROMO, {"validityDays": None}, Code.INVALID_BONUS, "bonus.validityDays"),
    (PROMO, {"rideClasses": ["cargo"]}, Code.UNKNOWN_RIDE_CLASS, "bonus.rideClasses"),
    (PROMO, {"planIds": []}, Code.INVALID_BONUS, "bonus.planIds"),
    (PROMO_AMOUNT, {"currency": None}, Code.INVALID_CURRENCY, "bonus.currency"),
    (PROMO_AMOUNT, {"currency": "EURO"}, Code.INVALID_CURRENCY, "bonus.currency"),
    (PROMO_AMOUNT, {"value": 2_000_000_001}, Code.INVALID_BONUS, "bonus.value"),
    (WALLET, {"amountMinor": 0}, Code.INVALID_BONUS, "bonus.amountMinor"),
    (WALLET, {"amountMinor": "100"}, Code.INVALID_BONUS, "bonus.amountMinor"),
    (WALLET, {"currency": None}, Code.INVALID_CURRENCY, "bonus.currency"),
    (WALLET, {"percent": 5}, Code.INVALID_BONUS, "bonus.percent"),
    (CASHBACK, {"percent": 0}, Code.INVALID_BONUS, "bonus.percent"),
    (CASHBACK, {"percent": 101}, Code.INVALID_BONUS, "bonus.percent"),
    (CASHBACK, {"days": 0}, Code.INVALID_BONUS, "bonus.days"),
    (CASHBACK, {"days": 367}, Code.INVALID_BONUS, "bonus.days"),
]


@pytest.mark.parametrize(("base", "overrides", "code", "field"), BAD)
def test_bad_bonuses_name_the_field(
    base: dict[str, Any], overrides: dict[str, Any], code: GoalErrorCode, field: str
) -> None:
    data = {**base, **overrides}
    data = {key: value for key, value in data.items() if value is not None}
    with pytest.raises(DomainError) as caught:
        parse_bonus(data)
    assert (caught.value.code, caught.value.field) == (code, field)
    assert caught.value.message


def test_a_bonus_must_be_an_object() -> None:
    with pytest.raises(DomainError) as caught:
        parse_bonus("WALLET")  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.field) == (Code.INVALID_BONUS, "bonus")


def test_a_custom_field_prefix() -> None:
    with pytest.raises(DomainError) as caught:
        parse_bonus({"type": "CASHBACK", "percent": 0, "days": 1}, field="input.bonus")
    assert caught.value.field == "input.bonus.percent"


def test_every_bonus_type_has_a_parser() -> None:
    parsed_types = {parse_bonus(data).TYPE for data, _ in GOOD}
    assert parsed_types == set(BonusType)


currencies = st.sampled_from(["RUB", "USD", "KZT"])
promocodes = st.one_of(
    st.builds(
        PromocodeBonus,
        kind=st.just(PERCENT),
        value=st.integers(1, 100),
        currency=st.none(),
        validity_days=st.integers(1, 366),
        ride_classes=st.frozensets(st.sampled_from(RideClass)),
    ),
    st.builds(
        PromocodeBonus,
        kind=st.just(AMOUNT),
        value=st.integers(1, 2_000_000_000),
        currency=currencies,
        validity_days=st.integers(1, 366),
        ride_classes=st.frozensets(st.sampled_from(RideClass)),
    ),
)
bonuses = st.one_of(
    promocodes,
    st.builds(WalletBonus, st.integers(1, 2_000_000_000), currencies),
    st.builds(CashbackBonus, st.integers(1, 100), st.integers(1, 366)),
)


@given(bonuses)
def test_bonus_round_trips_through_json(bonus: Bonus) -> None:
    data = bonus_to_json(bonus)
    assert parse_bonus(data) == bonus
    assert bonus_to_json(parse_bonus(data)) == data
