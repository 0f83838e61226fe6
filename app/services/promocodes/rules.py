"""Promocode input rules: the admin's inputs and the checks that need no database.

Every error names the GraphQL input field in camelCase (`validUntil`, `maxUses`, `planIds`, …).
`codes.py` adds the checks against the database and re-exports what callers need from here.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from app.models.base import utcnow
from app.models.promocodes import Audience, PromocodeKind, SubscriberEligibility
from app.services.errors import DomainError
from app.services.promocodes.errors import PromocodeErrorCode
from app.services.promocodes.generator import MAX_CODE_LENGTH, normalize_code
from app.services.promocodes.pricing import validate_value
from app.services.validation import CURRENCIES

MAX_DESCRIPTION_LENGTH = 500
MAX_REASON_LENGTH = 500
MAX_MINOR = 2_000_000_000  # prices and amounts fit the 32-bit integer columns
MAX_USES = 2_000_000_000
MAX_TRIAL_DAYS = 366
MAX_DISCOUNTED_CYCLES = 120
MAX_PLANS_PER_CODE = 100

MONEY_KINDS = frozenset({PromocodeKind.FIXED_PRICE, PromocodeKind.AMOUNT})

_CODE_PATTERN = re.compile(r"[A-Z0-9_-]+")


Code = PromocodeErrorCode


class Unset(enum.Enum):
    """Marks a `PromocodeUpdate` field left as it is (None clears a nullable field)."""

    UNSET = "UNSET"


UNSET = Unset.UNSET


@dataclass(frozen=True, slots=True)
class PromocodeInput:
    code: str
    kind: PromocodeKind
    value: int = 0
    currency: str | None = None  # required for FIXED_PRICE and AMOUNT, refused otherwise
    description: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_uses: int | None = None  # None = unlimited, 1 = a one-time code
    max_uses_per_user: int = 1
    plan_ids: Sequence[uuid.UUID] = ()  # empty = every plan (priced in the code's currency)
    audience: Audience = Audience.PUBLIC
    eligibility: SubscriberEligibility = SubscriberEligibility.ANY
    trial_days: int = 0
    discounted_cycles: int = 1
    active: bool = True


@dataclass(frozen=True, slots=True)
class PromocodeUpdate:
    """What an admin may change on an existing code; UNSET fields stay as they are.

    What a code *gives* — code, kind, value, currency, trial days, discounted cycles — is
    fixed at creation: users may hold reservations priced under it and have been quoted it,
    so changing the offer under them is not allowed; deactivate the code and create a new one.
    Its limits, window, plans, audience and active flag may change; `max_uses` can't go below
    the uses already taken.
    """

    description: str | Unset = UNSET
    valid_from: datetime | Unset | None = UNSET
    valid_until: datetime | Unset | None = UNSET
    max_uses: int | Unset | None = UNSET
    max_uses_per_user: int | Unset = UNSET
    plan_ids: Sequence[uuid.UUID] | Unset = UNSET
    audience: Audience | Unset = UNSET
    eligibility: SubscriberEligibility | Unset = UNSET
    active: bool | Unset = UNSET


# --- pure checks -------------------------------------------------------------------------


def check_code(raw: str) -> str:
    """The normalised code, or INVALID_CODE: 1-64 of A-Z 0-9 '-' '_' after normalising."""
    code = normalize_code(raw)
    if not code or len(code) > MAX_CODE_LENGTH:
        raise DomainError(
            Code.INVALID_CODE, f"A code is 1-{MAX_CODE_LENGTH} characters long.", "code"
        )
    if not _CODE_PATTERN.fullmatch(code):
        raise DomainError(
            Code.INVALID_CODE, "A code may use only letters A-Z, digits, '-' and '_'.", "code"
        )
    return code


def check_reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH or not reason.replace("\n", " ").isprintable():
        raise DomainError(
            Code.INVALID_REASON,
            f"The reason must be at most {MAX_REASON_LENGTH} printable characters.",
            "reason",
        )
    return reason


def check_currency(raw: str, field: str = "currency") -> str:
    currency = raw.strip().upper()
    if currency not in CURRENCIES:
        raise DomainError(
            Code.INVALID_CURRENCY, "Use a supported ISO 4217 currency such as RUB.", field
        )
    return currency


def check_description(description: str) -> str:
    description = description.strip()
    if (
        len(description) > MAX_DESCRIPTION_LENGTH
        or not description.replace("\n", " ").isprintable()
    ):
        raise DomainError(
            Code.INVALID_DESCRIPTION,
            f"The description must be at most {MAX_DESCRIPTION_LENGTH} printable characters.",
            "description",
        )
    return description


def check_value(kind: PromocodeKind, value: int, currency: str | None) -> str | None:
    """The normalised currency of a valid value for `kind` (None for PERCENT and FREE)."""
    currency = (currency or "").strip() or None
    try:
        validate_value(kind, value)
    except (TypeError, ValueError) as exc:
        raise DomainError(
            Code.INVALID_VALUE, f"Not a valid value for a {kind.value} code: {exc}.", "value"
        ) from exc
    if kind is PromocodeKind.AMOUNT and value == 0:
        raise DomainError(Code.INVALID_VALUE, "An AMOUNT code takes at least 1 off.", "value")
    if value > MAX_MINOR:
        raise DomainError(Code.INVALID_VALUE, f"The value must be at most {MAX_MINOR}.", "value")
    if kind not in MONEY_KINDS:
        if currency is not None:
            raise DomainError(
                Code.INVALID_CURRENCY, f"A {kind.value} code has no currency.", "currency"
            )
        return None
    if not currency:
        raise DomainError(
            Code.INVALID_CURRENCY, f"A {kind.value} code needs a currency.", "currency"
        )
    return check_currency(currency)


def check_moment(moment: datetime | None, field: str) -> None:
    if moment is not None and moment.tzinfo is None:
        raise DomainError(Code.INVALID_PERIOD, "Give the time with a timezone offset.", field)


def check_period(
    valid_from: datetime | None, valid_until: datetime | None, *, until_is_new: bool
) -> None:
    check_moment(valid_from, "validFrom")
    check_moment(valid_until, "validUntil")
    if valid_until is None:
        return
    if valid_from is not None and valid_until <= valid_from:
        raise DomainError(Code.INVALID_PERIOD, "validUntil must be after validFrom.", "validUntil")
    if until_is_new and valid_until <= utcnow():
        raise DomainError(
            Code.INVALID_PERIOD,
            "validUntil is in the past: deactivate the code to end it now.",
            "validUntil",
        )


def check_limits(max_uses: int | None, max_uses_per_user: int) -> None:
    if max_uses is not None and not 1 <= max_uses <= MAX_USES:
        raise DomainError(
            Code.INVALID_LIMIT, f"maxUses is 1-{MAX_USES}, or empty for unlimited.", "maxUses"
        )
    if not 1 <= max_uses_per_user <= MAX_USES:
        raise DomainError(Code.INVALID_LIMIT, f"maxUsesPerUser is 1-{MAX_USES}.", "maxUsesPerUser")


def check_offer(trial_days: int, discounted_cycles: int) -> None:
    if not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise DomainError(Code.INVALID_LIMIT, f"trialDays is 0-{MAX_TRIAL_DAYS}.", "trialDays")
    if not 1 <= discounted_cycles <= MAX_DISCOUNTED_CYCLES:
        raise DomainError(
            Code.INVALID_LIMIT,
            f"discountedCycles is 1-{MAX_DISCOUNTED_CYCLES}.",
            "discountedCycles",
        )


def clean_promocode_input(data: PromocodeInput, *, check_code_text: bool = True) -> PromocodeInput:
    """A normalised copy of `data`, or the first DomainError; touches no database.

    `check_code_text=False` skips the code itself (the generator makes its own codes).
    """
    code = check_code(data.code) if check_code_text else data.code
    description = check_description(data.description)
    currency = check_value(data.kind, data.value, data.currency)
    check_period(data.valid_from, data.valid_until, until_is_new=True)
    check_limits(data.max_uses, data.max_uses_per_user)
    check_offer(data.trial_days, data.discounted_cycles)
    plan_ids = unique_plan_ids(data.plan_ids)
    return replace(data, code=code, description=description, currency=currency, plan_ids=plan_ids)


def unique_plan_ids(plan_ids: Sequence[uuid.UUID]) -> tuple[uuid.UUID, ...]:
    unique = tuple(dict.fromkeys(plan_ids))
    if len(unique) > MAX_PLANS_PER_CODE:
        raise DomainError(
            Code.TOO_MANY_PLANS, f"A code applies to at most {MAX_PLANS_PER_CODE} plans.", "planIds"
        )
    return unique
