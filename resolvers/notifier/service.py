"""What the corporate systems call: register a client, publish an event (role SERVICE; an
admin may register a client by hand too)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from app.models.identity import Role
from app.services.errors import DomainError
from app.services.notifier import clients, publishing
from schema.context import Context
from schema.errors import payload_errors
from schema.notifier.errors import NotifierError
from schema.notifier.inputs import (
    CorpClientInput,
    CorpClientPayload,
    CorpEventPublishInput,
    CorpEventPublishPayload,
)
from schema.notifier.types import CorpClient
from schema.permissions import require

InfoT = Info[Context, Any]


def _client_input(data: CorpClientInput) -> clients.ClientInput:
    return clients.ClientInput(
        client_id=data.client_id,
        name=data.name,
        emails=data.emails,
        contract_type=data.contract_type,
        currency=data.currency,
        low_balance_threshold_minor=data.low_balance_threshold_minor,
        locale=data.locale,
        timezone=data.timezone,
        balance_minor=data.balance_minor,
    )


@strawberry.type
class NotifierServiceMutation:
    @strawberry.mutation(
        description=(
            "Register a corporate client or update its registration (SERVICE or ADMIN). "
            "The client id is the corporate system's; events keep the balance and state current."
        )
    )
    async def corp_client_upsert(self, info: InfoT, input: CorpClientInput) -> CorpClientPayload:
        principal = await require(info, Role.SERVICE, Role.ADMIN)
        try:
            row = await clients.upsert_client(
                info.context.session, _client_input(input), actor=principal.key
            )
        except DomainError as exc:
            return CorpClientPayload(errors=payload_errors(NotifierError, exc))
        return CorpClientPayload(client=CorpClient.from_model(row), errors=[])

    @strawberry.mutation(
        description=(
            "Publish a corporate event (SERVICE): it is stored, the client's state is updated "
            "and its rules run in the background. The same idempotencyKey again is the same "
            "event: `duplicate` is true and nothing else happens."
        )
    )
    async def corp_event_publish(
        self, info: InfoT, input: CorpEventPublishInput
    ) -> CorpEventPublishPayload:
        principal = await require(info, Role.SERVICE)
        try:
            published = await publishing.publish(
                info.context.session,
                type_name=input.type,
                client_id=input.client_id,
                payload=input.payload,
                idempotency_key=input.idempotency_key,
                occurred_at=input.occurred_at,
                publisher=principal.key,
            )
        except DomainError as exc:
            return CorpEventPublishPayload(errors=payload_errors(NotifierError, exc))
        return CorpEventPublishPayload(
            event_id=published.event_id, duplicate=published.duplicate, errors=[]
        )
