"""Demo promotion: a newcomer challenge in Mexico, a pre-offer for vera, and what to try."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.identity import User
from app.services.promotions import catalog
from app.services.promotions.pre_offers import PreOfferRow, import_pre_offers

DEMO_PROMOTION_KEY = "newcomer-mx"


async def load_demo_promotions(session: AsyncSession, admin: User, user: User) -> None:
    actor = f"user:{admin.id}"
    await catalog.create_promotion(
        session,
        catalog.PromotionInput(
            key=DEMO_PROMOTION_KEY,
            title="Take 3 rides in 14 days, get a MX$1,000 loan",
            target_rides=3,
            min_ride_amount_minor=5_000,
            currency="MXN",
            reward_product_id=80,
            reward_amount_minor=100_000,
            reward_repayment_rate="15",
        ),
        actor=actor,
    )
    await catalog.set_region(session, "MX", True, actor=actor)
    await import_pre_offers(
        session, [PreOfferRow(str(user.id), DEMO_PROMOTION_KEY, "MX")], actor=actor
    )


PROMOTION_TRY = (
    "\nPromotion: vera has a newcomer pre-offer for `newcomer-mx` (3 rides of MX$50+ in 14 "
    "days). As vera: query { viewer { promotion { eligible status progress { current total } "
    "promotion { id title } } } }, then promotionStart(input: {promotionId: ...}); record "
    'three rides with currency "MXN" and priceMinor 6000 with the SERVICE token; then '
    "promotionReward and promotionRewardAccept."
)
