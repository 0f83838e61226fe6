"""What a goal gives: the bonus definitions, parsed from JSON.

    {"type": "PROMOCODE", "kind": "PERCENT", "value": 15, "validityDays": 30,
     "rideClasses": ["comfort"]}                    # AMOUNT also takes "currency"
    {"type": "WALLET", "amountMinor": 30000, "currency": "RUB"}
    {"type": "CASHBACK", "percent": 10, "days": 14}

Adding a bonus type: a `BonusType` member, a frozen dataclass with `from_json(data, field)`
and `to_json()`, and one entry in `_PARSERS` (and the `Bonus` union). Granting a bonus is the
job of the handlers, not of this module.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from app.services.errors import DomainError
from app.services.goals.codes import GoalErrorCode
from app.services.goals.fields import (
    MAX_MINOR,
    check_keys,
    read_currency,
    read_enum,
    read_enum_set,
    read_int,
    read_mapping,
)
from app.services.orders.facts import RideClass

__all__ = [
    "Bonus",
    "BonusType",
    "CashbackBonus",
    "GoalErrorCode",
    "PromocodeBonus",
    "PromocodeBonusKind",
    "WalletBonus",
    "bonus_to_json",
    "parse_bonus",
]

Code = GoalErrorCode
_INVALID = Code.INVALID_BONUS

MAX_PERCENT = 100
MAX_DAYS = 366


class BonusType(enum.StrEnum):
    PROMOCODE = "PROMOCODE"
    WALLET = "WALLET"
    CASHBACK = "CASHBACK"


class PromocodeBonusKind(enum.StrEnum):
    PERCENT = "PERCENT"  # `value` % off, 1-100
    AMOUNT = "AMOUNT"  # `value` minor units off, in `currency`


@dataclass(frozen=True, slots=True)
class PromocodeBonus:
    """A personal single-use promocode, issued through the promocodes domain."""

    TYPE: ClassVar[BonusType] = BonusType.PROMOCODE

    kind: PromocodeBonusKind
    value: int
    currency: str | None  # required for AMOUNT, refused for PERCENT
    validity_days: int
    ride_classes: frozenset[RideClass] = frozenset()  # empty = any tariff

    @classmethod
    def from_json(cls, data: Mapping[str, Any], field: str) -> PromocodeBonus:
        check_keys(
            data,
            ("type", "kind", "value", "currency", "validityDays", "rideClasses"),
            field,
            _INVALID,
        )
        kind = read_enum(data.get("kind"), PromocodeBonusKind, f"{field}.kind", _INVALID)
        high = MAX_PERCENT if kind is PromocodeBonusKind.PERCENT else MAX_MINOR
        return cls(
            kind=kind,
            value=read_int(data.get("value"), f"{field}.value", _INVALID, 1, high),
            currency=_promocode_currency(kind, data.get("currency"), f"{field}.currency"),
            validity_days=read_int(
                data.get("validityDays"), f"{field}.validityDays", _INVALID, 1, MAX_DAYS
            ),
            ride_classes=read_enum_set(
                data.get("rideClasses"), RideClass, f"{field}.rideClasses", Code.UNKNOWN_RIDE_CLASS
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE.value,
            "kind": self.kind.value,
            "value": self.value,
            "currency": self.currency,
            "validityDays": self.validity_days,
            "rideClasses": sorted(c.value for c in self.ride_classes),
        }


def _promocode_currency(kind: PromocodeBonusKind, value: object, field: str) -> str | None:
    if kind is PromocodeBonusKind.AMOUNT:
        if value is None:
            raise DomainError(Code.INVALID_CURRENCY, "An AMOUNT code needs a currency.", field)
        return read_currency(value, field)
    if value is not None:
        raise DomainError(Code.INVALID_CURRENCY, "A PERCENT code has no currency.", field)
    return None


@dataclass(frozen=True, slots=True)
class WalletBonus:
    """An amount credited to the user's wallet ledger."""

    TYPE: ClassVar[BonusType] = BonusType.WALLET

    amount_minor: int
    currency: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any], field: str) -> WalletBonus:
        check_keys(data, ("type", "amountMinor", "currency"), field, _INVALID)
        return cls(
            amount_minor=read_int(
                data.get("amountMinor"), f"{field}.amountMinor", _INVALID, 1, MAX_MINOR
            ),
            currency=read_currency(data.get("currency"), f"{field}.currency"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE.value,
            "amountMinor": self.amount_minor,
            "currency": self.currency,
        }


@dataclass(frozen=True, slots=True)
class CashbackBonus:
    """`percent` of the user's wallet payments back, for `days` days after the grant."""

    TYPE: ClassVar[BonusType] = BonusType.CASHBACK

    percent: int
    days: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any], field: str) -> CashbackBonus:
        check_keys(data, ("type", "percent", "days"), field, _INVALID)
        return cls(
            percent=read_int(data.get("percent"), f"{field}.percent", _INVALID, 1, MAX_PERCENT),
            days=read_int(data.get("days"), f"{field}.days", _INVALID, 1, MAX_DAYS),
        )

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE.value, "percent": self.percent, "days": self.days}


Bonus = PromocodeBonus | WalletBonus | CashbackBonus

_PARSERS: dict[BonusType, Callable[[Mapping[str, Any], str], Bonus]] = {
    BonusType.PROMOCODE: PromocodeBonus.from_json,
    BonusType.WALLET: WalletBonus.from_json,
    BonusType.CASHBACK: CashbackBonus.from_json,
}


def parse_bonus(data: Mapping[str, Any], *, field: str = "bonus") -> Bonus:
    """A validated bonus, or the first DomainError naming `field.<key>`."""
    data = read_mapping(data, field, _INVALID)
    bonus_type = read_enum(data.get("type"), BonusType, f"{field}.type", Code.UNKNOWN_BONUS_TYPE)
    return _PARSERS[bonus_type](data, field)


def bonus_to_json(bonus: Bonus) -> dict[str, Any]:
    """The canonical JSON form; `parse_bonus` reads it back to an equal value."""
    return bonus.to_json()
