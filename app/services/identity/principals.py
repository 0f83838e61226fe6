"""Turning an `Authorization` header into the caller's principal."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import (
    ANONYMOUS,
    SERVICE_TOKEN_PREFIX,
    AccessTokenCodec,
    Principal,
    TokenError,
)
from app.models.identity import Role, User, UserStatus
from app.services.identity.sessions import find_service_token


async def resolve_principal(
    session: AsyncSession, authorization: str | None, codec: AccessTokenCodec
) -> Principal:
    """Return who is calling; raise `TokenError` for a credential that can't be trusted.

    Roles and status come from the database on every request, so blocking a user or taking a
    role away takes effect at once, not when the access token expires.
    """
    if not authorization:
        return ANONYMOUS
    scheme, _, credential = authorization.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise TokenError("MALFORMED")
    if credential.startswith(SERVICE_TOKEN_PREFIX):
        service = await find_service_token(session, credential)
        if service is None:
            raise TokenError("INVALID")
        return Principal(kind="service", id=service.name, roles=frozenset(service.roles))
    claims = await codec.verify_async(credential)
    user = await _user_for_claims(session, claims.subject, claims.external, claims.email)
    if user is None:
        raise TokenError("UNKNOWN_USER")
    if user.status != UserStatus.ACTIVE:
        raise TokenError("ACCOUNT_" + user.status.value)
    # The identity map holds rows weakly: keep the caller's row for the unit of work, so
    # resolvers asking for it again (`session.get(User, id)`) don't query it again.
    session.info["principal_user"] = user
    return Principal(kind="user", id=str(user.id), roles=frozenset(user.roles), user_id=user.id)


async def _user_for_claims(
    session: AsyncSession, subject: str, external: bool, email: str | None
) -> User | None:
    if not external:
        try:
            return await session.get(User, uuid.UUID(subject))
        except ValueError:
            return None
    user = await session.scalar(select(User).where(User.external_subject == subject))
    if user is None:
        user = await _provision(session, subject, email)
    return user


async def _provision(session: AsyncSession, subject: str, email: str | None) -> User:
    """First call of a user known to the external issuer: create the local account.

    An email already used by a local account is not attached: the issuer's claim alone does
    not prove the two are the same person, so linking stays an explicit admin decision.
    """
    normalized = email.strip().lower() if email else None
    if normalized and await session.scalar(select(User.id).where(User.email == normalized)):
        normalized = None
    user = User(external_subject=subject, email=normalized, roles=[Role.USER.value])
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:  # a concurrent first call provisioned it
        found = await session.scalar(select(User).where(User.external_subject == subject))
        if found is None:
            raise
        return found
    return user
