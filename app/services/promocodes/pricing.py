"""The price of a plan under a promocode: one pure function on integer minor units.

Prices are integers in the currency's minor unit (cents); no floats are involved anywhere.

Rounding rule: for `PERCENT`, the discount is `list_price * percent // 100`, i.e. rounded DOWN
to the whole minor unit, and the final price is `list_price - discount`. The customer therefore
never gets more than the stated percentage off (999 at 33 % → discount 329, not 330; final
670). A 100 % code gives a final price of 0.

The other kinds: `FREE` → 0; `FIXED_PRICE` → the code's price, but never more than the list
price; `AMOUNT` → the list price minus the amount, never below 0. In every case
`0 <= final_price <= list_price`.
"""

from __future__ import annotations

from app.models.promocodes import PromocodeKind

MIN_PERCENT = 1
MAX_PERCENT = 100


def _require_int(name: str, number: int) -> None:
    # Money is integer minor units: a float (or a bool) here is a caller's bug, not a price.
    if not isinstance(number, int) or isinstance(number, bool):
        raise TypeError(f"the {name} must be an int in minor units, got {number!r}")


def validate_value(kind: PromocodeKind, value: int) -> None:
    """Raise ValueError when `value` is not a valid value for a code of `kind`.

    The same rules as the `promocodes` table's CHECK constraints, so callers can refuse bad
    input before it reaches the database.
    """
    _require_int("value", value)
    if value < 0:
        raise ValueError(f"the code's value must not be negative, got {value}")
    if kind == PromocodeKind.PERCENT and not MIN_PERCENT <= value <= MAX_PERCENT:
        raise ValueError(
            f"a PERCENT code's value must be between {MIN_PERCENT} and {MAX_PERCENT}, got {value}"
        )
    if kind == PromocodeKind.FREE and value != 0:
        raise ValueError(f"a FREE code has no value, got {value}")


def final_price(list_price_minor: int, kind: PromocodeKind, value: int) -> int:
    """The price the customer pays for a plan listed at `list_price_minor` under a code.

    Raises ValueError for a negative list price or an invalid value for `kind`.
    """
    _require_int("list price", list_price_minor)
    if list_price_minor < 0:
        raise ValueError(f"the list price must not be negative, got {list_price_minor}")
    validate_value(kind, value)
    match kind:
        case PromocodeKind.FREE:
            return 0
        case PromocodeKind.FIXED_PRICE:
            return min(value, list_price_minor)
        case PromocodeKind.AMOUNT:
            return max(0, list_price_minor - value)
        case PromocodeKind.PERCENT:
            # Floor division on non-negative integers: the discount rounds down.
            return list_price_minor - list_price_minor * value // 100
    raise ValueError(f"unknown promocode kind {kind!r}")


def discount(list_price_minor: int, kind: PromocodeKind, value: int) -> int:
    """How much the code takes off the list price (`list_price - final_price`)."""
    return list_price_minor - final_price(list_price_minor, kind, value)
