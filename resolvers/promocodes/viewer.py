"""The promocodes domain's fields on `viewer`: the caller's codes and purchases."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers.promocodes import queries
from schema.base import After, PageSize
from schema.context import Context
from schema.promocodes.types import PromocodeOffer, PurchaseNode

InfoT = Info[Context, Any]


@strawberry.type
class PromocodeViewer:
    @strawberry.field(
        description=(
            "Promocodes the caller can use now: granted to them (personally or through a "
            "group) or public, with what each gives; at most 100, soonest to expire first."
        )
    )
    async def promocodes(self, info: InfoT) -> list[PromocodeOffer]:
        return await queries.viewer_promocodes(info)

    @strawberry.field(description="The caller's purchases, newest first.")
    async def purchases(
        self, info: InfoT, first: PageSize = None, after: After = None
    ) -> relay.Connection[PurchaseNode]:
        return await queries.viewer_purchases(info, first, after)
