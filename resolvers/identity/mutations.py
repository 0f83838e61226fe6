"""Identity: sign-in mutations (register, login, token refresh, logout, account deletion)."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from app.models.identity import Role, User
from app.services.errors import DomainError
from app.services.identity import reading
from app.services.identity import sessions as session_service
from app.services.identity import users as user_service
from schema.context import Context
from schema.errors import payload_errors
from schema.identity.errors import AccountError
from schema.identity.inputs import (
    AccountDeleteInput,
    AccountDeletePayload,
    LoginInput,
    LoginPayload,
    LogoutInput,
    LogoutPayload,
    RegisterInput,
    RegisterPayload,
    TokenRefreshInput,
)
from schema.identity.types import AuthTokens, UserNode
from schema.permissions import require

InfoT = Info[Context, Any]


def account_errors(exc: DomainError) -> list[AccountError]:
    return payload_errors(AccountError, exc, retry_after=getattr(exc, "retry_after", None))


def _tokens(issued: session_service.IssuedTokens) -> AuthTokens:
    return AuthTokens(
        access_token=issued.access_token,
        access_token_expires_at=issued.access_expires_at,
        refresh_token=issued.refresh_token,
        refresh_token_expires_at=issued.refresh_expires_at,
    )


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
    return await reading.signed_in_user(info.context.session, principal)


async def _logout(info: InfoT, data: LogoutInput) -> LogoutPayload:
    user = await _signed_in_user(info)
    await session_service.logout(info.context.session, user.id, data.refresh_token)
    return LogoutPayload(errors=[])


async def _account_delete(info: InfoT, data: AccountDeleteInput) -> AccountDeletePayload:
    user = await _signed_in_user(info)
    try:
        await user_service.delete_own_account(
            info.context.session, user, data.password, info.context.settings
        )
    except DomainError as exc:
        return AccountDeletePayload(errors=account_errors(exc))
    return AccountDeletePayload(errors=[])


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
