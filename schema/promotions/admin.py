"""Promotion rewards, admin and service side: inputs, payloads and the admin's types."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from app.models.promotions import PromotionRegion, PromotionUser, PromotionUserStatus
from app.services.promotions.codes import PreOfferOutcome, PreOfferRejection
from app.services.promotions.pre_offers import RowOutcome
from app.services.promotions.reading import Funnel
from schema.base import Money
from schema.context import Context
from schema.promotions.errors import PromotionAdminError
from schema.promotions.loaders import RidesByRunIdLoader
from schema.promotions.types import PromotionNode, PromotionRideEntry

MONEY_IN_MINOR = "Minor units (cents) of the promotion's currency."


@strawberry.input(description="The loan offer a promotion gives.")
class PromotionRewardInput:
    product_id: int = strawberry.field(description="The loan product's id.")
    amount_minor: int = strawberry.field(description=f"The default loan amount. {MONEY_IN_MINOR}")
    repayment_rate: str = strawberry.field(description="A decimal percent, e.g. `15`.")


@strawberry.input(description="A new promotion.")
class PromotionCreateInput:
    key: str = strawberry.field(description="A stable key: 1-64 of a-z, 0-9, '-' and '_'.")
    title: str = strawberry.field(description="The display title, 1-200 characters.")
    target_rides: int = strawberry.field(description="Rides the challenge asks for (1-1000).")
    min_ride_amount_minor: int = strawberry.field(
        description=f"The least a ride must cost to count. {MONEY_IN_MINOR}"
    )
    currency: str = strawberry.field(description="ISO 4217: of the rides and the reward.")
    reward: PromotionRewardInput = strawberry.field(description="What completing it gives.")
    challenge_days: int = strawberry.field(default=14, description="The challenge window.")
    claim_days: int = strawberry.field(default=7, description="The reward's claim window.")
    conditions: JSON | None = strawberry.field(
        default=None, description="Other conditions, kept as given (at most 4 KiB of JSON)."
    )
    active: bool = strawberry.field(default=True, description="Whether it can be started.")


@strawberry.input(description="Changes to a promotion; null fields stay as they are.")
class PromotionUpdateInput:
    id: strawberry.ID = strawberry.field(description="The Promotion's global id.")
    title: str | None = None
    target_rides: int | None = None
    min_ride_amount_minor: int | None = None
    currency: str | None = None
    reward: PromotionRewardInput | None = None
    challenge_days: int | None = None
    claim_days: int | None = None
    conditions: JSON | None = None
    active: bool | None = None


@strawberry.type(description="The result of `promotionCreate` and `promotionUpdate`.")
class PromotionPayload:
    promotion: PromotionNode | None = strawberry.field(
        default=None, description="The promotion; null when refused."
    )
    errors: list[PromotionAdminError] = strawberry.field(description="Why not; empty if done.")


@strawberry.input(description="Whether promotions run in a country or region.")
class PromotionRegionSetInput:
    region: str = strawberry.field(description="A country (MX) or a subdivision (MX-CMX).")
    enabled: bool = strawberry.field(description="Off: no new splits and no new starts there.")


@strawberry.type(description="The geo config of one region.")
class PromotionRegionConfig:
    region: str
    promotions_enabled: bool
    updated_by: str
    updated_at: datetime

    @classmethod
    def from_model(cls, row: PromotionRegion) -> PromotionRegionConfig:
        return cls(
            region=row.region,
            promotions_enabled=row.promotions_enabled,
            updated_by=row.updated_by,
            updated_at=row.updated_at,
        )


@strawberry.type(description="The result of `promotionRegionSet`.")
class PromotionRegionSetPayload:
    region: PromotionRegionConfig | None = strawberry.field(default=None)
    errors: list[PromotionAdminError] = strawberry.field(description="Why not; empty if set.")


@strawberry.input(description="One pre-offer from scoring.")
class PreOfferInput:
    user_id: str = strawberry.field(description="The user's id (a UUID).")
    promotion_key: str = strawberry.field(description="The promotion's key.")
    region: str = strawberry.field(description="The user's country or region (MX, MX-CMX).")
    amount_minor: int | None = strawberry.field(
        default=None, description="The offer's amount; null: the promotion's."
    )
    currency: str | None = strawberry.field(default=None, description="Null: the promotion's.")
    repayment_rate: str | None = strawberry.field(
        default=None, description="A decimal percent; null: the promotion's."
    )


@strawberry.input(description="Pre-offers to import (at most 1000).")
class PreOffersImportInput:
    rows: list[PreOfferInput]


@strawberry.type(description="What one import row did.")
class PreOfferImportRow:
    index: int = strawberry.field(description="The row's position in the input, from 0.")
    outcome: PreOfferOutcome
    pre_offer_id: strawberry.ID | None = strawberry.field(description="The stored pre-offer.")
    reason: PreOfferRejection | None = strawberry.field(description="Why it was refused.")
    field: str | None = strawberry.field(description="The row's field at fault.")
    message: str | None

    @classmethod
    def from_outcome(cls, row: RowOutcome) -> PreOfferImportRow:
        return cls(
            index=row.index,
            outcome=row.outcome,
            pre_offer_id=strawberry.ID(str(row.pre_offer_id)) if row.pre_offer_id else None,
            reason=row.reason,
            field=row.field,
            message=row.message,
        )


@strawberry.type(description="The result of `promotionPreOffersImport`.")
class PreOffersImportPayload:
    rows: list[PreOfferImportRow] = strawberry.field(description="An outcome per input row.")
    created: int = strawberry.field(description="Rows stored by this call.")
    errors: list[PromotionAdminError] = strawberry.field(
        description="Why the whole import was refused (e.g. TOO_MANY_ROWS); empty if not."
    )


@strawberry.type(description="A promotion's funnel.")
class PromotionFunnel:
    splits: int = strawberry.field(description="Users assigned to the landing.")
    started: int
    completed: int = strawberry.field(description="Runs that reached the target, ever.")
    rewarded: int
    expired: int
    reward_expired: int
    median_seconds_to_complete: float | None = strawberry.field(
        description="From start to completion, over completed runs."
    )

    @classmethod
    def from_funnel(cls, funnel: Funnel) -> PromotionFunnel:
        return cls(**funnel.__dict__)


@strawberry.type(description="A user's run at a promotion, for support.")
class PromotionRun:
    promotion_id: strawberry.ID
    status: PromotionUserStatus
    progress: int
    target_rides: int
    min_ride_amount: Money
    reward: JSON
    started_at: datetime
    challenge_ends_at: datetime
    completed_at: datetime | None
    claim_ends_at: datetime | None
    rewarded_at: datetime | None
    expired_at: datetime | None
    run_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The rides offered to the run, newest first (at most 100).")
    async def rides(self, info: Info[Context, Any]) -> list[PromotionRideEntry]:
        rides = await info.context.loaders[RidesByRunIdLoader].load(self.run_id)
        return [PromotionRideEntry.from_model(ride) for ride in rides[:100]]

    @classmethod
    def from_model(cls, run: PromotionUser, promotion_gid: str) -> PromotionRun:
        return cls(
            promotion_id=strawberry.ID(promotion_gid),
            status=run.status,
            progress=run.progress,
            target_rides=run.target_rides,
            min_ride_amount=Money(amount_minor=run.min_ride_amount_minor, currency=run.currency),
            reward=JSON(run.reward),
            started_at=run.started_at,
            challenge_ends_at=run.challenge_ends_at,
            completed_at=run.completed_at,
            claim_ends_at=run.claim_ends_at,
            rewarded_at=run.rewarded_at,
            expired_at=run.expired_at,
            run_id=run.id,
        )
