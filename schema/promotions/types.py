"""Promotion rewards, client side: the Promotion node, the viewer's promotion, rides, reward
terms and the loan application; `admin.py` holds the admin's types."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.models.promotions import (
    LoanApplication,
    Promotion,
    PromotionNotification,
    PromotionNotificationKind,
    PromotionRide,
    PromotionUserStatus,
    RideReason,
)
from app.services.promotions import reading
from app.services.promotions.codes import IneligibleReason
from app.services.promotions.rewards import Accepted, Reward
from app.services.promotions.runs import Current
from schema.base import Money
from schema.context import Context
from schema.permissions import visible_nodes
from schema.promotions.loaders import PromotionByIdLoader, RidesByRunIdLoader

strawberry.enum(
    PromotionNotificationKind,
    name="PromotionNotificationKind",
    description=(
        "CHALLENGE_ENDING: the challenge window closes soon and rides are still missing. "
        "CLAIM_ENDING: the reward can be claimed only a little longer."
    ),
)


@strawberry.enum(
    name="PromotionBadge",
    description=(
        "What the app shows on its promotion entry point. AVAILABLE: the user may start one. "
        "IN_PROGRESS: a challenge is running. REWARD_READY: the reward waits to be claimed."
    ),
)
class PromotionBadge(enum.Enum):
    AVAILABLE = "AVAILABLE"
    IN_PROGRESS = "IN_PROGRESS"
    REWARD_READY = "REWARD_READY"


@strawberry.type(description="The loan offer a promotion's reward template gives.")
class PromotionRewardTemplate:
    product_id: int = strawberry.field(description="The loan product.")
    amount: Money = strawberry.field(description="The loan amount (a pre-offer may set its own).")
    repayment_rate: str = strawberry.field(description="The repayment rate, a decimal percent.")


@strawberry.type(
    name="Promotion",
    description="A newcomer challenge: so many rides in so many days earns a loan offer.",
)
class PromotionNode(relay.Node):
    id: relay.NodeID[str]
    key: str = strawberry.field(description="The promotion's stable key, e.g. `newcomer-mx`.")
    title: str = strawberry.field(description="The display title.")
    target_rides: int = strawberry.field(description="Rides the challenge asks for.")
    min_ride_amount: Money = strawberry.field(description="The least a ride must cost to count.")
    challenge_days: int = strawberry.field(description="Days from the start to do the rides.")
    claim_days: int = strawberry.field(description="Days from completion to claim the reward.")
    conditions: JSON = strawberry.field(description="Other conditions, as configured.")
    reward: PromotionRewardTemplate = strawberry.field(description="What completing it gives.")
    active: bool = strawberry.field(description="Whether it can be started now.")

    @classmethod
    def from_model(cls, promotion: Promotion) -> PromotionNode:
        return cls(
            id=str(promotion.id),
            key=promotion.key,
            title=promotion.title,
            target_rides=promotion.target_rides,
            min_ride_amount=Money(
                amount_minor=promotion.min_ride_amount_minor, currency=promotion.currency
            ),
            challenge_days=promotion.challenge_days,
            claim_days=promotion.claim_days,
            conditions=JSON(promotion.conditions),
            reward=PromotionRewardTemplate(
                product_id=promotion.reward_product_id,
                amount=Money(
                    amount_minor=promotion.reward_amount_minor, currency=promotion.currency
                ),
                repayment_rate=promotion.reward_repayment_rate,
            ),
            active=promotion.active,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[PromotionNode | None]:
        """Admins refetch any promotion; users see theirs through `viewer.promotion`."""
        return await visible_nodes(info, PromotionByIdLoader, node_ids, cls.from_model)


@strawberry.type(description="Progress towards a target.")
class PromotionProgress:
    current: int = strawberry.field(description="Rides counted so far.")
    total: int = strawberry.field(description="Rides the challenge asks for.")


@strawberry.type(description="A ride offered to the user's promotion: did it count, and why not.")
class PromotionRideEntry:
    order_id: str = strawberry.field(description="The ordering service's id of the ride.")
    counted: bool = strawberry.field(description="Whether it counted (and was not reversed).")
    reason: RideReason = strawberry.field(description="Why it counted or not.")
    amount: Money = strawberry.field(description="What the ride cost.")
    ride_at: datetime | None = strawberry.field(description="When the ride was completed.")
    reversed_at: datetime | None = strawberry.field(
        description="When a cancellation or refund took its count back."
    )
    recorded_at: datetime = strawberry.field(description="When the promotion first saw it.")

    @classmethod
    def from_model(cls, ride: PromotionRide) -> PromotionRideEntry:
        return cls(
            order_id=ride.order_id,
            counted=ride.counted and ride.reversed_at is None,
            reason=ride.reason,
            amount=Money(amount_minor=ride.amount_minor, currency=ride.currency),
            ride_at=ride.ride_at,
            reversed_at=ride.reversed_at,
            recorded_at=ride.created_at,
        )


@strawberry.type(description="An in-app reminder about the user's promotion.")
class PromotionNotificationEntry:
    kind: PromotionNotificationKind = strawberry.field(description="What it reminds of.")
    deadline: datetime = strawberry.field(description="The deadline it is about.")
    created_at: datetime = strawberry.field(description="When it was written.")

    @classmethod
    def from_model(cls, notification: PromotionNotification) -> PromotionNotificationEntry:
        return cls(
            kind=notification.kind,
            deadline=notification.deadline,
            created_at=notification.created_at,
        )


@strawberry.type(description="The signed-in user's promotion, as of the read.")
class ViewerPromotion:
    eligible: bool = strawberry.field(
        description="Whether the user may take part (start it, or has started it)."
    )
    ineligible_reason: IneligibleReason | None = strawberry.field(
        description="Why not, when not eligible."
    )
    status: PromotionUserStatus | None = strawberry.field(
        description="The user's run; null before `promotionStart`."
    )
    challenge_ends_at: datetime | None = strawberry.field(
        description="The rides must be completed before this instant (null before the start)."
    )
    claim_ends_at: datetime | None = strawberry.field(
        description="The reward can be accepted until this instant (set once COMPLETED)."
    )
    can_start: bool = strawberry.field(description="Whether `promotionStart` would succeed.")
    promotion_id: strawberry.Private[str]
    run_id: strawberry.Private[Any]
    user_id: strawberry.Private[Any]
    counted: strawberry.Private[int]
    run_target: strawberry.Private[int | None]

    @strawberry.field(description="The promotion.")
    async def promotion(self, info: Info[Context, Any]) -> PromotionNode:
        return PromotionNode.from_model(await self._promotion(info))

    async def _promotion(self, info: Info[Context, Any]) -> Promotion:
        found = await info.context.loaders[PromotionByIdLoader].load(self.promotion_id)
        assert found is not None
        return found

    @strawberry.field(description="Rides counted of the target (the run's, fixed at its start).")
    async def progress(self, info: Info[Context, Any]) -> PromotionProgress:
        total = self.run_target
        if total is None:
            total = (await self._promotion(info)).target_rides
        return PromotionProgress(current=self.counted, total=total)

    @strawberry.field(description="The user's promotion reminders, newest first (at most 100).")
    async def notifications(self, info: Info[Context, Any]) -> list[PromotionNotificationEntry]:
        found = await reading.notifications_of(info.context.session, self.user_id)
        return [PromotionNotificationEntry.from_model(n) for n in found]

    @strawberry.field(description="The rides offered to the run, newest first (at most 100).")
    async def rides(self, info: Info[Context, Any]) -> list[PromotionRideEntry]:
        if self.run_id is None:
            return []
        rides = await info.context.loaders[RidesByRunIdLoader].load(self.run_id)
        return [PromotionRideEntry.from_model(ride) for ride in rides[:100]]

    @classmethod
    def from_current(cls, found: Current, user_id: Any) -> ViewerPromotion:
        return cls(
            eligible=found.eligible,
            ineligible_reason=found.ineligible,
            status=found.status,
            challenge_ends_at=found.challenge_ends_at,
            claim_ends_at=found.claim_ends_at,
            can_start=found.eligible and found.run_id is None,
            promotion_id=str(found.promotion_id),
            run_id=found.run_id,
            user_id=user_id,
            counted=found.progress,
            run_target=found.target_rides,
        )


def badge_of(found: Current | None) -> PromotionBadge | None:
    if found is None:
        return None
    if found.status is PromotionUserStatus.STARTED:
        return PromotionBadge.IN_PROGRESS
    if found.status is PromotionUserStatus.COMPLETED:
        return PromotionBadge.REWARD_READY
    if found.status is None and found.eligible:
        return PromotionBadge.AVAILABLE
    return None


@strawberry.type(description="The loan offer a completed challenge earned.")
class PromotionReward:
    product_id: int = strawberry.field(description="The loan product.")
    amount: Money = strawberry.field(description="The loan amount.")
    repayment_rate: str = strawberry.field(description="The repayment rate, a decimal percent.")
    claim_ends_at: datetime | None = strawberry.field(
        description="The reward can be accepted until this instant."
    )

    @classmethod
    def from_reward(cls, reward: Reward) -> PromotionReward:
        return cls(
            product_id=reward.product_id,
            amount=Money(amount_minor=reward.amount_minor, currency=reward.currency),
            repayment_rate=reward.repayment_rate,
            claim_ends_at=reward.claim_ends_at,
        )


@strawberry.type(description="The loan application an accepted reward became.")
class PromotionLoanApplication:
    id: strawberry.ID = strawberry.field(description="The application's id.")
    product_id: int = strawberry.field(description="The loan product.")
    amount: Money = strawberry.field(description="The loan amount.")
    repayment_rate: str = strawberry.field(description="The repayment rate, a decimal percent.")
    created_at: datetime = strawberry.field(description="When the reward was accepted.")

    @classmethod
    def from_accepted(cls, accepted: Accepted | LoanApplication) -> PromotionLoanApplication:
        application_id = accepted.application_id if isinstance(accepted, Accepted) else accepted.id
        return cls(
            id=strawberry.ID(str(application_id)),
            product_id=accepted.product_id,
            amount=Money(amount_minor=accepted.amount_minor, currency=accepted.currency),
            repayment_rate=accepted.repayment_rate,
            created_at=accepted.created_at,
        )
