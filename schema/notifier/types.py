"""The notifier's types: the corporate client."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from app.models.notifier import ContractType
from app.models.notifier import CorpClient as CorpClientRow
from app.services.notifier import reading
from schema.base import Money
from schema.context import Context


@strawberry.type(description="A corporate client the notifier writes to.")
class CorpClient:
    client_id: str = strawberry.field(description="The corporate system's id.")
    name: str
    emails: list[str]
    contract_type: ContractType
    balance: Money = strawberry.field(description="The balance as the events last told it.")
    low_balance_threshold: Money
    locale: str
    timezone: str
    activated_at: datetime | None = strawberry.field(description="The contract's activation.")
    first_ride_at: datetime | None
    last_payment_at: datetime | None
    row_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The notices the client unsubscribed from.")
    async def unsubscribed_notices(self, info: Info[Context, Any]) -> list[str]:
        return await reading.unsubscribed_notices(info.context.session, self.row_id)

    @classmethod
    def from_model(cls, row: CorpClientRow) -> CorpClient:
        return cls(
            client_id=row.external_id,
            name=row.name,
            emails=list(row.emails),
            contract_type=row.contract_type,
            balance=Money(amount_minor=row.balance_minor, currency=row.currency),
            low_balance_threshold=Money(
                amount_minor=row.low_balance_threshold_minor, currency=row.currency
            ),
            locale=row.locale,
            timezone=row.timezone,
            activated_at=row.activated_at,
            first_ride_at=row.first_ride_at,
            last_payment_at=row.last_payment_at,
            row_id=row.id,
        )
