"""The promotions domain's DataLoaders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.models.promotions import Promotion, PromotionRide
from app.services.promotions import catalog, reading
from schema.loaders import ContextLoader


class PromotionByIdLoader(ContextLoader[str, Promotion | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[Promotion | None]:
        ids = [_uuid(key) for key in keys]
        found = await catalog.promotions_by_ids(self.session, [i for i in ids if i])
        return [found.get(i) if i else None for i in ids]


class RidesByRunIdLoader(ContextLoader[uuid.UUID, list[PromotionRide]]):
    async def batch_load(self, keys: Sequence[uuid.UUID]) -> Sequence[list[PromotionRide]]:
        found = await reading.rides_of(self.session, keys)
        return [found.get(key, []) for key in keys]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
