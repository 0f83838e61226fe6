"""Promotion rewards, client side: mutation inputs and payloads."""

from __future__ import annotations

import strawberry

from schema.promotions.errors import PromotionError
from schema.promotions.types import PromotionLoanApplication, PromotionReward, ViewerPromotion


@strawberry.input(description="The promotion to act on.")
class PromotionInput:
    promotion_id: strawberry.ID = strawberry.field(description="The Promotion's global id.")


@strawberry.type(description="The result of `promotionStart`.")
class PromotionStartPayload:
    promotion: ViewerPromotion | None = strawberry.field(
        default=None, description="The user's promotion, now STARTED; null when refused."
    )
    errors: list[PromotionError] = strawberry.field(description="Why not; empty if started.")


@strawberry.type(description="The result of `promotionReward`.")
class PromotionRewardPayload:
    reward: PromotionReward | None = strawberry.field(
        default=None, description="The offer the completed challenge earned; null when refused."
    )
    errors: list[PromotionError] = strawberry.field(description="Why not; empty if given.")


@strawberry.type(description="The result of `promotionRewardAccept`.")
class PromotionRewardAcceptPayload:
    application: PromotionLoanApplication | None = strawberry.field(
        default=None,
        description="The loan application (the same one on every retry); null when refused.",
    )
    errors: list[PromotionError] = strawberry.field(description="Why not; empty if accepted.")
