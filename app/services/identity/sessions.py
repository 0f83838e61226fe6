"""Sign-in sessions: login, refresh-token rotation with reuse detection, logout, service tokens.

Concurrency decisions:
- Refresh rotation needs no row lock: spending a token is one conditional UPDATE (`_spend`:
  live, unrotated, unexpired, of an active user), so exactly one of concurrent refreshes
  with one token wins on PostgreSQL and SQLite alike, and each loser is refused as a
  sequential reuse is (`_refuse`). Revoking a family is an idempotent UPDATE.
- Login verifies the password before its unit of work begins: the lookup runs aside
  (`app.db.read_aside`), the argon2 work in the hashing pool (`app.auth`), then the user is
  read again under the unit of work and must still be active with the same hash. A login
  flood therefore holds no database connection, nor SQLite's write lock, while it hashes.
- Logout only revokes (idempotent). Service tokens are created by the CLI, one at a time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

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
from app.db import read_aside
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

    An unknown login and a wrong password get the same answer and take the same time. The
    password is verified before the unit of work begins (`_verified`), so a flood of logins
    holds no connection and no SQLite write lock while it waits for the hashing pool.
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
    credentials = await _verified(session, normalized, password, settings)
    user = await session.get(User, credentials.user_id)  # the unit of work begins here
    if user is None or user.password_hash != credentials.password_hash:  # changed meanwhile
        raise DomainError(AccountErrorCode.INVALID_CREDENTIALS, _BAD_CREDENTIALS, "login")
    if user.status == UserStatus.BLOCKED:
        raise DomainError(AccountErrorCode.ACCOUNT_BLOCKED, "This account is blocked.", "login")
    if user.status != UserStatus.ACTIVE:
        raise DomainError(AccountErrorCode.INVALID_CREDENTIALS, _BAD_CREDENTIALS, "login")
    await limiter.reset(account_key)
    if credentials.rehashed is not None:
        user.password_hash = credentials.rehashed
    return await issue_tokens(session, user, uuid.uuid4(), codec, settings)


@dataclass(frozen=True, slots=True)
class _Credentials:
    user_id: uuid.UUID
    password_hash: str
    rehashed: str | None  # the password hashed with the current parameters, if they changed


async def _verified(
    session: AsyncSession, normalized: str | None, password: str, settings: Settings
) -> _Credentials:
    """The account whose password this is, or INVALID_CREDENTIALS (unknown login, wrong
    password: the same answer after the same argon2 verification)."""
    row = None
    if normalized is not None and len(password) <= settings.password_max_length:
        column = User.phone if normalized.startswith("+") else User.email
        async with read_aside(session) as reader:
            found = await reader.execute(
                select(User.id, User.password_hash).where(column == normalized)
            )
            row = found.one_or_none()
    password_hash = row.password_hash if row is not None else None
    if not await verify_password(password_hash, password[:1024], settings) or row is None:
        raise DomainError(AccountErrorCode.INVALID_CREDENTIALS, _BAD_CREDENTIALS, "login")
    assert password_hash is not None  # verify_password is False without one
    rehashed = None
    if password_needs_rehash(password_hash):
        rehashed = await hash_password(password, settings)
    return _Credentials(row.id, password_hash, rehashed)


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

    The spending is one conditional UPDATE (`_spend`) that only a live, unexpired, unrotated
    token of an active user passes, so of concurrent refreshes with one token exactly one
    wins, on any backend. Every loser is then told what a later, sequential reuse is told
    (`_refuse`): the token was rotated, so the family is revoked (REFRESH_TOKEN_REUSED), or,
    once it is revoked, INVALID_REFRESH_TOKEN.
    """
    token_hash = digest(refresh_token)
    spent = await _spend(session, token_hash, utcnow())
    if spent is None:
        await _refuse(session, token_hash)
    user_id, family_id = spent
    user = await session.get(User, user_id)
    assert user is not None  # _spend only passes tokens of active users
    return await issue_tokens(session, user, family_id, codec, settings)


async def _spend(
    session: AsyncSession, token_hash: str, now: datetime
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """Mark the token rotated if it may still be; (user id, family id), or None if not.

    On PostgreSQL a concurrent spender waits on the row and then re-checks the WHERE against
    the winner's committed row, which no longer passes; on SQLite the unit of work holds the
    write lock (app.db), and the WHERE is the check either way.
    """
    active_users = select(User.id).where(User.status == UserStatus.ACTIVE)
    row = (
        await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == token_hash,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.rotated_at.is_(None),
                RefreshToken.expires_at > now,
                RefreshToken.user_id.in_(active_users),
            )
            .values(rotated_at=now)
            .returning(RefreshToken.user_id, RefreshToken.family_id)
        )
    ).one_or_none()
    return None if row is None else (row.user_id, row.family_id)


async def _refuse(session: AsyncSession, token_hash: str) -> NoReturn:
    """Why a token can't be spent: reuse of a rotated one revokes its whole family."""
    token = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))
    if token is not None and token.revoked_at is None and token.rotated_at is not None:
        await revoke_family(session, token.family_id, "REUSE_DETECTED")
        raise RefreshTokenReused()
    raise DomainError(AccountErrorCode.INVALID_REFRESH_TOKEN, "Sign in again.", "refreshToken")


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
