"""Refresh-token families (docs/testing.md, `make mutate`): a reuse revokes its own family only,
with the reason kept, and the error names the field and says what happened."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.models.identity import RefreshToken
from app.runtime import Runtime
from app.services.identity import sessions
from app.services.identity.users import AccountErrorCode
from tests.factories.identity import create_user


async def _families(runtime: Runtime, user_id: uuid.UUID) -> dict[uuid.UUID, set[str | None]]:
    """Each family of the user with the revocation reasons of its tokens."""
    async with runtime.session_factory() as session:
        tokens = await session.scalars(select(RefreshToken).where(RefreshToken.user_id == user_id))
        families: dict[uuid.UUID, set[str | None]] = {}
        for token in tokens:
            families.setdefault(token.family_id, set()).add(token.revoked_reason)
        return families


async def _start_family(runtime: Runtime, user_id: uuid.UUID) -> sessions.IssuedTokens:
    async with runtime.session_factory() as session, session.begin():
        user = await session.get(sessions.User, user_id)
        assert user is not None
        return await sessions.issue_tokens(
            session, user, uuid.uuid4(), runtime.codec, runtime.settings
        )


async def test_a_reused_token_revokes_its_family_alone_and_keeps_the_reason(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    reused = await _start_family(runtime, user.id)
    other = await _start_family(runtime, user.id)
    async with runtime.session_factory() as session, session.begin():
        await sessions.refresh(session, reused.refresh_token, runtime.codec, runtime.settings)

    async with runtime.session_factory() as session, session.begin():  # commits the revocation
        with pytest.raises(sessions.RefreshTokenReused) as raised:
            await sessions.refresh(session, reused.refresh_token, runtime.codec, runtime.settings)
    async with runtime.session_factory() as session, session.begin():
        await sessions.revoke_family(session, uuid.uuid4(), "NOTHING")  # no such family

    error = raised.value
    assert (error.code, error.field) == (AccountErrorCode.REFRESH_TOKEN_REUSED, "refreshToken")
    assert error.message == (
        "This refresh token was already used; every session of this login was signed out."
    )
    families = await _families(runtime, user.id)
    assert len(families) == 2
    other_family = next(f for f in families if families[f] == {None})
    assert families.pop(other_family) == {None}
    assert list(families.values()) == [{"REUSE_DETECTED"}]
    async with runtime.session_factory() as session, session.begin():
        renewed = await sessions.refresh(
            session, other.refresh_token, runtime.codec, runtime.settings
        )
    assert renewed.user.id == user.id
