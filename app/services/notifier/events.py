"""The corporate event types and the payload each declares (pure).

A payload is a JSON object with camelCase keys. Every declared field is checked for presence
(unless optional) and type; an undeclared key is refused too, so a typo (`balanceMinr`) is an
error rather than a silently missing value. Errors name the field as `payload.<key>`.
The checked payload is what rules and templates see: datetimes are parsed to aware UTC
values, everything else is kept as given.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.models.notifier import ContractType, CorpEventType
from app.services.errors import DomainError
from app.services.notifier.codes import NotifierErrorCode as Code
from app.services.validation import MAX_MINOR, InvalidValue, check_currency

# Corporate balances and limits, in minor units, either sign: the API's Int (32 bits) carries
# them, so they share every domain's bound (validation.MAX_MINOR).
MAX_AMOUNT_MINOR = MAX_MINOR
MAX_TEXT = 128


class Service(enum.StrEnum):
    TAXI = "TAXI"
    CARGO = "CARGO"


def _bad(key: str, message: str) -> DomainError:
    return DomainError(Code.INVALID_FIELD, message, f"payload.{key}")


def _amount(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, f"{key} is an integer amount in minor units.")
    if abs(value) > MAX_AMOUNT_MINOR:
        raise _bad(key, f"{key} is at most {MAX_AMOUNT_MINOR} in absolute value.")
    return value


def _currency(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _bad(key, f"{key} is an ISO 4217 code such as RUB.")
    try:
        return check_currency(value)
    except InvalidValue as exc:
        raise _bad(key, str(exc)) from exc


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT or not value.isprintable():
        raise _bad(key, f"{key} is 1-{MAX_TEXT} printable characters.")
    return value


def _instant(key: str, value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise _bad(key, f"{key} is an ISO 8601 time with an offset, e.g. 2026-12-01T10:00:00Z.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _bad(key, f"{key} is an ISO 8601 time with an offset.") from exc
    if parsed.tzinfo is None:
        raise _bad(key, f"{key} needs an offset (Z or +03:00).")
    return parsed.astimezone(UTC)


def _choice(kind: type[enum.StrEnum]) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in kind.__members__:
            raise _bad(key, f"{key} is one of {', '.join(kind.__members__)}.")
        return value

    return check


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    check: Callable[[str, Any], Any]
    optional: bool = False


_CONTRACT = Field("contractType", _choice(ContractType))
PAYLOADS: dict[CorpEventType, tuple[Field, ...]] = {
    CorpEventType.CLIENT_CREATED_BY_OFFER: (_CONTRACT, Field("offerId", _text, optional=True)),
    CorpEventType.CONTRACT_ACTIVATED: (_CONTRACT, Field("service", _choice(Service))),
    CorpEventType.BALANCE_CHANGED: (
        Field("balanceMinor", _amount),
        Field("currency", _currency),
    ),
    CorpEventType.LIMIT_REACHED: (Field("limitMinor", _amount), Field("currency", _currency)),
    CorpEventType.FINANCIAL_UNBLOCK: (
        Field("balanceMinor", _amount),
        Field("currency", _currency),
    ),
    CorpEventType.RIDE_TAKEN: (Field("orderId", _text), Field("takenAt", _instant)),
    CorpEventType.PAYMENT_RECEIVED: (
        Field("amountMinor", _amount),
        Field("currency", _currency),
        Field("balanceMinor", _amount, optional=True),
    ),
}


def fields_of(event_type: CorpEventType) -> frozenset[str]:
    return frozenset(f.name for f in PAYLOADS[event_type])


def event_type(value: str) -> CorpEventType:
    try:
        return CorpEventType(value)
    except ValueError as exc:
        raise DomainError(
            Code.UNKNOWN_EVENT_TYPE,
            f"Unknown event type; use one of {', '.join(CorpEventType)}.",
            "type",
        ) from exc


def check_payload(kind: CorpEventType, payload: Any) -> dict[str, Any]:
    """The payload with each field checked (datetimes parsed), or a DomainError naming it."""
    if not isinstance(payload, Mapping):
        raise DomainError(Code.INVALID_FIELD, "payload is a JSON object.", "payload")
    declared = PAYLOADS[kind]
    names = {f.name for f in declared}
    for key in payload:
        if key not in names:
            raise DomainError(
                Code.INVALID_FIELD,
                f"{kind.value} takes no field {str(key)[:40]!r}; "
                f"it takes {', '.join(sorted(names))}.",
                f"payload.{str(key)[:40]}",
            )
    checked: dict[str, Any] = {}
    for spec in declared:
        if spec.name not in payload or payload[spec.name] is None:
            if spec.optional:
                continue
            raise DomainError(
                Code.MISSING_FIELD, f"{kind.value} needs {spec.name}.", f"payload.{spec.name}"
            )
        checked[spec.name] = spec.check(spec.name, payload[spec.name])
    return checked


def stored(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The checked payload as JSON (datetimes as ISO text)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in payload.items()}


def loaded(kind: CorpEventType, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A stored payload back as checked values (datetimes parsed again)."""
    instants = {f.name for f in PAYLOADS[kind] if f.check is _instant}
    return {
        k: datetime.fromisoformat(v) if k in instants and isinstance(v, str) else v
        for k, v in payload.items()
    }
