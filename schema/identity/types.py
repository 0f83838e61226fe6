"""Identity and access: the User and Group nodes, sign-in tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.identity import Group, Role, User, UserStatus
from schema.context import Context
from schema.identity.loaders import (
    GroupByIdLoader,
    GroupsByUserIdLoader,
    MemberCountByGroupIdLoader,
    UserByIdLoader,
)
from schema.permissions import visible_nodes

strawberry.enum(UserStatus, name="UserStatus")
strawberry.enum(Role, name="Role")


@strawberry.type(name="Group")
class GroupNode(relay.Node):
    id: relay.NodeID[str]
    name: str
    description: str
    created_at: datetime

    @classmethod
    def from_model(cls, group: Group) -> GroupNode:
        return cls(
            id=str(group.id),
            name=group.name,
            description=group.description,
            created_at=group.created_at,
        )

    @strawberry.field
    async def member_count(self, info: Info[Context, Any]) -> int:
        return await info.context.loaders[MemberCountByGroupIdLoader].load(self.id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[GroupNode | None]:
        """Admins only, like every group read."""
        return await visible_nodes(info, GroupByIdLoader, node_ids, cls.from_model)


@strawberry.type(name="User")
class UserNode(relay.Node):
    id: relay.NodeID[str]
    email: str | None
    phone: str | None
    status: UserStatus
    roles: list[Role]
    locale: str
    timezone: str
    created_at: datetime

    @classmethod
    def from_model(cls, user: User) -> UserNode:
        return cls(
            id=str(user.id),
            email=user.email,
            phone=user.phone,
            status=user.status,
            roles=[Role(r) for r in user.roles],
            locale=user.locale,
            timezone=user.timezone,
            created_at=user.created_at,
        )

    @strawberry.field
    async def groups(self, info: Info[Context, Any]) -> list[GroupNode]:
        groups = await info.context.loaders[GroupsByUserIdLoader].load(self.id)
        return [GroupNode.from_model(group) for group in groups]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[UserNode | None]:
        """A user sees themselves, an admin anyone."""
        return await visible_nodes(
            info, UserByIdLoader, node_ids, cls.from_model, owner=lambda user: user.id
        )


@strawberry.type
class AuthTokens:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime
    token_type: str = "Bearer"
