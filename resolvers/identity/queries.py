"""Identity, admin reads: the lists of users and groups (ADMIN role)."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.identity import UserStatus
from app.services.identity import reading
from schema.base import offset_connection, offset_page
from schema.context import Context
from schema.identity.types import GroupNode, UserNode
from schema.permissions import IsAdmin

InfoT = Info[Context, Any]


@strawberry.type
class IdentityAdminQuery:
    @strawberry.field(description="Users, newest first (admin).", permission_classes=[IsAdmin])
    async def users(
        self,
        info: InfoT,
        first: int | None = None,
        after: str | None = None,
        status: UserStatus | None = None,
        search: Annotated[
            str | None, strawberry.argument(description="Part of an email or phone number.")
        ] = None,
    ) -> relay.Connection[UserNode]:
        page = offset_page(first, after, info.context.settings.max_page_size)
        found = await reading.list_users(info.context.session, page, status=status, search=search)
        nodes = [UserNode.from_model(user) for user in found.rows]
        return offset_connection(relay.Connection[UserNode], nodes, page, found.has_next)

    @strawberry.field(description="User groups by name (admin).", permission_classes=[IsAdmin])
    async def groups(
        self, info: InfoT, first: int | None = None, after: str | None = None
    ) -> relay.Connection[GroupNode]:
        page = offset_page(first, after, info.context.settings.max_page_size)
        found = await reading.list_groups(info.context.session, page)
        nodes = [GroupNode.from_model(group) for group in found.rows]
        return offset_connection(relay.Connection[GroupNode], nodes, page, found.has_next)
