"""Promocode resolvers, client and service side: plans, the viewer's codes and purchases,
quotes, purchases and the payment result.

Admin management of codes lives elsewhere; nothing here reveals a code that isn't the
caller's (a rejection shows its client code, the attempt log keeps the true reason).
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.identity import Role
from app.services.errors import DomainError
from app.services.promocodes import purchases as purchase_service
from app.services.promocodes import reading
from app.services.promocodes.attempts import (
    Caller,
    PromocodeRejected,
    RejectionLimits,
    SignedInUser,
)
from app.services.promocodes.errors import PurchaseErrorCode
from schema.base import Money, offset_connection, offset_page
from schema.context import Context
from schema.errors import payload_errors
from schema.ids import node_uuid
from schema.permissions import require
from schema.promocodes.errors import PurchaseError
from schema.promocodes.inputs import (
    PromocodeQuoteInput,
    PromocodeQuotePayload,
    PurchaseConfirmInput,
    PurchaseConfirmPayload,
    PurchaseCreateInput,
    PurchaseCreatePayload,
    PurchaseFailInput,
    PurchaseFailPayload,
)
from schema.promocodes.types import PlanNode, PromocodeOffer, PromocodeQuote, PurchaseNode

InfoT = Info[Context, Any]


def purchase_errors(exc: DomainError) -> list[PurchaseError]:
    """A refusal as payload errors; a rejected code already carries its client code."""
    retry_after = exc.retry_after if isinstance(exc, PromocodeRejected) else None
    return payload_errors(PurchaseError, exc, retry_after=retry_after)


async def _signed_in_user(info: InfoT) -> SignedInUser:
    """The calling user (USER role) as the principal knows them: no row is read again (the
    principal's lookup refused every account that isn't ACTIVE)."""
    principal = await require(info, Role.USER)
    assert principal.user_id is not None  # USER principals are users
    return SignedInUser(principal.user_id)


async def _caller(info: InfoT) -> Caller:
    return Caller(await _signed_in_user(info), info.context.client_ip)


def _limits(info: InfoT) -> RejectionLimits:
    return RejectionLimits(info.context.runtime.limiter, info.context.settings)


# ---- queries --------------------------------------------------------------------------------


@strawberry.type
class PromocodeQuery:
    @strawberry.field(description="The plans on sale, cheapest first. Open to anyone.")
    async def plans(self, info: InfoT) -> list[PlanNode]:
        plans = await reading.plans_on_sale(info.context.session)
        return [PlanNode.from_model(plan) for plan in plans]


# ---- the viewer's fields (mounted by resolvers/promocodes/viewer.py) -----------------------


async def viewer_promocodes(info: InfoT) -> list[PromocodeOffer]:
    user = await _signed_in_user(info)
    found = await purchase_service.available_promocodes(info.context.session, user.id)
    return [PromocodeOffer.from_model(promocode) for promocode in found]


async def viewer_purchases(
    info: InfoT, first: int | None, after: str | None
) -> relay.Connection[PurchaseNode]:
    principal = await require(info, Role.USER)
    assert principal.user_id is not None  # USER principals are users
    page = offset_page(first, after, info.context.settings.max_page_size)
    found = await reading.purchases_page(info.context.session, principal.user_id, page)
    nodes = [PurchaseNode.from_model(purchase) for purchase in found.rows]
    return offset_connection(relay.Connection[PurchaseNode], nodes, page, found.has_next)


# ---- client mutations -----------------------------------------------------------------------


def _quote(quote: purchase_service.Quote) -> PromocodeQuote:
    def money(amount_minor: int) -> Money:
        return Money(amount_minor=amount_minor, currency=quote.currency)

    return PromocodeQuote(
        plan=PlanNode.from_model(quote.plan),
        list_price=money(quote.list_price_minor),
        final_price=money(quote.final_price_minor),
        discount=money(quote.list_price_minor - quote.final_price_minor),
        trial_days=quote.trial_days,
        discounted_cycles=quote.discounted_cycles,
    )


async def _promocode_quote(info: InfoT, data: PromocodeQuoteInput) -> PromocodeQuotePayload:
    caller = await _caller(info)
    try:
        plan_id = node_uuid(data.plan_id, "Plan", "planId", PurchaseErrorCode.UNKNOWN_PLAN)
        quote = await purchase_service.quote(
            info.context.session, caller, plan_id=plan_id, code=data.code, limits=_limits(info)
        )
    except DomainError as exc:
        return PromocodeQuotePayload(errors=purchase_errors(exc))
    return PromocodeQuotePayload(quote=_quote(quote), errors=[])


async def _purchase_create(info: InfoT, data: PurchaseCreateInput) -> PurchaseCreatePayload:
    caller = await _caller(info)
    try:
        plan_id = node_uuid(data.plan_id, "Plan", "planId", PurchaseErrorCode.UNKNOWN_PLAN)
        purchase, _ = await purchase_service.create_purchase(
            info.context.session,
            caller,
            plan_id=plan_id,
            code=data.code,
            idempotency_key=data.idempotency_key,
            settings=info.context.settings,
            limits=_limits(info),
        )
    except DomainError as exc:
        return PurchaseCreatePayload(errors=purchase_errors(exc))
    return PurchaseCreatePayload(purchase=PurchaseNode.from_model(purchase), errors=[])


# ---- service mutations (the payment system) -------------------------------------------------


async def _purchase_confirm(info: InfoT, data: PurchaseConfirmInput) -> PurchaseConfirmPayload:
    principal = await require(info, Role.SERVICE)
    try:
        purchase_id = node_uuid(
            data.purchase_id, "Purchase", "purchaseId", PurchaseErrorCode.NOT_FOUND
        )
        purchase = await purchase_service.confirm_purchase(
            info.context.session, purchase_id, actor=principal.key
        )
    except DomainError as exc:
        return PurchaseConfirmPayload(errors=purchase_errors(exc))
    return PurchaseConfirmPayload(purchase=PurchaseNode.from_model(purchase), errors=[])


async def _purchase_fail(info: InfoT, data: PurchaseFailInput) -> PurchaseFailPayload:
    principal = await require(info, Role.SERVICE)
    try:
        purchase_id = node_uuid(
            data.purchase_id, "Purchase", "purchaseId", PurchaseErrorCode.NOT_FOUND
        )
        purchase = await purchase_service.fail_purchase(
            info.context.session, purchase_id, actor=principal.key, reason=data.reason
        )
    except DomainError as exc:
        return PurchaseFailPayload(errors=purchase_errors(exc))
    return PurchaseFailPayload(purchase=PurchaseNode.from_model(purchase), errors=[])


@strawberry.type
class PromocodeMutation:
    @strawberry.mutation(
        description=(
            "Try a promocode on a plan: the price it gives, or why it is refused. A dry run "
            "that reserves nothing; refusals count towards the rate limit."
        )
    )
    async def promocode_quote(
        self, info: InfoT, input: PromocodeQuoteInput
    ) -> PromocodeQuotePayload:
        return await _promocode_quote(info, input)

    @strawberry.mutation(
        description=(
            "Buy a plan, optionally with a promocode: creates a PENDING purchase and reserves "
            "one use of the code until the payment result arrives (or the reservation times "
            "out). Safe to retry with the same `idempotencyKey`."
        )
    )
    async def purchase_create(
        self, info: InfoT, input: PurchaseCreateInput
    ) -> PurchaseCreatePayload:
        return await _purchase_create(info, input)

    @strawberry.mutation(
        description=(
            "The payment succeeded: the purchase becomes CONFIRMED and its promocode use "
            "final. Idempotent (service)."
        )
    )
    async def purchase_confirm(
        self, info: InfoT, input: PurchaseConfirmInput
    ) -> PurchaseConfirmPayload:
        return await _purchase_confirm(info, input)

    @strawberry.mutation(
        description=(
            "The payment failed: the purchase becomes FAILED and its promocode use is released "
            "for reuse. Idempotent (service)."
        )
    )
    async def purchase_fail(self, info: InfoT, input: PurchaseFailInput) -> PurchaseFailPayload:
        return await _purchase_fail(info, input)
