"""The notifier's inputs and payloads (service side)."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.models.notifier import ContractType
from schema.notifier.errors import NotifierError
from schema.notifier.types import CorpClient

EVENT_TYPES = (
    "CLIENT_CREATED_BY_OFFER {contractType}, CONTRACT_ACTIVATED {contractType, service: TAXI | "
    "CARGO}, BALANCE_CHANGED {balanceMinor, currency}, LIMIT_REACHED {limitMinor, currency}, "
    "FINANCIAL_UNBLOCK {balanceMinor, currency}, RIDE_TAKEN {orderId, takenAt}, "
    "PAYMENT_RECEIVED {amountMinor, currency, balanceMinor?}"
)


@strawberry.input(description="A corporate client, as the corporate system registers it.")
class CorpClientInput:
    client_id: str = strawberry.field(
        description="The corporate system's id: 1-64 of letters, digits and . _ : -."
    )
    name: str = strawberry.field(description="The company's name, 1-200 characters.")
    emails: list[str] = strawberry.field(description="1-10 contact emails the notices go to.")
    contract_type: ContractType = strawberry.field(description="PREPAID or POSTPAID.")
    currency: str = strawberry.field(description="ISO 4217: of the balance and threshold.")
    low_balance_threshold_minor: int = strawberry.field(
        description="Below this balance (minor units) a prepaid client is told to top up."
    )
    locale: str = strawberry.field(default="ru", description="The emails' language: ru or en.")
    timezone: str = strawberry.field(
        default="Europe/Moscow", description="IANA: local times of day are in this zone."
    )
    balance_minor: int | None = strawberry.field(
        default=None, description="The balance now, if known (events keep it current)."
    )


@strawberry.type(description="The client as stored, or why not.")
class CorpClientPayload:
    client: CorpClient | None = None
    errors: list[NotifierError]


@strawberry.input(description="A corporate event for the notifier.")
class CorpEventPublishInput:
    type: str = strawberry.field(description=f"The event type, with its payload: {EVENT_TYPES}.")
    client_id: str = strawberry.field(description="The client's id in the corporate system.")
    payload: JSON = strawberry.field(
        description="The type's fields, camelCase; amounts in minor units, times ISO 8601."
    )
    idempotency_key: str = strawberry.field(
        description="1-100 characters; the same key again is the same event (nothing happens)."
    )
    occurred_at: datetime | None = strawberry.field(
        default=None, description="When it happened (default: now); timings count from it."
    )


@strawberry.type(description="The stored event, or why not.")
class CorpEventPublishPayload:
    event_id: uuid.UUID | None = strawberry.field(default=None, description="The event's id.")
    duplicate: bool = strawberry.field(
        default=False, description="True if the key was published before (nothing happened)."
    )
    errors: list[NotifierError]
