"""Promotion rewards, client side: the viewer's promotion, the launch badge, starting,
the reward's terms and accepting it. Everything is the caller's own: a user acts only on
the promotion of their own pre-offer (another's id is NOT_FOUND / NO_PRE_OFFER, never
revealed)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import strawberry
from strawberry.types import Info

from app.models.base import utcnow
from app.models.identity import Role
from app.services.errors import DomainError
from app.services.promotions import rewards, runs
from app.services.promotions.codes import PromotionErrorCode
from schema.context import Context
from schema.errors import payload_errors
from schema.ids import node_uuid
from schema.permissions import require
from schema.promotions.errors import PromotionError
from schema.promotions.inputs import (
    PromotionInput,
    PromotionRewardAcceptPayload,
    PromotionRewardPayload,
    PromotionStartPayload,
)
from schema.promotions.types import (
    PromotionBadge,
    PromotionLoanApplication,
    PromotionReward,
    ViewerPromotion,
    badge_of,
)

InfoT = Info[Context, Any]


async def _user(info: InfoT) -> uuid.UUID:
    principal = await require(info, Role.USER)
    assert principal.user_id is not None
    return principal.user_id


def _promotion_id(data: PromotionInput) -> uuid.UUID:
    return node_uuid(data.promotion_id, "Promotion", "promotionId", PromotionErrorCode.NOT_FOUND)


def _grace(info: InfoT) -> timedelta:
    return timedelta(seconds=info.context.settings.promotions_expiry_grace_seconds)


async def viewer_promotion(info: InfoT) -> ViewerPromotion | None:
    user_id = await _user(info)
    found = await runs.open_landing(info.context.session, user_id, now=utcnow(), grace=_grace(info))
    return None if found is None else ViewerPromotion.from_current(found, user_id)


async def launch_badge(info: InfoT) -> PromotionBadge | None:
    principal = await info.context.principal()
    if principal.user_id is None or not principal.has_role(Role.USER):
        return None
    return badge_of(await runs.current(info.context.session, principal.user_id, now=utcnow()))


async def _start(info: InfoT, data: PromotionInput) -> PromotionStartPayload:
    user_id = await _user(info)
    session, now = info.context.session, utcnow()
    try:
        promotion_id = _promotion_id(data)
        await runs.start(session, user_id, promotion_id, now=now)
    except DomainError as exc:
        return PromotionStartPayload(errors=payload_errors(PromotionError, exc))
    found = next(c for c in await runs.offers(session, user_id, now=now) if c.run_id)
    return PromotionStartPayload(promotion=ViewerPromotion.from_current(found, user_id), errors=[])


async def _reward(info: InfoT, data: PromotionInput) -> PromotionRewardPayload:
    user_id = await _user(info)
    try:
        reward = await rewards.reward_terms(
            info.context.session, user_id, _promotion_id(data), now=utcnow()
        )
    except DomainError as exc:
        return PromotionRewardPayload(errors=payload_errors(PromotionError, exc))
    return PromotionRewardPayload(reward=PromotionReward.from_reward(reward), errors=[])


async def _accept(info: InfoT, data: PromotionInput) -> PromotionRewardAcceptPayload:
    user_id = await _user(info)
    try:
        accepted = await rewards.accept(
            info.context.session, user_id, _promotion_id(data), now=utcnow()
        )
    except DomainError as exc:
        return PromotionRewardAcceptPayload(errors=payload_errors(PromotionError, exc))
    return PromotionRewardAcceptPayload(
        application=PromotionLoanApplication.from_accepted(accepted), errors=[]
    )


@strawberry.type
class PromotionMutation:
    @strawberry.mutation(
        description=(
            '"Get started": begin the challenge of the caller\'s pre-offer for the promotion.'
        )
    )
    async def promotion_start(self, info: InfoT, input: PromotionInput) -> PromotionStartPayload:
        return await _start(info, input)

    @strawberry.mutation(
        description=(
            "The terms of the loan offer the caller's completed challenge earned (the seed's "
            "/get_reward; changes nothing). Refusals are typed: CHALLENGE_OVER, "
            "REWARD_EXPIRED, NOT_COMPLETED, NOT_STARTED."
        )
    )
    async def promotion_reward(self, info: InfoT, input: PromotionInput) -> PromotionRewardPayload:
        return await _reward(info, input)

    @strawberry.mutation(
        description=(
            "Accept the reward of a completed challenge: in one transaction the split (created "
            "if missing) is used, the active pre-offer, the loan application and the "
            "origination session are created and the run becomes REWARDED. Idempotent: a "
            "retry or a concurrent second call returns the same application."
        )
    )
    async def promotion_reward_accept(
        self, info: InfoT, input: PromotionInput
    ) -> PromotionRewardAcceptPayload:
        return await _accept(info, input)
