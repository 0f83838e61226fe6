"""Promotion rewards, admin and service side: promotions, the geo config, pre-offer imports,
a user's history and a promotion's funnel. ADMIN only, except the import (ADMIN or SERVICE:
scoring pushes pre-offers)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.identity import Role
from app.services.errors import DomainError
from app.services.promotions import catalog, reading
from app.services.promotions.codes import PreOfferOutcome, PromotionAdminErrorCode
from app.services.promotions.pre_offers import PreOfferRow, import_pre_offers
from schema.context import Context
from schema.errors import payload_errors
from schema.ids import node_uuid
from schema.permissions import require
from schema.promotions.admin import (
    PreOfferImportRow,
    PreOffersImportInput,
    PreOffersImportPayload,
    PromotionCreateInput,
    PromotionFunnel,
    PromotionPayload,
    PromotionRegionConfig,
    PromotionRegionSetInput,
    PromotionRegionSetPayload,
    PromotionRun,
    PromotionUpdateInput,
)
from schema.promotions.errors import PromotionAdminError
from schema.promotions.types import PromotionNode

InfoT = Info[Context, Any]
Code = PromotionAdminErrorCode


def _input(data: PromotionCreateInput) -> catalog.PromotionInput:
    return catalog.PromotionInput(
        key=data.key,
        title=data.title,
        target_rides=data.target_rides,
        min_ride_amount_minor=data.min_ride_amount_minor,
        currency=data.currency,
        reward_product_id=data.reward.product_id,
        reward_amount_minor=data.reward.amount_minor,
        reward_repayment_rate=data.reward.repayment_rate,
        challenge_days=data.challenge_days,
        claim_days=data.claim_days,
        conditions=_conditions(data.conditions),
        active=data.active,
    )


def _conditions(value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise DomainError(Code.INVALID_CONDITIONS, "Give an object.", "conditions")
    return value


def _changes(data: PromotionUpdateInput) -> catalog.PromotionChanges:
    reward = data.reward
    return catalog.PromotionChanges(
        title=data.title,
        target_rides=data.target_rides,
        min_ride_amount_minor=data.min_ride_amount_minor,
        currency=data.currency,
        reward_product_id=reward.product_id if reward else None,
        reward_amount_minor=reward.amount_minor if reward else None,
        reward_repayment_rate=reward.repayment_rate if reward else None,
        challenge_days=data.challenge_days,
        claim_days=data.claim_days,
        conditions=_conditions(data.conditions),
        active=data.active,
    )


async def _create(info: InfoT, data: PromotionCreateInput) -> PromotionPayload:
    principal = await require(info, Role.ADMIN)
    try:
        promotion = await catalog.create_promotion(
            info.context.session, _input(data), actor=principal.key
        )
    except DomainError as exc:
        return PromotionPayload(errors=payload_errors(PromotionAdminError, exc))
    return PromotionPayload(promotion=PromotionNode.from_model(promotion), errors=[])


async def _update(info: InfoT, data: PromotionUpdateInput) -> PromotionPayload:
    principal = await require(info, Role.ADMIN)
    try:
        promotion_id = node_uuid(data.id, "Promotion", "id", Code.NOT_FOUND)
        promotion = await catalog.update_promotion(
            info.context.session, promotion_id, _changes(data), actor=principal.key
        )
    except DomainError as exc:
        return PromotionPayload(errors=payload_errors(PromotionAdminError, exc))
    return PromotionPayload(promotion=PromotionNode.from_model(promotion), errors=[])


async def _region_set(info: InfoT, data: PromotionRegionSetInput) -> PromotionRegionSetPayload:
    principal = await require(info, Role.ADMIN)
    try:
        row = await catalog.set_region(
            info.context.session, data.region, data.enabled, actor=principal.key
        )
    except DomainError as exc:
        return PromotionRegionSetPayload(errors=payload_errors(PromotionAdminError, exc))
    return PromotionRegionSetPayload(region=PromotionRegionConfig.from_model(row), errors=[])


async def _import(info: InfoT, data: PreOffersImportInput) -> PreOffersImportPayload:
    principal = await require(info, Role.ADMIN, Role.SERVICE)
    rows = [
        PreOfferRow(
            user_id=row.user_id,
            promotion_key=row.promotion_key,
            region=row.region,
            amount_minor=row.amount_minor,
            currency=row.currency,
            repayment_rate=row.repayment_rate,
        )
        for row in data.rows
    ]
    try:
        outcomes = await import_pre_offers(info.context.session, rows, actor=principal.key)
    except DomainError as exc:
        return PreOffersImportPayload(
            rows=[], created=0, errors=payload_errors(PromotionAdminError, exc)
        )
    return PreOffersImportPayload(
        rows=[PreOfferImportRow.from_outcome(row) for row in outcomes],
        created=sum(1 for row in outcomes if row.outcome is PreOfferOutcome.CREATED),
        errors=[],
    )


@strawberry.type
class PromotionAdminQuery:
    @strawberry.field(description="Every promotion, oldest first (admin).")
    async def promotions(self, info: InfoT) -> list[PromotionNode]:
        await require(info, Role.ADMIN)
        found = await catalog.list_promotions(info.context.session)
        return [PromotionNode.from_model(promotion) for promotion in found]

    @strawberry.field(description="The geo config: every region with a flag (admin).")
    async def promotion_regions(self, info: InfoT) -> list[PromotionRegionConfig]:
        await require(info, Role.ADMIN)
        found = await catalog.list_regions(info.context.session)
        return [PromotionRegionConfig.from_model(row) for row in found]

    @strawberry.field(description="A promotion's funnel; null for an unknown id (admin).")
    async def promotion_funnel(
        self, info: InfoT, promotion_id: strawberry.ID
    ) -> PromotionFunnel | None:
        await require(info, Role.ADMIN)
        try:
            found = node_uuid(promotion_id, "Promotion", "promotionId", Code.NOT_FOUND)
        except DomainError:
            return None
        if not (await catalog.promotions_by_ids(info.context.session, [found])):
            return None
        return PromotionFunnel.from_funnel(await reading.funnel(info.context.session, found))

    @strawberry.field(description="A user's promotion runs, newest first, with rides (admin).")
    async def user_promotions(self, info: InfoT, user_id: strawberry.ID) -> list[PromotionRun]:
        await require(info, Role.ADMIN)
        try:
            found = node_uuid(user_id, "User", "userId", Code.INVALID_USER)
        except DomainError:
            return []
        runs = await reading.runs_of(info.context.session, found)
        return [
            PromotionRun.from_model(run, relay.to_base64("Promotion", str(run.promotion_id)))
            for run in runs
        ]


@strawberry.type
class PromotionAdminMutation:
    @strawberry.mutation(description="Create a promotion (admin).")
    async def promotion_create(self, info: InfoT, input: PromotionCreateInput) -> PromotionPayload:
        return await _create(info, input)

    @strawberry.mutation(
        description="Edit a promotion (admin); runs already started keep their terms."
    )
    async def promotion_update(self, info: InfoT, input: PromotionUpdateInput) -> PromotionPayload:
        return await _update(info, input)

    @strawberry.mutation(description="Turn promotions on or off in a region (admin).")
    async def promotion_region_set(
        self, info: InfoT, input: PromotionRegionSetInput
    ) -> PromotionRegionSetPayload:
        return await _region_set(info, input)

    @strawberry.mutation(
        description=(
            "Import scoring's newcomer pre-offers (admin or service): an outcome per row; a "
            "re-import changes nothing."
        )
    )
    async def promotion_pre_offers_import(
        self, info: InfoT, input: PreOffersImportInput
    ) -> PreOffersImportPayload:
        return await _import(info, input)
