"""Promocode resolvers, admin side: the admin's lists (codes, attempts with true reasons), a
code's stats, grants and purchases, and Node resolution of the admin types. Admin only.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import strawberry
from sqlalchemy import select
from strawberry import relay
from strawberry.types import Info

from app.models.identity import Role
from app.models.promocodes import Promocode, PromocodeAttempt, PromocodeGrant, Rejection
from app.models.promocodes import ReleaseReason as Release
from app.services.promocodes import generator, grants, stats
from resolvers.permissions import IsAdmin, require
from schema.base import (
    After,
    BadUserInput,
    PageSize,
    build_connection,
    decode_global_id,
    paginate,
)
from schema.context import Context
from schema.ids import rows_by_ids
from schema.promocodes.admin import (
    PromocodeAttemptNode,
    PromocodeGrantNode,
    PromocodeNode,
    PromocodeRejectionCount,
    PromocodeReleaseCount,
    PromocodeStats,
)
from schema.promocodes.types import PurchaseNode

InfoT = Info[Context, Any]


def _argument_uuid(value: strawberry.ID | None, type_name: str, argument: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return decode_global_id(value, type_name)
    except ValueError as exc:
        raise BadUserInput(f"Not a {type_name} id.", argument) from exc


async def _rows_by_ids(info: InfoT, model: Any, ids: list[str]) -> list[Any]:
    await require(info, Role.ADMIN)
    return await rows_by_ids(info.context.session, model, ids)


# ---- loaders behind Node resolution and PromocodeNode's fields (admin only) ---------------


async def promocodes_by_ids(info: InfoT, ids: list[str]) -> list[PromocodeNode | None]:
    rows = await _rows_by_ids(info, Promocode, ids)
    return [PromocodeNode.from_model(row) if row is not None else None for row in rows]


async def grants_by_ids(info: InfoT, ids: list[str]) -> list[PromocodeGrantNode | None]:
    rows = await _rows_by_ids(info, PromocodeGrant, ids)
    return [PromocodeGrantNode.from_model(row) if row is not None else None for row in rows]


async def attempts_by_ids(info: InfoT, ids: list[str]) -> list[PromocodeAttemptNode | None]:
    rows = await _rows_by_ids(info, PromocodeAttempt, ids)
    return [PromocodeAttemptNode.from_model(row) if row is not None else None for row in rows]


async def promocode_stats(info: InfoT, promocode_id: str) -> PromocodeStats:
    found = await stats.promocode_stats(info.context.session, uuid.UUID(promocode_id))
    return PromocodeStats(
        uses=found.uses,
        max_uses=found.max_uses,
        remaining=found.remaining,
        reserved=found.reserved,
        confirmed=found.confirmed,
        released=found.released,
        released_by_reason=[
            PromocodeReleaseCount(reason=r, count=found.released_by_reason.get(r, 0))
            for r in Release
        ],
        rejections=[
            PromocodeRejectionCount(reason=r, count=found.rejections.get(r, 0)) for r in Rejection
        ],
        user_grants=found.user_grants,
        group_grants=found.group_grants,
    )


async def promocode_grants(
    info: InfoT, promocode_id: str, first: int | None, after: str | None
) -> relay.Connection[PromocodeGrantNode]:
    statement = grants.grants_query(uuid.UUID(promocode_id))
    rows, start, has_next, has_prev = await paginate(
        info.context.session, statement, first, after, info.context.settings.max_page_size
    )
    nodes = [PromocodeGrantNode.from_model(grant) for grant in rows]
    return build_connection(relay.Connection[PromocodeGrantNode], nodes, start, has_next, has_prev)


async def promocode_purchases(
    info: InfoT, promocode_id: str, first: int | None, after: str | None
) -> relay.Connection[PurchaseNode]:
    statement = stats.purchases_of_code_query(uuid.UUID(promocode_id))
    rows, start, has_next, has_prev = await paginate(
        info.context.session, statement, first, after, info.context.settings.max_page_size
    )
    nodes = [PurchaseNode.from_model(purchase) for purchase in rows]
    return build_connection(relay.Connection[PurchaseNode], nodes, start, has_next, has_prev)


# ---- queries --------------------------------------------------------------------------------


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


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
        statement = select(Promocode).order_by(Promocode.created_at.desc(), Promocode.id.desc())
        if active is not None:
            statement = statement.where(Promocode.active.is_(active))
        if search and search.strip():
            pattern = _like(generator.normalize_code(search)[:100])
            statement = statement.where(Promocode.code.like(pattern, escape="\\"))
        if batch_id is not None:
            try:
                statement = statement.where(Promocode.batch_id == uuid.UUID(batch_id))
            except ValueError as exc:
                raise BadUserInput("Not a batch id.", "batchId") from exc
        rows, start, has_next, has_prev = await paginate(
            info.context.session, statement, first, after, info.context.settings.max_page_size
        )
        nodes = [PromocodeNode.from_model(promocode) for promocode in rows]
        return build_connection(relay.Connection[PromocodeNode], nodes, start, has_next, has_prev)

    @strawberry.field(
        description="A promocode by global id; null if none (admin).", permission_classes=[IsAdmin]
    )
    async def promocode(
        self,
        info: InfoT,
        id: Annotated[strawberry.ID, strawberry.argument(description="The Promocode's global id.")],
    ) -> PromocodeNode | None:
        promocode_id = _argument_uuid(id, "Promocode", "id")
        found = await info.context.session.get(Promocode, promocode_id)
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
        statement = stats.attempts_query(
            user_id=_argument_uuid(user_id, "User", "userId"),
            promocode_id=_argument_uuid(promocode_id, "Promocode", "promocodeId"),
            reason=reason,
        )
        rows, start, has_next, has_prev = await paginate(
            info.context.session, statement, first, after, info.context.settings.max_page_size
        )
        nodes = [PromocodeAttemptNode.from_model(attempt) for attempt in rows]
        return build_connection(
            relay.Connection[PromocodeAttemptNode], nodes, start, has_next, has_prev
        )
