"""The promocodes domain's DataLoaders."""

from __future__ import annotations

from collections.abc import Sequence

from app.models.promocodes import Plan, Promocode, PromocodeAttempt, PromocodeGrant, Purchase
from app.services.promocodes import reading
from schema.loaders import ContextLoader


class PlanByIdLoader(ContextLoader[str, Plan | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[Plan | None]:
        return await reading.plans_by_ids(self.session, keys)


class PromocodeByIdLoader(ContextLoader[str, Promocode | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[Promocode | None]:
        return await reading.promocodes_by_ids(self.session, keys)


class PlansByPromocodeIdLoader(ContextLoader[str, list[Plan] | None]):
    """The plans a code is restricted to; None for a code that fits every plan."""

    async def batch_load(self, keys: Sequence[str]) -> Sequence[list[Plan] | None]:
        return await reading.plans_of_promocodes(self.session, keys)


class PurchaseByIdLoader(ContextLoader[str, Purchase | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[Purchase | None]:
        return await reading.purchases_by_ids(self.session, keys)


class GrantByIdLoader(ContextLoader[str, PromocodeGrant | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[PromocodeGrant | None]:
        return await reading.grants_by_ids(self.session, keys)


class AttemptByIdLoader(ContextLoader[str, PromocodeAttempt | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[PromocodeAttempt | None]:
        return await reading.attempts_by_ids(self.session, keys)
