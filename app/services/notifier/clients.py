"""Corporate clients as the notifier knows them: registered (or updated) by the corporate
systems with `corpClientUpsert`, kept current by their events.

The client id the API takes is the corporate system's own (`external_id`): the caller never
needs ours. An upsert is one `INSERT … ON CONFLICT (external_id) DO UPDATE`, so two systems
registering one client at once leave one row. It sets the registration data (name, contacts,
contract, threshold, locale, timezone) and never the event-driven state (activation, rides,
payments), which only events move; the balance is set only when given.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import upsert_insert
from app.models.base import utcnow
from app.models.identity import AuditLog
from app.models.notifier import ContractType, CorpClient
from app.services.errors import DomainError
from app.services.notifier.codes import NotifierErrorCode as Code
from app.services.notifier.events import MAX_AMOUNT_MINOR
from app.services.validation import InvalidValue, check_currency, check_timezone, normalize_email

EXTERNAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
LOCALES = ("ru", "en")
MAX_EMAILS = 10


@dataclass(frozen=True, slots=True)
class ClientInput:
    client_id: str
    name: str
    emails: Sequence[str]
    contract_type: ContractType
    currency: str
    low_balance_threshold_minor: int
    locale: str = "ru"
    timezone: str = "Europe/Moscow"
    balance_minor: int | None = None


def check_client_id(value: str, field: str = "clientId") -> str:
    if not EXTERNAL_ID.match(value):
        raise DomainError(
            Code.INVALID_CLIENT_ID,
            "A client id is 1-64 of letters, digits and . _ : - (starting with a letter or digit).",
            field,
        )
    return value


def _emails(values: Sequence[str]) -> list[str]:
    if not 1 <= len(values) <= MAX_EMAILS:
        raise DomainError(Code.INVALID_EMAIL, f"Give 1-{MAX_EMAILS} contact emails.", "emails")
    checked: list[str] = []
    for index, value in enumerate(values):
        try:
            email = normalize_email(value)
        except InvalidValue as exc:
            raise DomainError(Code.INVALID_EMAIL, str(exc), f"emails[{index}]") from exc
        if email not in checked:
            checked.append(email)
    return checked


def _amount(value: int, field: str, *, low: int) -> int:
    if not low <= value <= MAX_AMOUNT_MINOR:
        raise DomainError(Code.INVALID_AMOUNT, f"{field} is {low}-{MAX_AMOUNT_MINOR}.", field)
    return value


def _validated(data: ClientInput) -> dict[str, Any]:
    name = data.name.strip()
    if not 1 <= len(name) <= 200 or not name.isprintable():
        raise DomainError(Code.INVALID_NAME, "A name is 1-200 printable characters.", "name")
    if data.locale not in LOCALES:
        raise DomainError(Code.INVALID_LOCALE, "The locale is ru or en.", "locale")
    try:
        currency = check_currency(data.currency)
    except InvalidValue as exc:
        raise DomainError(Code.INVALID_CURRENCY, str(exc), "currency") from exc
    try:
        timezone = check_timezone(data.timezone)
    except InvalidValue as exc:
        raise DomainError(Code.INVALID_TIMEZONE, str(exc), "timezone") from exc
    values: dict[str, Any] = {
        "external_id": check_client_id(data.client_id),
        "name": name,
        "emails": _emails(data.emails),
        "contract_type": data.contract_type,
        "currency": currency,
        "low_balance_threshold_minor": _amount(
            data.low_balance_threshold_minor, "lowBalanceThresholdMinor", low=0
        ),
        "locale": data.locale,
        "timezone": timezone,
    }
    if data.balance_minor is not None:
        values["balance_minor"] = _amount(data.balance_minor, "balanceMinor", low=-MAX_AMOUNT_MINOR)
    return values


async def upsert_client(session: AsyncSession, data: ClientInput, *, actor: str) -> CorpClient:
    values = _validated(data)
    now = utcnow()
    if "balance_minor" in values:
        values["balance_as_of"] = now
    statement = upsert_insert(session, CorpClient.__table__).values(
        {"balance_minor": 0, **values, "id": uuid.uuid4(), "created_at": now, "updated_at": now}
    )
    updates = {k: statement.excluded[k] for k in values if k != "external_id"}
    statement = statement.on_conflict_do_update(
        index_elements=["external_id"], set_={**updates, "updated_at": now}
    )
    await session.execute(statement)
    client = await session.scalar(
        select(CorpClient)
        .where(CorpClient.external_id == values["external_id"])
        .execution_options(populate_existing=True)
    )
    assert client is not None
    session.add(
        AuditLog(actor=actor, action="corp_client.upsert", target=f"corp_client:{client.id}")
    )
    return client


def client_view(client: Any) -> dict[str, Any]:
    """What conditions read (`client.<field>`): camelCase, from a row or a model."""
    return {
        "externalId": client.external_id,
        "name": client.name,
        "contractType": str(client.contract_type),
        "balanceMinor": client.balance_minor,
        "currency": client.currency,
        "lowBalanceThresholdMinor": client.low_balance_threshold_minor,
        "locale": client.locale,
        "timezone": client.timezone,
        "activatedAt": client.activated_at,
        "firstRideAt": client.first_ride_at,
        "lastPaymentAt": client.last_payment_at,
        "limitReachedAt": client.limit_reached_at,
    }


def template_client(client: Any) -> dict[str, Any]:
    """What templates read (`client.<field>`): snake_case, the documented contract."""
    return {
        "external_id": client.external_id,
        "name": client.name,
        "contract_type": str(client.contract_type),
        "balance_minor": client.balance_minor,
        "low_balance_threshold_minor": client.low_balance_threshold_minor,
        "currency": client.currency,
        "locale": client.locale,
    }
