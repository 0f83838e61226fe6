"""Readers for JSON-like values: each returns a typed value or raises DomainError naming the field.

Field names are dotted camelCase paths such as `conditions.timeWindow.start`.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from app.services.errors import DomainError
from app.services.goals.codes import GoalErrorCode
from app.services.validation import MAX_MINOR, InvalidValue, check_currency, check_json_depth

__all__ = [
    "MAX_MINOR",
    "check_keys",
    "read_currency",
    "read_enum",
    "read_enum_set",
    "read_int",
    "read_mapping",
    "read_moment",
    "read_str",
]

E = TypeVar("E", bound=enum.Enum)


def read_mapping(value: object, field: str, code: GoalErrorCode) -> Mapping[str, Any]:
    """A JSON object, nested at most `MAX_JSON_DEPTH` levels (the readers then check each key
    and value, so every JSON input of a template is bounded)."""
    if not isinstance(value, Mapping):
        raise DomainError(code, "Give an object.", field)
    check_json_depth(value, field, code)
    return value


def check_keys(
    data: Mapping[str, Any], allowed: Collection[str], field: str, code: GoalErrorCode
) -> None:
    """Refuse keys outside `allowed`: a misspelt key must not silently mean "any"."""
    for key in data:
        if key not in allowed:
            raise DomainError(code, f"Unknown key {key!r}.", f"{field}.{key}")


def read_int(value: object, field: str, code: GoalErrorCode, low: int, high: int) -> int:
    # bool is an int subclass; `true` is never a count.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DomainError(code, f"Give a whole number from {low} to {high}.", field)
    return value


def read_str(value: object, field: str, code: GoalErrorCode) -> str:
    if not isinstance(value, str):
        raise DomainError(code, "Give a string.", field)
    return value


def read_enum(value: object, enum_type: type[E], field: str, code: GoalErrorCode) -> E:
    """A member of `enum_type` by value; strings are matched as written (values are canonical)."""
    text = read_str(value, field, code)
    for member in enum_type:
        if member.value == text:
            return member
    known = ", ".join(str(member.value) for member in enum_type)
    raise DomainError(code, f"Unknown value {text!r}; use one of: {known}.", field)


def read_enum_set(
    value: object, enum_type: type[E], field: str, code: GoalErrorCode
) -> frozenset[E]:
    """A set of members from a JSON list; null or absent is the empty set."""
    if value is None:
        return frozenset()
    if not isinstance(value, list | tuple):
        raise DomainError(code, "Give a list.", field)
    return frozenset(read_enum(item, enum_type, field, code) for item in value)


def read_currency(value: object, field: str) -> str:
    """An ISO 4217 code the product sells in (`app.services.validation`), upper-case as
    written."""
    code = GoalErrorCode.INVALID_CURRENCY
    text = read_str(value, field, code)
    try:
        return check_currency(text)
    except InvalidValue as exc:
        raise DomainError(code, str(exc), field) from exc


def read_moment(value: object, field: str, code: GoalErrorCode) -> datetime:
    """An ISO 8601 time with an offset, normalised to UTC."""
    text = read_str(value, field, code)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DomainError(
            code, "Give an ISO 8601 time such as 2025-01-31T00:00:00Z.", field
        ) from exc
    if moment.tzinfo is None:
        raise DomainError(code, "Give the time with a timezone offset.", field)
    return moment.astimezone(UTC)
