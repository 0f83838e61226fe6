"""Identity's DataLoaders: users and groups by id, a user's groups, a group's member count."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.models.identity import Group, User
from app.services.identity import groups, reading
from app.services.lookup import parse_uuids
from schema.loaders import ContextLoader


class UserByIdLoader(ContextLoader[str, User | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[User | None]:
        return await reading.users_by_ids(self.session, keys)


class GroupByIdLoader(ContextLoader[str, Group | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[Group | None]:
        return await reading.groups_by_ids(self.session, keys)


class GroupsByUserIdLoader(ContextLoader[str, list[Group]]):
    """A user's groups, by name."""

    async def batch_load(self, keys: Sequence[str]) -> Sequence[list[Group]]:
        parsed = parse_uuids(keys)
        found = await groups.groups_of_users(self.session, list(parsed.values()))
        return [found.get(parsed[key], []) if key in parsed else [] for key in keys]


class MemberCountByGroupIdLoader(ContextLoader[str, int]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[int]:
        parsed = parse_uuids(keys)
        counts = await groups.member_counts(self.session, list(parsed.values()))
        return [counts.get(parsed.get(key, uuid.UUID(int=0)), 0) for key in keys]
