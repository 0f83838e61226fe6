"""Identity and access resolvers: `viewer`, sign-in mutations, admin user and group management."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any

import strawberry
from sqlalchemy import or_, select
from strawberry import relay
from strawberry.types import Info

from app.auth import verify_password
from app.models.identity import Group, Role, User, UserStatus
from app.services.errors import DomainError
from app.services.idempotency import IdempotencyErrorCode, run_once
from app.services.identity import groups as group_service
from app.services.identity import sessions as session_service
from app.services.identity import users as user_service
from resolvers.permissions import AuthError, IsAdmin, IsAuthenticated, require
from schema.base import build_connection, paginate
from schema.context import Context
from schema.identity.types import (
    AccountDeleteInput,
    AccountDeletePayload,
    AccountError,
    AuthTokens,
    GroupCreateInput,
    GroupDeleteInput,
    GroupDeletePayload,
    GroupError,
    GroupMembersInput,
    GroupNode,
    GroupPayload,
    GroupUpdateInput,
    LoginInput,
    LoginPayload,
    LogoutInput,
    LogoutPayload,
    RegisterInput,
    RegisterPayload,
    TokenRefreshInput,
    UserBlockInput,
    UserBlockPayload,
    UserNode,
    Viewer,
)
from schema.ids import node_uuid

AccountCode = user_service.AccountErrorCode
GroupCode = group_service.GroupErrorCode
InfoT = Info[Context, Any]


def account_errors(exc: DomainError) -> list[AccountError]:
    retry_after = getattr(exc, "retry_after", None)
    return [
        AccountError(
            code=AccountCode(exc.code.value),
            field=exc.field,
            message=exc.message,
            retry_after=retry_after,
        )
    ]


def group_errors(exc: DomainError) -> list[GroupError]:
    return [GroupError(code=GroupCode(exc.code.value), field=exc.field, message=exc.message)]


def _tokens(issued: session_service.IssuedTokens) -> AuthTokens:
    return AuthTokens(
        access_token=issued.access_token,
        access_token_expires_at=issued.access_expires_at,
        refresh_token=issued.refresh_token,
        refresh_token_expires_at=issued.refresh_expires_at,
    )


# ---- loaders behind Node resolution -------------------------------------------------------


async def users_by_ids(info: InfoT, ids: list[str]) -> list[UserNode | None]:
    principal = await require(info)
    allowed = principal.has_role(Role.ADMIN)
    loaded = await info.context.loaders["users"].load_many(ids)
    return [
        UserNode.from_model(user)
        if user is not None and (allowed or user.id == principal.user_id)
        else None
        for user in loaded
    ]


async def groups_by_ids(info: InfoT, ids: list[str]) -> list[GroupNode | None]:
    await require(info, Role.ADMIN)
    loaded = await info.context.loaders["groups"].load_many(ids)
    return [GroupNode.from_model(group) if group is not None else None for group in loaded]


# ---- queries --------------------------------------------------------------------------------


@strawberry.type
class UserQuery:
    @strawberry.field(description="The signed-in user.", permission_classes=[IsAuthenticated])
    async def viewer(self, info: InfoT) -> Viewer:
        principal = await info.context.principal()
        if principal.user_id is None:
            raise AuthError("FORBIDDEN", "Service tokens have no viewer.")
        # Resolving the principal loaded this row: the identity map answers without a query.
        user = await info.context.session.get(User, principal.user_id)
        assert user is not None
        return Viewer(user=UserNode.from_model(user))

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
        statement = select(User).order_by(User.created_at.desc(), User.id)
        if status is not None:
            statement = statement.where(User.status == status)
        if search:
            pattern = f"%{search.strip().lower()[:100]}%"
            statement = statement.where(or_(User.email.like(pattern), User.phone.like(pattern)))
        rows, start, has_next, has_prev = await paginate(
            info.context.session, statement, first, after, info.context.settings.max_page_size
        )
        nodes = [UserNode.from_model(user) for user in rows]
        return build_connection(relay.Connection[UserNode], nodes, start, has_next, has_prev)

    @strawberry.field(description="User groups by name (admin).", permission_classes=[IsAdmin])
    async def groups(
        self, info: InfoT, first: int | None = None, after: str | None = None
    ) -> relay.Connection[GroupNode]:
        statement = select(Group).order_by(Group.name, Group.id)
        rows, start, has_next, has_prev = await paginate(
            info.context.session, statement, first, after, info.context.settings.max_page_size
        )
        nodes = [GroupNode.from_model(group) for group in rows]
        return build_connection(relay.Connection[GroupNode], nodes, start, has_next, has_prev)


# ---- sign-in mutations ---------------------------------------------------------------------


async def _register(info: InfoT, data: RegisterInput) -> RegisterPayload:
    context = info.context
    decision = await context.runtime.limiter.hit(
        f"register:ip:{context.client_ip}",
        context.settings.login_ip_max_attempts,
        context.settings.login_window_seconds,
    )
    try:
        if not decision.allowed:
            raise session_service.RateLimited(decision.retry_after)
        user = await user_service.register(
            context.session,
            user_service.Registration(
                email=data.email,
                phone=data.phone,
                password=data.password,
                locale=data.locale,
                timezone=data.timezone,
            ),
            context.settings,
        )
        issued = await session_service.issue_tokens(
            context.session, user, uuid.uuid4(), context.runtime.codec, context.settings
        )
    except DomainError as exc:
        return RegisterPayload(errors=account_errors(exc))
    return RegisterPayload(user=UserNode.from_model(user), tokens=_tokens(issued), errors=[])


async def _login(info: InfoT, data: LoginInput) -> LoginPayload:
    context = info.context
    try:
        issued = await session_service.login(
            context.session,
            data.login,
            data.password,
            context.client_ip,
            context.runtime.limiter,
            context.runtime.codec,
            context.settings,
        )
    except DomainError as exc:
        return LoginPayload(errors=account_errors(exc))
    return LoginPayload(user=UserNode.from_model(issued.user), tokens=_tokens(issued), errors=[])


async def _token_refresh(info: InfoT, data: TokenRefreshInput) -> LoginPayload:
    context = info.context
    try:
        issued = await session_service.refresh(
            context.session, data.refresh_token, context.runtime.codec, context.settings
        )
    except DomainError as exc:
        return LoginPayload(errors=account_errors(exc))
    return LoginPayload(user=UserNode.from_model(issued.user), tokens=_tokens(issued), errors=[])


async def _signed_in_user(info: InfoT) -> User:
    principal = await require(info, Role.USER)
    user = await info.context.session.get(User, principal.user_id)
    assert user is not None  # the principal was just loaded from this row
    return user


async def _logout(info: InfoT, data: LogoutInput) -> LogoutPayload:
    user = await _signed_in_user(info)
    await session_service.logout(info.context.session, user.id, data.refresh_token)
    return LogoutPayload(errors=[])


async def _account_delete(info: InfoT, data: AccountDeleteInput) -> AccountDeletePayload:
    user = await _signed_in_user(info)
    if user.password_hash is not None and not verify_password(user.password_hash, data.password):
        return AccountDeletePayload(
            errors=[
                AccountError(
                    code=AccountCode.INVALID_CREDENTIALS,
                    field="password",
                    message="Wrong password.",
                )
            ]
        )
    await user_service.delete_account(info.context.session, user)
    return AccountDeletePayload(errors=[])


# ---- admin mutations -----------------------------------------------------------------------


async def _set_blocked(info: InfoT, data: UserBlockInput, blocked: bool) -> UserBlockPayload:
    principal = await require(info, Role.ADMIN)
    try:
        user_id = node_uuid(data.user_id, "User", "userId", AccountCode.NOT_FOUND)
        if len(data.reason) > 500:
            raise DomainError(
                AccountCode.REASON_TOO_LONG, "Reason is limited to 500 characters.", "reason"
            )
        user = await user_service.set_blocked(
            info.context.session, principal.key, principal.user_id, user_id, blocked, data.reason
        )
    except DomainError as exc:
        return UserBlockPayload(errors=account_errors(exc))
    return UserBlockPayload(user=UserNode.from_model(user), errors=[])


def _group_idempotency_code(code: IdempotencyErrorCode) -> enum.Enum:
    return group_service.GroupErrorCode[code.name]


async def _group_create(info: InfoT, data: GroupCreateInput) -> GroupPayload:
    principal = await require(info, Role.ADMIN)
    session = info.context.session

    async def create() -> str:
        group = await group_service.create_group(
            session, principal.key, data.name, data.description
        )
        return str(group.id)

    try:
        group_id, _ = await run_once(
            session,
            principal=principal.key,
            operation="groupCreate",
            key=data.idempotency_key,
            request={"name": data.name, "description": data.description},
            create=create,
            error_code=_group_idempotency_code,
        )
        group = await group_service.get_group(session, uuid.UUID(group_id))
    except DomainError as exc:
        return GroupPayload(errors=group_errors(exc))
    return GroupPayload(group=GroupNode.from_model(group), errors=[])


async def _group_update(info: InfoT, data: GroupUpdateInput) -> GroupPayload:
    principal = await require(info, Role.ADMIN)
    try:
        group_id = node_uuid(data.group_id, "Group", "groupId", GroupCode.NOT_FOUND)
        group = await group_service.update_group(
            info.context.session, principal.key, group_id, data.name, data.description
        )
    except DomainError as exc:
        return GroupPayload(errors=group_errors(exc))
    return GroupPayload(group=GroupNode.from_model(group), errors=[])


async def _group_delete(info: InfoT, data: GroupDeleteInput) -> GroupDeletePayload:
    principal = await require(info, Role.ADMIN)
    try:
        group_id = node_uuid(data.group_id, "Group", "groupId", GroupCode.NOT_FOUND)
        await group_service.delete_group(info.context.session, principal.key, group_id)
    except DomainError as exc:
        return GroupDeletePayload(errors=group_errors(exc))
    return GroupDeletePayload(deleted_group_id=data.group_id, errors=[])


async def _group_members(info: InfoT, data: GroupMembersInput, add: bool) -> GroupPayload:
    principal = await require(info, Role.ADMIN)
    change = group_service.add_members if add else group_service.remove_members
    try:
        group_id = node_uuid(data.group_id, "Group", "groupId", GroupCode.NOT_FOUND)
        user_ids = [
            node_uuid(uid, "User", "userIds", GroupCode.USER_NOT_FOUND) for uid in data.user_ids
        ]
        group = await change(info.context.session, principal.key, group_id, user_ids)
    except DomainError as exc:
        return GroupPayload(errors=group_errors(exc))
    return GroupPayload(group=GroupNode.from_model(group), errors=[])


@strawberry.type
class UserMutation:
    @strawberry.mutation(description="Create an account and sign in.")
    async def register(self, info: InfoT, input: RegisterInput) -> RegisterPayload:
        return await _register(info, input)

    @strawberry.mutation(description="Sign in with email or phone and password.")
    async def login(self, info: InfoT, input: LoginInput) -> LoginPayload:
        return await _login(info, input)

    @strawberry.mutation(description="Swap a refresh token for a new token pair (rotation).")
    async def token_refresh(self, info: InfoT, input: TokenRefreshInput) -> LoginPayload:
        return await _token_refresh(info, input)

    @strawberry.mutation(description="Sign out one login or every session.")
    async def logout(self, info: InfoT, input: LogoutInput) -> LogoutPayload:
        return await _logout(info, input)

    @strawberry.mutation(description="Delete the caller's account: personal data is erased.")
    async def account_delete(self, info: InfoT, input: AccountDeleteInput) -> AccountDeletePayload:
        return await _account_delete(info, input)

    @strawberry.mutation(description="Block a user: sign-in refused, tokens stop working (admin).")
    async def user_block(self, info: InfoT, input: UserBlockInput) -> UserBlockPayload:
        return await _set_blocked(info, input, blocked=True)

    @strawberry.mutation(description="Unblock a user (admin).")
    async def user_unblock(self, info: InfoT, input: UserBlockInput) -> UserBlockPayload:
        return await _set_blocked(info, input, blocked=False)

    @strawberry.mutation(description="Create a user group (admin).")
    async def group_create(self, info: InfoT, input: GroupCreateInput) -> GroupPayload:
        return await _group_create(info, input)

    @strawberry.mutation(description="Rename or describe a user group (admin).")
    async def group_update(self, info: InfoT, input: GroupUpdateInput) -> GroupPayload:
        return await _group_update(info, input)

    @strawberry.mutation(description="Delete a user group (admin).")
    async def group_delete(self, info: InfoT, input: GroupDeleteInput) -> GroupDeletePayload:
        return await _group_delete(info, input)

    @strawberry.mutation(description="Add users to a group (admin).")
    async def group_members_add(self, info: InfoT, input: GroupMembersInput) -> GroupPayload:
        return await _group_members(info, input, add=True)

    @strawberry.mutation(description="Remove users from a group (admin).")
    async def group_members_remove(self, info: InfoT, input: GroupMembersInput) -> GroupPayload:
        return await _group_members(info, input, add=False)
