"""Turning an `Authorization` header into the caller's principal."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import (
    ANONYMOUS,
    SERVICE_TOKEN_PREFIX,
    AccessTokenCodec,
    Principal,
    TokenError,
    digest,
)
from app.lean import HotStatement
from app.models.identity import Role, ServiceToken, User, UserStatus

_CALLER_COLUMNS = (User.id, User.status, User.roles, User.locale)
# The principal is resolved on every authenticated request: the lean path (app/lean.py).
_USER_BY_ID = HotStatement(select(*_CALLER_COLUMNS).where(User.id == bindparam("user_id")))
_USER_BY_SUBJECT = HotStatement(
    select(*_CALLER_COLUMNS).where(User.external_subject == bindparam("subject"))
)
_SERVICE_BY_HASH = HotStatement(
    select(ServiceToken.name, ServiceToken.roles).where(
        ServiceToken.token_hash == bindparam("token_hash"), ServiceToken.revoked_at.is_(None)
    )
)


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
        service = await _SERVICE_BY_HASH.one_or_none(session, token_hash=digest(credential))
        if service is None:
            raise TokenError("INVALID")
        return Principal(kind="service", id=service.name, roles=frozenset(service.roles))
    claims = await codec.verify_async(credential)
    user = await _user_for_claims(session, claims.subject, claims.external, claims.email)
    if user is None:
        raise TokenError("UNKNOWN_USER")
    if user.status != UserStatus.ACTIVE:
        raise TokenError("ACCOUNT_" + user.status.value)
    return Principal(
        kind="user",
        id=str(user.id),
        roles=frozenset(user.roles),
        user_id=user.id,
        locale=user.locale,
    )


async def _user_for_claims(
    session: AsyncSession, subject: str, external: bool, email: str | None
) -> Any:
    """The caller's id, status, roles and locale, or None."""
    if not external:
        try:
            user_id = uuid.UUID(subject)
        except ValueError:
            return None
        return await _USER_BY_ID.one_or_none(session, user_id=user_id)
    user = await _USER_BY_SUBJECT.one_or_none(session, subject=subject)
    if user is None:
        provisioned = await _provision(session, subject, email)
        user = await _USER_BY_ID.one_or_none(session, user_id=provisioned.id)
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
