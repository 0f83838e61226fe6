"""Identity reads for the API: users and groups by id, and the admin's lists."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.models.identity import Group, User, UserStatus
from app.services.lookup import rows_by_ids
from app.services.pagination import OffsetPage, PageRows, fetch_page

MAX_SEARCH_LENGTH = 100


async def users_by_ids(session: AsyncSession, keys: Sequence[str]) -> list[User | None]:
    return await rows_by_ids(session, User, keys)


async def groups_by_ids(session: AsyncSession, keys: Sequence[str]) -> list[Group | None]:
    return await rows_by_ids(session, Group, keys)


async def list_users(
    session: AsyncSession,
    page: OffsetPage,
    *,
    status: UserStatus | None = None,
    search: str | None = None,
) -> PageRows[User]:
    """Users, newest first; `search` is part of an email or phone number."""
    statement = select(User).order_by(User.created_at.desc(), User.id)
    if status is not None:
        statement = statement.where(User.status == status)
    if search:
        pattern = f"%{search.strip().lower()[:MAX_SEARCH_LENGTH]}%"
        statement = statement.where(or_(User.email.like(pattern), User.phone.like(pattern)))
    return await fetch_page(session, statement, page)


async def list_groups(session: AsyncSession, page: OffsetPage) -> PageRows[Group]:
    """Groups by name."""
    return await fetch_page(session, select(Group).order_by(Group.name, Group.id), page)


async def signed_in_user(session: AsyncSession, principal: Principal) -> User:
    """The caller's own row (the principal's lookup reads only what every request needs)."""
    assert principal.user_id is not None, "a service principal has no user"
    user = await session.get(User, principal.user_id)
    assert user is not None, "the principal was resolved from this row"
    return user
