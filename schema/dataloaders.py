"""Batch loaders, created per request in the context so nothing leaks between callers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from app.models.identity import Group, User
from app.models.promocodes import Plan, Promocode, promocode_plans
from app.services.identity import groups as group_service
from schema.context import Context
from schema.identity.types import GroupNode
from schema.ids import parse_uuids


def _ids(keys: Sequence[str]) -> list[uuid.UUID]:
    return list(parse_uuids(keys).values())


def build_loaders(context: Context) -> dict[str, DataLoader[Any, Any]]:
    def loader(fn: Callable[[list[str]], Any]) -> DataLoader[Any, Any]:
        return DataLoader(load_fn=fn)

    async def users(keys: list[str]) -> list[User | None]:
        rows = await context.session.scalars(select(User).where(User.id.in_(_ids(keys))))
        by_id = {str(user.id): user for user in rows}
        return [by_id.get(key) for key in keys]

    async def groups(keys: list[str]) -> list[Group | None]:
        rows = await context.session.scalars(select(Group).where(Group.id.in_(_ids(keys))))
        by_id = {str(group.id): group for group in rows}
        return [by_id.get(key) for key in keys]

    async def user_groups(keys: list[str]) -> list[list[GroupNode]]:
        found = await group_service.groups_of_users(context.session, _ids(keys))
        return [[GroupNode.from_model(g) for g in found[uuid.UUID(key)]] for key in keys]

    async def group_member_count(keys: list[str]) -> list[int]:
        counts = await group_service.member_counts(context.session, _ids(keys))
        return [counts.get(uuid.UUID(key), 0) for key in keys]

    async def plans(keys: list[str]) -> list[Plan | None]:
        rows = await context.session.scalars(select(Plan).where(Plan.id.in_(_ids(keys))))
        by_id = {str(plan.id): plan for plan in rows}
        return [by_id.get(key) for key in keys]

    async def promocodes(keys: list[str]) -> list[Promocode | None]:
        rows = await context.session.scalars(select(Promocode).where(Promocode.id.in_(_ids(keys))))
        by_id = {str(promocode.id): promocode for promocode in rows}
        return [by_id.get(key) for key in keys]

    async def plans_of_promocodes(keys: list[str]) -> list[list[Plan] | None]:
        """The plans each code is restricted to; None for a code that fits every plan."""
        rows = await context.session.execute(
            select(promocode_plans.c.promocode_id, Plan)
            .join(Plan, Plan.id == promocode_plans.c.plan_id)
            .where(promocode_plans.c.promocode_id.in_(_ids(keys)))
            .order_by(Plan.price_minor, Plan.slug)
        )
        found: dict[str, list[Plan]] = {}
        for promocode_id, plan in rows:
            found.setdefault(str(promocode_id), []).append(plan)
        return [found.get(key) for key in keys]

    return {
        "users": loader(users),
        "groups": loader(groups),
        "user_groups": loader(user_groups),
        "group_member_count": loader(group_member_count),
        "plans": loader(plans),
        "promocodes": loader(promocodes),
        "promocode_plans": loader(plans_of_promocodes),
    }
