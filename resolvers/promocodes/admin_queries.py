"""Promocode resolvers, admin side: the admin's lists (codes, attempts with true reasons) and
a code by id. Admin only. A code's stats, grants and purchases are fields of `Promocode`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.promocodes import Rejection
from app.services.promocodes import reading
from schema.base import (
    After,
    BadUserInput,
    PageSize,
    decode_global_id,
    offset_connection,
    offset_page,
)
from schema.context import Context
from schema.permissions import IsAdmin
from schema.promocodes.admin import PromocodeAttemptNode, PromocodeNode

InfoT = Info[Context, Any]


def _argument_uuid(value: strawberry.ID | None, type_name: str, argument: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return decode_global_id(value, type_name)
    except ValueError as exc:
        raise BadUserInput(f"Not a {type_name} id.", argument) from exc


# ---- queries --------------------------------------------------------------------------------


@strawberry.type
class PromocodeAdminQuery:
    @strawberry.field(
        description="Promocodes, newest first, filtered (admin).", permission_classes=[IsAdmin]
    )
    async def promocodes(
        self,
        info: InfoT,
        active: Annotated[
            bool | None, strawberry.argument(description="Only active (or inactive) codes.")
        ] = None,
        search: Annotated[
            str | None, strawberry.argument(description="Part of the code (case-insensitive).")
        ] = None,
        batch_id: Annotated[
            str | None,
            strawberry.argument(description="Only the codes of one `promocodeGenerate` batch."),
        ] = None,
        first: PageSize = None,
        after: After = None,
    ) -> relay.Connection[PromocodeNode]:
        batch = None
        if batch_id is not None:
            try:
                batch = uuid.UUID(batch_id)
            except ValueError as exc:
                raise BadUserInput("Not a batch id.", "batchId") from exc
        page = offset_page(first, after, info.context.settings.max_page_size)
        found = await reading.promocodes_page(
            info.context.session, page, active=active, search=search, batch_id=batch
        )
        nodes = [PromocodeNode.from_model(promocode) for promocode in found.rows]
        return offset_connection(relay.Connection[PromocodeNode], nodes, page, found.has_next)

    @strawberry.field(
        description="A promocode by global id; null if none (admin).", permission_classes=[IsAdmin]
    )
    async def promocode(
        self,
        info: InfoT,
        id: Annotated[strawberry.ID, strawberry.argument(description="The Promocode's global id.")],
    ) -> PromocodeNode | None:
        promocode_id = _argument_uuid(id, "Promocode", "id")
        assert promocode_id is not None  # `id` is required
        found = await reading.promocode_by_id(info.context.session, promocode_id)
        return PromocodeNode.from_model(found) if found is not None else None

    @strawberry.field(
        description=(
            "Rejected promocode attempts with their true reasons, newest first: why a user's "
            "code failed (admin)."
        ),
        permission_classes=[IsAdmin],
    )
    async def promocode_attempts(
        self,
        info: InfoT,
        user_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this User's attempts.")
        ] = None,
        promocode_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only tries of this Promocode.")
        ] = None,
        reason: Annotated[
            Rejection | None, strawberry.argument(description="Only this true reason.")
        ] = None,
        first: PageSize = None,
        after: After = None,
    ) -> relay.Connection[PromocodeAttemptNode]:
        user = _argument_uuid(user_id, "User", "userId")
        code = _argument_uuid(promocode_id, "Promocode", "promocodeId")
        page = offset_page(first, after, info.context.settings.max_page_size)
        found = await reading.attempts_page(
            info.context.session, page, user_id=user, promocode_id=code, reason=reason
        )
        nodes = [PromocodeAttemptNode.from_model(attempt) for attempt in found.rows]
        return offset_connection(
            relay.Connection[PromocodeAttemptNode], nodes, page, found.has_next
        )
