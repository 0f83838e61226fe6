"""Identity and access: types, inputs and payloads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.identity import Group, Role, User, UserStatus
from app.services.identity.groups import GroupErrorCode
from app.services.identity.users import AccountErrorCode
from schema.base import IDEMPOTENCY_KEY_DESCRIPTION, After, PageSize
from schema.context import Context

if TYPE_CHECKING:
    from schema.goals.types import (
        Achievement,
        GoalNotificationNode,
        GoalProgressLogEntry,
        ViewerGoals,
        Wallet,
    )
    from schema.promocodes.types import PromocodeOffer, PurchaseNode

strawberry.enum(AccountErrorCode, name="AccountErrorCode")
strawberry.enum(GroupErrorCode, name="GroupErrorCode")
strawberry.enum(UserStatus, name="UserStatus")
strawberry.enum(Role, name="Role")


@strawberry.type
class AccountError:
    code: AccountErrorCode
    field: str | None
    message: str
    retry_after: int | None = strawberry.field(
        default=None, description="Seconds to wait before trying again (RATE_LIMITED only)."
    )


@strawberry.type
class GroupError:
    code: GroupErrorCode
    field: str | None
    message: str


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
        return await info.context.loaders["group_member_count"].load(self.id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[GroupNode | None]:
        from resolvers.identity.mutations import groups_by_ids

        return await groups_by_ids(info, list(node_ids))


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
        return await info.context.loaders["user_groups"].load(self.id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[UserNode | None]:
        from resolvers.identity.mutations import users_by_ids

        return await users_by_ids(info, list(node_ids))


@strawberry.type
class Viewer:
    """The signed-in user. Each domain hangs the caller's own data off this type."""

    user: UserNode

    @strawberry.field(
        description=(
            "Promocodes the caller can use now: granted to them (personally or through a "
            "group) or public, with what each gives; at most 100, soonest to expire first."
        )
    )
    async def promocodes(
        self, info: Info[Context, Any]
    ) -> list[Annotated[PromocodeOffer, strawberry.lazy("schema.promocodes.types")]]:
        from resolvers.promocodes.queries import viewer_promocodes

        return await viewer_promocodes(info)

    @strawberry.field(description="The caller's personal goals: active, next and recent.")
    async def goals(
        self, info: Info[Context, Any]
    ) -> Annotated[ViewerGoals, strawberry.lazy("schema.goals.types")]:
        from resolvers.goals.queries import viewer_goals

        return await viewer_goals(info)

    @strawberry.field(description="Goals reached, newest first (at most 100).")
    async def achievements(
        self,
        info: Info[Context, Any],
        unseen_only: Annotated[
            bool, strawberry.argument(description="Only those not yet acknowledged.")
        ] = True,
    ) -> list[Annotated[Achievement, strawberry.lazy("schema.goals.types")]]:
        from resolvers.goals.queries import viewer_achievements

        return await viewer_achievements(info, unseen_only)

    @strawberry.field(
        description="Goal notifications of every kind (achievements, reminders, assignments), "
        "newest first (at most 100)."
    )
    async def goal_notifications(
        self,
        info: Info[Context, Any],
        unseen_only: Annotated[
            bool, strawberry.argument(description="Only those not yet acknowledged.")
        ] = True,
    ) -> list[Annotated[GoalNotificationNode, strawberry.lazy("schema.goals.types")]]:
        from resolvers.goals.queries import viewer_notifications

        return await viewer_notifications(info, unseen_only)

    @strawberry.field(
        description="Every processed order, newest first: did it count, and if not, why."
    )
    async def goal_progress_log(
        self,
        info: Info[Context, Any],
        first: PageSize = None,
        after: After = None,
    ) -> relay.Connection[Annotated[GoalProgressLogEntry, strawberry.lazy("schema.goals.types")]]:
        from resolvers.goals.queries import viewer_progress_log

        return await viewer_progress_log(info, first, after)

    @strawberry.field(description="The caller's wallet: balances and entries.")
    def wallet(self) -> Annotated[Wallet, strawberry.lazy("schema.goals.types")]:
        from schema.goals.types import Wallet

        return Wallet()

    @strawberry.field(description="The caller's purchases, newest first.")
    async def purchases(
        self,
        info: Info[Context, Any],
        first: PageSize = None,
        after: After = None,
    ) -> relay.Connection[Annotated[PurchaseNode, strawberry.lazy("schema.promocodes.types")]]:
        from resolvers.promocodes.queries import viewer_purchases

        return await viewer_purchases(info, first, after)


@strawberry.type
class AuthTokens:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime
    token_type: str = "Bearer"


@strawberry.input
class RegisterInput:
    email: str | None = None
    phone: str | None = strawberry.field(default=None, description="E.164, e.g. +79161234567")
    password: str
    locale: str = "en"
    timezone: str = "UTC"


@strawberry.type
class RegisterPayload:
    user: UserNode | None = None
    tokens: AuthTokens | None = None
    errors: list[AccountError]


@strawberry.input
class LoginInput:
    login: str = strawberry.field(description="Email address or phone number.")
    password: str


@strawberry.type
class LoginPayload:
    user: UserNode | None = None
    tokens: AuthTokens | None = None
    errors: list[AccountError]


@strawberry.input
class TokenRefreshInput:
    refresh_token: str


@strawberry.input
class LogoutInput:
    refresh_token: str | None = strawberry.field(
        default=None,
        description="Sign out this login's session; without it every session is signed out.",
    )


@strawberry.type
class LogoutPayload:
    errors: list[AccountError]


@strawberry.input
class AccountDeleteInput:
    password: str = strawberry.field(description="The current password, to confirm.")


@strawberry.type
class AccountDeletePayload:
    errors: list[AccountError]


@strawberry.input
class UserBlockInput:
    user_id: strawberry.ID
    reason: str = ""


@strawberry.type
class UserBlockPayload:
    user: UserNode | None = None
    errors: list[AccountError]


@strawberry.input
class GroupCreateInput:
    name: str
    description: str = ""
    idempotency_key: str | None = strawberry.field(
        default=None, description=IDEMPOTENCY_KEY_DESCRIPTION
    )


@strawberry.input
class GroupUpdateInput:
    group_id: strawberry.ID
    name: str | None = None
    description: str | None = None


@strawberry.input
class GroupDeleteInput:
    group_id: strawberry.ID


@strawberry.input
class GroupMembersInput:
    group_id: strawberry.ID
    user_ids: list[strawberry.ID]


@strawberry.type
class GroupPayload:
    group: GroupNode | None = None
    errors: list[GroupError]


@strawberry.type
class GroupDeletePayload:
    deleted_group_id: strawberry.ID | None = None
    errors: list[GroupError]
