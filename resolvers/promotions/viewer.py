"""The promotions domain's fields on `viewer` (the caller's promotion) and on `launch` (the
app-start badge: one prebuilt statement, no writes)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from resolvers.promotions import queries
from schema.context import Context
from schema.promotions.types import PromotionBadge, ViewerPromotion

InfoT = Info[Context, Any]


@strawberry.type
class PromotionViewer:
    @strawberry.field(
        description=(
            "The caller's newcomer promotion: eligibility, status, progress and deadlines; "
            "null without a pre-offer. Opening it assigns the caller to the landing (the "
            "split) when eligible."
        )
    )
    async def promotion(self, info: InfoT) -> ViewerPromotion | None:
        return await queries.viewer_promotion(info)


@strawberry.type
class PromotionLaunch:
    @strawberry.field(
        description="What the app's promotion entry shows; null when there is nothing to show."
    )
    async def promotion_badge(self, info: InfoT) -> PromotionBadge | None:
        return await queries.launch_badge(info)
