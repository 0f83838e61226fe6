"""Normalisation and validation of contact details, passwords, locales, timezones, money and
free-form JSON input."""

from __future__ import annotations

import enum
import math
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache

import orjson
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from app.services.errors import DomainError

MAX_EMAIL_LENGTH = 254
LOCALE_PATTERN_MAX = 16
_COMMON_PASSWORDS = frozenset(
    {
        "password123",
        "1234567890",
        "qwertyuiop",
        "password1!",
        "iloveyou12",
        "0987654321",
        "qwerty1234",
        "1q2w3e4r5t",
        "letmein123",
        "administrator",
    }
)


class InvalidValue(ValueError):
    """A value that fails validation; `reason` is a short machine-readable word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def normalize_email(raw: str) -> str:
    value = raw.strip()
    if not value or len(value) > MAX_EMAIL_LENGTH:
        raise InvalidValue("INVALID_EMAIL", "Enter a valid email address.")
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue("INVALID_EMAIL", "Enter a valid email address.") from exc
    # Mailboxes are treated case-insensitively: one account per address however it is typed.
    return checked.normalized.lower()


def normalize_phone(raw: str) -> str:
    value = raw.strip()
    if not value.startswith("+") or len(value) > 32:
        raise InvalidValue("INVALID_PHONE", "Enter the phone number in international form, +…")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue("INVALID_PHONE", "Enter a valid phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("INVALID_PHONE", "Enter a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_password(password: str, min_length: int, max_length: int) -> None:
    if len(password) > max_length:
        raise InvalidValue("PASSWORD_TOO_LONG", f"Use at most {max_length} characters.")
    if len(password) < min_length:
        raise InvalidValue("WEAK_PASSWORD", f"Use at least {min_length} characters.")
    if len(set(password)) < 4 or password.lower() in _COMMON_PASSWORDS:
        raise InvalidValue("WEAK_PASSWORD", "This password is too easy to guess.")


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(value: str) -> str:
    if value not in _timezones():
        raise InvalidValue("INVALID_TIMEZONE", "Use an IANA timezone such as Europe/Moscow.")
    return value


def normalize_locale(value: str) -> str:
    parts = value.strip().replace("_", "-").split("-")
    if not (1 <= len(parts) <= 2) or not (2 <= len(parts[0]) <= 3) or not parts[0].isalpha():
        raise InvalidValue("INVALID_LOCALE", "Use a locale such as en or ru-RU.")
    if len(parts) == 2 and not (2 <= len(parts[1]) <= 4 and parts[1].isalnum()):
        raise InvalidValue("INVALID_LOCALE", "Use a locale such as en or ru-RU.")
    return "-".join([parts[0].lower(), *(p.upper() for p in parts[1:])])


# Money, for every domain that takes amounts: ISO 4217 codes the product sells in (extend as
# markets are added), and amounts that fit the 32-bit integer columns.
CURRENCIES = frozenset(
    {
        "AED", "AMD", "AUD", "AZN", "BRL", "BYN", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR",
        "GBP", "GEL", "ILS", "INR", "JPY", "KGS", "KZT", "MXN", "NOK", "PLN", "RUB", "SEK",
        "TJS", "TRY", "UAH", "USD", "UZS",
    }
)  # fmt: skip
MAX_MINOR = 2_000_000_000


def check_currency(value: str) -> str:
    """A supported currency code, upper-case as written (no normalisation)."""
    if value not in CURRENCIES:
        raise InvalidValue("INVALID_CURRENCY", "Use a supported ISO 4217 currency such as RUB.")
    return value


# JSON input, for every domain that takes a JSON scalar. Nesting is bounded: a deep value
# exhausts the recursion limits of encoders and drivers (orjson stops at 255 levels), so a
# reader must refuse it before anything serialises it. Free-form JSON that is stored as given
# must also hold only numbers every store keeps (64-bit integers, finite floats): a GraphQL
# literal reaches the service as Python values JSON text can't carry.
MAX_JSON_DEPTH = 32
_INT64 = range(-(2**63), 2**63)


def check_json_depth(
    value: object, field: str, code: enum.Enum, *, max_depth: int = MAX_JSON_DEPTH
) -> None:
    """Refuse a JSON value nested deeper than `max_depth` objects and lists: DomainError(code)
    naming `field`. For readers that then check each value themselves."""
    for _ in _scalars(value, field, code, max_depth):
        pass


def check_json(
    value: object,
    field: str,
    code: enum.Enum,
    *,
    max_bytes: int | None = None,
    max_depth: int = MAX_JSON_DEPTH,
) -> None:
    """Free-form JSON kept as given: nested at most `max_depth` levels, numbers that fit in
    64 bits (no NaN or Infinity), at most `max_bytes` as JSON text; else DomainError(code)
    naming `field`."""
    for scalar in _scalars(value, field, code, max_depth):
        if not _storable(scalar):
            raise DomainError(code, "Give numbers that fit in 64 bits; no NaN or Infinity.", field)
    if max_bytes is not None and len(orjson.dumps(value)) > max_bytes:
        raise DomainError(code, f"At most {max_bytes} bytes of JSON.", field)


def _scalars(value: object, field: str, code: enum.Enum, max_depth: int) -> Iterator[object]:
    """The values inside `value` that are neither objects nor lists, checking the nesting on
    the way (an explicit stack: no recursion however deep the value)."""
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        children: Iterable[object]
        if isinstance(item, Mapping):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            yield item
            continue
        if depth >= max_depth:
            raise DomainError(code, f"Nest at most {max_depth} levels of objects and lists.", field)
        pending.extend((child, depth + 1) for child in children)


def _storable(scalar: object) -> bool:
    if scalar is None or isinstance(scalar, str | bool):
        return True
    if isinstance(scalar, int):
        return scalar in _INT64
    return isinstance(scalar, float) and math.isfinite(scalar)
