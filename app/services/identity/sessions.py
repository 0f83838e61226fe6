"""Sign-in sessions: login, refresh-token rotation with reuse detection, logout, service tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import (
    SERVICE_TOKEN_PREFIX,
    AccessTokenCodec,
    digest,
    hash_password,
    new_opaque_token,
    password_needs_rehash,
    verify_password,
)
from app.models.base import utcnow
from app.models.identity import RefreshToken, Role, ServiceToken, User, UserStatus
from app.ratelimit import RateLimiter
from app.services.errors import DomainError
from app.services.identity.users import AccountErrorCode, revoke_all_refresh_tokens
from app.services.validation import InvalidValue, normalize_email, normalize_phone
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    user: User
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime


class RateLimited(DomainError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            AccountErrorCode.RATE_LIMITED,
            f"Too many attempts. Try again in {retry_after} seconds.",
        )
        self.retry_after = retry_after


_BAD_CREDENTIALS = "Wrong login or password."


def _normalized_login(login: str) -> str | None:
    try:
        return normalize_phone(login) if login.strip().startswith("+") else normalize_email(login)
    except InvalidValue:
        return None


async def login(
    session: AsyncSession,
    login: str,
    password: str,
    client_ip: str,
    limiter: RateLimiter,
    codec: AccessTokenCodec,
    settings: Settings,
) -> IssuedTokens:
    """Check the credentials and start a new token family.

    An unknown login and a wrong password get the same answer and take the same time.
    """
    normalized = _normalized_login(login)
    account_key = f"login:acct:{normalized or login.strip().lower()[:254]}"
    window = settings.login_window_seconds
    for key, limit in (
        (f"login:ip:{client_ip}", settings.login_ip_max_attempts),
        (account_key, settings.login_max_attempts),
    ):
        decision = await limiter.hit(key, limit, window)
        if not decision.allowed:
            raise RateLimited(decision.retry_after)

    user = None
    if normalized is not None and len(password) <= settings.password_max_length:
        column = User.phone if normalized.startswith("+") else User.email
        user = await session.scalar(select(User).where(column == normalized))
    if not verify_password(user.password_hash if user else None, password[:1024]) or user is None:
        raise DomainError(AccountErrorCode.INVALID_CREDENTIALS, _BAD_CREDENTIALS, "login")
    if user.status == UserStatus.BLOCKED:
        raise DomainError(AccountErrorCode.ACCOUNT_BLOCKED, "This account is blocked.", "login")
    if user.status != UserStatus.ACTIVE:
        raise DomainError(AccountErrorCode.INVALID_CREDENTIALS, _BAD_CREDENTIALS, "login")
    await limiter.reset(account_key)
    if user.password_hash and password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return await issue_tokens(session, user, uuid.uuid4(), codec, settings)


async def issue_tokens(
    session: AsyncSession,
    user: User,
    family_id: uuid.UUID,
    codec: AccessTokenCodec,
    settings: Settings,
) -> IssuedTokens:
    now = utcnow()
    refresh = new_opaque_token()
    refresh_expires_at = now + timedelta(seconds=settings.refresh_token_ttl_seconds)
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=digest(refresh),
            expires_at=refresh_expires_at,
        )
    )
    await session.flush()
    return IssuedTokens(
        user=user,
        access_token=codec.issue(user.id, user.roles, now),
        refresh_token=refresh,
        access_expires_at=now + timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_expires_at=refresh_expires_at,
    )


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, reason: str) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


class RefreshTokenReused(DomainError):
    """Raised after the token family was revoked; the caller must commit that revocation."""

    def __init__(self) -> None:
        super().__init__(
            AccountErrorCode.REFRESH_TOKEN_REUSED,
            "This refresh token was already used; every session of this login was signed out.",
            "refreshToken",
        )


async def refresh(
    session: AsyncSession, refresh_token: str, codec: AccessTokenCodec, settings: Settings
) -> IssuedTokens:
    """Rotate: the presented token is spent and a new one of the same family is issued.

    The row is locked so two concurrent refreshes with one token can't both succeed; the
    loser sees the token already rotated and is treated as reuse.
    """
    invalid = DomainError(AccountErrorCode.INVALID_REFRESH_TOKEN, "Sign in again.", "refreshToken")
    token = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == digest(refresh_token))
        .with_for_update()
    )
    if token is None or token.revoked_at is not None:
        raise invalid
    if token.rotated_at is not None:
        await revoke_family(session, token.family_id, "REUSE_DETECTED")
        raise RefreshTokenReused()
    if token.expires_at <= utcnow():
        raise invalid
    user = await session.get(User, token.user_id)
    if user is None or user.status != UserStatus.ACTIVE:
        raise invalid
    token.rotated_at = utcnow()
    return await issue_tokens(session, user, token.family_id, codec, settings)


async def logout(session: AsyncSession, user_id: uuid.UUID, refresh_token: str | None) -> None:
    """Revoke the family of the given refresh token, or every session of the user."""
    if refresh_token is None:
        await revoke_all_refresh_tokens(session, user_id, "LOGOUT")
        return
    token = await session.scalar(
        select(RefreshToken).where(
            RefreshToken.token_hash == digest(refresh_token), RefreshToken.user_id == user_id
        )
    )
    if token is not None:
        await revoke_family(session, token.family_id, "LOGOUT")


async def create_service_token(
    session: AsyncSession, name: str, roles: list[Role]
) -> tuple[ServiceToken, str]:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("the service token name must be 1 to 100 characters")
    if await session.scalar(select(ServiceToken.id).where(ServiceToken.name == name)):
        raise ValueError(f"a service token named {name!r} exists already")
    secret = new_opaque_token(SERVICE_TOKEN_PREFIX)
    token = ServiceToken(name=name, token_hash=digest(secret), roles=[r.value for r in roles])
    session.add(token)
    await session.flush()
    return token, secret


async def find_service_token(session: AsyncSession, secret: str) -> ServiceToken | None:
    return await session.scalar(
        select(ServiceToken).where(
            ServiceToken.token_hash == digest(secret), ServiceToken.revoked_at.is_(None)
        )
    )
