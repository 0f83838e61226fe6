"""User groups (named sets of users that promocodes can be granted to); admin only.

Concurrency decisions:
- Names are unique in any case, which the unique index (case-sensitive) can't enforce: a
  create or rename first claims the lower-cased name (`app.db.serialize_on`: a PostgreSQL
  advisory lock until commit), then checks it is free, so concurrent claims of one name take
  turns and all but the first get NAME_TAKEN, as a later call would. The write itself runs in
  a savepoint whose unique violation is NAME_TAKEN too (the backstop).
- Changes to one group (rename, delete, members) lock its row (`get_group(lock=True)`) on
  PostgreSQL; adding members is `INSERT … ON CONFLICT DO NOTHING`, so concurrent adds of one
  user are both fine.
- SQLite: `FOR UPDATE` and the advisory lock are no-ops there; the unit of work holds the
  write lock from its first statement (`app.db`), so these steps take turns anyway.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import serialize_on, upsert_insert
from app.models.identity import AuditLog, Group, GroupMember, User, UserStatus
from app.services.errors import DomainError

MAX_NAME_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 500
MAX_MEMBERS_PER_CALL = 1000


class GroupErrorCode(enum.Enum):
    INVALID_NAME = "INVALID_NAME"
    INVALID_DESCRIPTION = "INVALID_DESCRIPTION"
    NAME_TAKEN = "NAME_TAKEN"
    NOT_FOUND = "NOT_FOUND"
    USER_NOT_FOUND = "USER_NOT_FOUND"
    TOO_MANY_USERS = "TOO_MANY_USERS"
    INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH or not cleaned.isprintable():
        raise DomainError(
            GroupErrorCode.INVALID_NAME,
            f"The name must be 1-{MAX_NAME_LENGTH} printable characters.",
            "name",
        )
    return cleaned


def _clean_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise DomainError(
            GroupErrorCode.INVALID_DESCRIPTION,
            f"The description must be at most {MAX_DESCRIPTION_LENGTH} characters.",
            "description",
        )
    return description.strip()


async def _ensure_name_free(session: AsyncSession, name: str, except_id: uuid.UUID | None) -> None:
    query = select(Group.id).where(func.lower(Group.name) == name.lower())
    if except_id is not None:
        query = query.where(Group.id != except_id)
    if await session.scalar(query):
        raise DomainError(GroupErrorCode.NAME_TAKEN, "A group with this name exists.", "name")


async def _claim_name(session: AsyncSession, name: str, except_id: uuid.UUID | None) -> None:
    """NAME_TAKEN unless the name is free in any case; callers of one name take turns until
    commit (the unique index is case-sensitive, so it can't decide alone)."""
    await serialize_on(session, f"group-name:{name.lower()}")
    await _ensure_name_free(session, name, except_id)


async def _write_name(session: AsyncSession, group: Group, name: str) -> None:
    """Give the group its name and write it, in a savepoint: the unique index is the
    backstop should a writer skip the claim (its violation is NAME_TAKEN, not a failed
    request). The name is set inside the savepoint, so a refusal leaves nothing to write."""
    try:
        async with session.begin_nested():
            group.name = name
            session.add(group)
            await session.flush()
    except IntegrityError as exc:
        raise DomainError(
            GroupErrorCode.NAME_TAKEN, "A group with this name exists.", "name"
        ) from exc


async def create_group(session: AsyncSession, actor: str, name: str, description: str) -> Group:
    name, description = _clean_name(name), _clean_description(description)
    await _claim_name(session, name, None)
    group = Group(description=description)
    await _write_name(session, group, name)
    session.add(AuditLog(actor=actor, action="group.create", target=f"group:{group.id}"))
    return group


async def get_group(session: AsyncSession, group_id: uuid.UUID, *, lock: bool = False) -> Group:
    group = await session.get(Group, group_id, with_for_update=lock)
    if group is None:
        raise DomainError(GroupErrorCode.NOT_FOUND, "No such group.", "groupId")
    return group


async def update_group(
    session: AsyncSession,
    actor: str,
    group_id: uuid.UUID,
    name: str | None,
    description: str | None,
) -> Group:
    clean_name = _clean_name(name) if name is not None else None
    clean_description = _clean_description(description) if description is not None else None
    group = await get_group(session, group_id, lock=True)
    if clean_description is not None:
        group.description = clean_description
    if clean_name is not None:
        await _claim_name(session, clean_name, group.id)
        await _write_name(session, group, clean_name)
    session.add(AuditLog(actor=actor, action="group.update", target=f"group:{group.id}"))
    return group


async def delete_group(session: AsyncSession, actor: str, group_id: uuid.UUID) -> None:
    group = await get_group(session, group_id, lock=True)
    await session.delete(group)
    session.add(AuditLog(actor=actor, action="group.delete", target=f"group:{group_id}"))


async def add_members(
    session: AsyncSession, actor: str, group_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> Group:
    """Add users to a group; users already in it are left as they are."""
    wanted = _checked_ids(user_ids)
    group = await get_group(session, group_id, lock=True)
    found = set(
        await session.scalars(
            select(User.id).where(User.id.in_(wanted), User.status != UserStatus.DELETED)
        )
    )
    if missing := [str(uid) for uid in wanted if uid not in found]:
        raise DomainError(
            GroupErrorCode.USER_NOT_FOUND, f"Unknown users: {', '.join(missing[:10])}", "userIds"
        )
    await session.execute(
        upsert_insert(session, GroupMember)
        .values([{"group_id": group.id, "user_id": uid} for uid in wanted])
        .on_conflict_do_nothing()
    )
    session.add(
        AuditLog(
            actor=actor,
            action="group.members_add",
            target=f"group:{group.id}",
            reason=f"{len(wanted)} users",
        )
    )
    return group


async def remove_members(
    session: AsyncSession, actor: str, group_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> Group:
    wanted = _checked_ids(user_ids)
    group = await get_group(session, group_id, lock=True)
    await session.execute(
        delete(GroupMember).where(GroupMember.group_id == group.id, GroupMember.user_id.in_(wanted))
    )
    session.add(
        AuditLog(
            actor=actor,
            action="group.members_remove",
            target=f"group:{group.id}",
            reason=f"{len(wanted)} users",
        )
    )
    return group


def _checked_ids(user_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    unique = list(dict.fromkeys(user_ids))
    if not unique or len(unique) > MAX_MEMBERS_PER_CALL:
        raise DomainError(
            GroupErrorCode.TOO_MANY_USERS,
            f"Give 1-{MAX_MEMBERS_PER_CALL} users per call.",
            "userIds",
        )
    return unique


async def member_counts(
    session: AsyncSession, group_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(GroupMember.group_id, func.count())
        .where(GroupMember.group_id.in_(group_ids))
        .group_by(GroupMember.group_id)
    )
    return {group_id: int(n) for group_id, n in rows.all()}


async def groups_of_users(
    session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Group]]:
    rows = await session.execute(
        select(GroupMember.user_id, Group)
        .join(Group, Group.id == GroupMember.group_id)
        .where(GroupMember.user_id.in_(user_ids))
        .order_by(Group.name)
    )
    result: dict[uuid.UUID, list[Group]] = {uid: [] for uid in user_ids}
    for user_id, group in rows.all():
        result[user_id].append(group)
    return result
