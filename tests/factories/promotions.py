"""Promotions test data: promotions, regions, pre-offers, runs (plain async factories).

Every factory goes through the domain's own services, so the data is what production makes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.models.base import utcnow
from app.models.promotions import PreOffer, Promotion, PromotionUser
from app.runtime import Runtime
from app.services.promotions import catalog, rewards, runs
from app.services.promotions.pre_offers import PreOfferRow, import_pre_offers
from tests.factories.goals import process_users
from tests.factories.orders import order, record

REGION = "MX"


async def create_promotion(runtime: Runtime, key: str | None = None, **fields: Any) -> Promotion:
    data: dict[str, Any] = {
        "key": key or f"newcomer-{uuid.uuid4().hex[:8]}",
        "title": "Take 3 rides, get a loan",
        "target_rides": 3,
        "min_ride_amount_minor": 10_000,
        "currency": "MXN",
        "reward_product_id": 80,
        "reward_amount_minor": 100_000,
        "reward_repayment_rate": "15",
    } | fields
    async with runtime.session_factory() as session, session.begin():
        return await catalog.create_promotion(session, catalog.PromotionInput(**data), actor="test")


async def set_region(runtime: Runtime, region: str = REGION, enabled: bool = True) -> None:
    async with runtime.session_factory() as session, session.begin():
        await catalog.set_region(session, region, enabled, actor="test")


async def pre_offer(
    runtime: Runtime, user_id: uuid.UUID, promotion: Promotion, region: str = REGION, **terms: Any
) -> PreOffer:
    async with runtime.session_factory() as session, session.begin():
        [outcome] = await import_pre_offers(
            session,
            [PreOfferRow(str(user_id), promotion.key, region, **terms)],
            actor="test",
        )
    assert outcome.pre_offer_id is not None, outcome
    async with runtime.session_factory() as session:
        found = await session.get(PreOffer, outcome.pre_offer_id)
    assert found is not None
    return found


async def start(
    runtime: Runtime, user_id: uuid.UUID, promotion: Promotion, *, now: datetime | None = None
) -> PromotionUser:
    async with runtime.session_factory() as session, session.begin():
        return await runs.start(session, user_id, promotion.id, now=now or utcnow())


async def started(runtime: Runtime, user_id: uuid.UUID, **fields: Any) -> Promotion:
    """A promotion the user has a pre-offer for (region on) and has started."""
    promotion = await create_promotion(runtime, **fields)
    await set_region(runtime)
    await pre_offer(runtime, user_id, promotion)
    await start(runtime, user_id, promotion)
    return promotion


async def ride(
    runtime: Runtime, user_id: uuid.UUID, *, price_minor: int = 20_000, **fields: Any
) -> str:
    """A complete ride in MXN, recorded and processed (goals and promotions alike)."""
    data = order(user_id, price_minor=price_minor, currency="MXN", **fields)
    await record(runtime, data)
    await process_users(runtime, [user_id])
    return data.order_id


async def completed(runtime: Runtime, user_id: uuid.UUID, **fields: Any) -> Promotion:
    """A promotion the user has completed (its target in rides)."""
    promotion = await started(runtime, user_id, **fields)
    for _ in range(promotion.target_rides):
        await ride(runtime, user_id)
    assert (await run_of(runtime, user_id, promotion)).status == "COMPLETED"
    return promotion


async def run_of(runtime: Runtime, user_id: uuid.UUID, promotion: Promotion) -> PromotionUser:
    async with runtime.session_factory() as session:
        found = await session.scalar(
            select(PromotionUser).where(
                PromotionUser.user_id == user_id, PromotionUser.promotion_id == promotion.id
            )
        )
    assert found is not None
    return found


async def accept(runtime: Runtime, user_id: uuid.UUID, promotion: Promotion) -> rewards.Accepted:
    async with runtime.session_factory() as session, session.begin():
        return await rewards.accept(session, user_id, promotion.id, now=utcnow())
