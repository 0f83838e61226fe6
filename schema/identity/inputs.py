"""Identity and access: mutation inputs and payloads."""

from __future__ import annotations

import strawberry

from schema.base import IDEMPOTENCY_KEY_DESCRIPTION
from schema.identity.errors import AccountError, GroupError
from schema.identity.types import AuthTokens, GroupNode, UserNode


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
