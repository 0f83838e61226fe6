"""Identity test data: users, access tokens, service tokens (plain async factories)."""

from __future__ import annotations

import uuid

from app.auth import AccessTokenCodec
from app.models.identity import Role, User
from app.runtime import Runtime
from app.services.identity import sessions as session_service
from app.services.identity import users as user_service

PASSWORD = "correct-horse-battery"


async def create_user(
    runtime: Runtime,
    email: str | None = None,
    *,
    roles: tuple[Role, ...] = (Role.USER,),
    password: str = PASSWORD,
    phone: str | None = None,
    timezone: str | None = None,
) -> User:
    async with runtime.session_factory() as session, session.begin():
        user = await user_service.register(
            session,
            user_service.Registration(
                email=email or f"user-{uuid.uuid4().hex[:8]}@example.com",
                phone=phone,
                password=password,
            ),
            runtime.settings,
        )
        user.roles = [role.value for role in roles]
        if timezone is not None:
            user.timezone = timezone
    return user


async def access_token(runtime: Runtime, user: User) -> str:
    return AccessTokenCodec(runtime.settings).issue(user.id, user.roles)


async def service_token(runtime: Runtime, name: str | None = None) -> str:
    async with runtime.session_factory() as session, session.begin():
        _, secret = await session_service.create_service_token(
            session, name or f"svc-{uuid.uuid4().hex[:8]}", [Role.SERVICE]
        )
    return secret
