"""Identity's part of `viewer`: the signed-in user."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from app.services.identity import reading
from schema.context import Context
from schema.identity.types import UserNode
from schema.permissions import require


@strawberry.type
class IdentityViewer:
    @strawberry.field(description="The signed-in user.")
    async def user(self, info: Info[Context, Any]) -> UserNode:
        principal = await require(info)
        assert principal.user_id is not None  # `viewer` admits users only
        return UserNode.from_model(await reading.signed_in_user(info.context.session, principal))
