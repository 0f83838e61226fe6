"""The family domain's DataLoaders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.services.family import reading
from schema.loaders import ContextLoader

Members = tuple[uuid.UUID, frozenset[uuid.UUID]]


class FamilyMembersLoader(ContextLoader[str, Members | None]):
    """A family's id and its members' user ids, by node key (for `node(id:)` visibility)."""

    async def batch_load(self, keys: Sequence[str]) -> Sequence[Members | None]:
        ids = [_uuid(key) for key in keys]
        found = await reading.accounts_by_ids(self.session, [i for i in ids if i])
        return [(i, found[i][1]) if i is not None and i in found else None for i in ids]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
