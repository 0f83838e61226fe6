"""Batch loaders, created per request in the context so nothing leaks between callers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from app.models.users import Group, User
from app.services import groups as group_service
from schema.context import Context
from schema.users import GroupNode


def _uuids(keys: Sequence[str]) -> list[uuid.UUID]:
    """The keys that are UUIDs; a malformed key (from a forged global id) finds nothing."""
    found = []
    for key in keys:
        try:
            found.append(uuid.UUID(key))
        except ValueError:
            continue
    return found


def build_loaders(context: Context) -> dict[str, DataLoader[Any, Any]]:
    def loader(fn: Callable[[list[str]], Any]) -> DataLoader[Any, Any]:
        return DataLoader(load_fn=fn)

    async def users(keys: list[str]) -> list[User | None]:
        rows = await context.session.scalars(select(User).where(User.id.in_(_uuids(keys))))
        by_id = {str(user.id): user for user in rows}
        return [by_id.get(key) for key in keys]

    async def groups(keys: list[str]) -> list[Group | None]:
        rows = await context.session.scalars(select(Group).where(Group.id.in_(_uuids(keys))))
        by_id = {str(group.id): group for group in rows}
        return [by_id.get(key) for key in keys]

    async def user_groups(keys: list[str]) -> list[list[GroupNode]]:
        found = await group_service.groups_of_users(context.session, _uuids(keys))
        return [[GroupNode.from_model(g) for g in found[uuid.UUID(key)]] for key in keys]

    async def group_member_count(keys: list[str]) -> list[int]:
        counts = await group_service.member_counts(context.session, _uuids(keys))
        return [counts.get(uuid.UUID(key), 0) for key in keys]

    return {
        "users": loader(users),
        "groups": loader(groups),
        "user_groups": loader(user_groups),
        "group_member_count": loader(group_member_count),
    }
