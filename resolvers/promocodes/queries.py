"""Promocode resolvers, client and service side: plans, the viewer's codes and purchases,
quotes, purchases and the payment result.

Admin management of codes lives elsewhere; nothing here reveals a code that isn't the
caller's (a rejection shows the user-facing reason, the attempt log keeps the true one).
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import select
from strawberry import relay
from strawberry.types import Info

from app.models.identity import Role, User
from app.models.promocodes import Plan, Purchase
from app.services.errors import DomainError
from app.services.promocodes import purchases as purchase_service
from app.services.promocodes.attempts import Caller, RejectionLimits
from resolvers.permissions import require
from schema.base import Money, build_connection, paginate
from schema.context import Context
from schema.ids import node_uuid, rows_by_ids
from schema.promocodes.types import (
    PlanNode,
    PromocodeOffer,
    PromocodeQuote,
    PromocodeQuoteInput,
    PromocodeQuotePayload,
    PurchaseConfirmInput,
    PurchaseConfirmPayload,
    PurchaseCreateInput,
    PurchaseCreatePayload,
    PurchaseError,
    PurchaseErrorCode,
    PurchaseFailInput,
    PurchaseFailPayload,
    PurchaseNode,
)

ServiceCode = purchase_service.PurchaseErrorCode
InfoT = Info[Context, Any]


def purchase_errors(exc: DomainError) -> list[PurchaseError]:
    # A PromocodeRejected already carries the user-facing code (anti-enumeration).
    return [
        PurchaseError(
            code=PurchaseErrorCode(exc.code.value),
            field=exc.field,
            message=exc.message,
            retry_after=getattr(exc, "retry_after", None),
        )
    ]


async def _signed_in_user(info: InfoT) -> User:
    """The calling user's row (USER role); resolving the principal already loaded it."""
    principal = await require(info, Role.USER)
    user = await info.context.session.get(User, principal.user_id)
    assert user is not None
    return user


async def _caller(info: InfoT) -> Caller:
    return Caller(await _signed_in_user(info), info.context.client_ip)


def _limits(info: InfoT) -> RejectionLimits:
    return RejectionLimits(info.context.runtime.limiter, info.context.settings)


# ---- loaders behind Node resolution --------------------------------------------------------


async def plans_by_ids(info: InfoT, ids: list[str]) -> list[PlanNode | None]:
    """Plans are public: anyone may refetch one, retired ones included (purchase history)."""
    loaded = await info.context.loaders["plans"].load_many(ids)
    return [PlanNode.from_model(plan) if plan is not None else None for plan in loaded]


async def purchases_by_ids(info: InfoT, ids: list[str]) -> list[PurchaseNode | None]:
    """A user sees their own purchases; admins and services (the payment system) see any."""
    principal = await require(info)
    everyone = principal.has_role(Role.ADMIN) or principal.has_role(Role.SERVICE)
    found = await rows_by_ids(info.context.session, Purchase, ids)
    return [
        PurchaseNode.from_model(row)
        if row is not None and (everyone or row.user_id == principal.user_id)
        else None
        for row in found
    ]


# ---- queries --------------------------------------------------------------------------------


@strawberry.type
class PromocodeQuery:
    @strawberry.field(description="The plans on sale, cheapest first. Open to anyone.")
    async def plans(self, info: InfoT) -> list[PlanNode]:
        rows = await info.context.session.scalars(
            select(Plan).where(Plan.active.is_(True)).order_by(Plan.price_minor, Plan.slug)
        )
        return [PlanNode.from_model(plan) for plan in rows]


# Fields of `Viewer` (schema/users.py) that belong to this domain.


async def viewer_promocodes(info: InfoT) -> list[PromocodeOffer]:
    user = await _signed_in_user(info)
    found = await purchase_service.available_promocodes(info.context.session, user)
    return [PromocodeOffer.from_model(promocode) for promocode in found]


async def viewer_purchases(
    info: InfoT, first: int | None, after: str | None
) -> relay.Connection[PurchaseNode]:
    principal = await require(info, Role.USER)
    assert principal.user_id is not None  # USER principals are users
    rows, start, has_next, has_prev = await paginate(
        info.context.session,
        purchase_service.purchases_of_user(principal.user_id),
        first,
        after,
        info.context.settings.max_page_size,
    )
    nodes = [PurchaseNode.from_model(purchase) for purchase in rows]
    return build_connection(relay.Connection[PurchaseNode], nodes, start, has_next, has_prev)


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
        plan_id = node_uuid(data.plan_id, "Plan", "planId", ServiceCode.UNKNOWN_PLAN)
        quote = await purchase_service.quote(
            info.context.session, caller, plan_id=plan_id, code=data.code, limits=_limits(info)
        )
    except DomainError as exc:
        return PromocodeQuotePayload(errors=purchase_errors(exc))
    return PromocodeQuotePayload(quote=_quote(quote), errors=[])


async def _purchase_create(info: InfoT, data: PurchaseCreateInput) -> PurchaseCreatePayload:
    caller = await _caller(info)
    try:
        plan_id = node_uuid(data.plan_id, "Plan", "planId", ServiceCode.UNKNOWN_PLAN)
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
        purchase_id = node_uuid(data.purchase_id, "Purchase", "purchaseId", ServiceCode.NOT_FOUND)
        purchase = await purchase_service.confirm_purchase(
            info.context.session, purchase_id, actor=principal.key
        )
    except DomainError as exc:
        return PurchaseConfirmPayload(errors=purchase_errors(exc))
    return PurchaseConfirmPayload(purchase=PurchaseNode.from_model(purchase), errors=[])


async def _purchase_fail(info: InfoT, data: PurchaseFailInput) -> PurchaseFailPayload:
    principal = await require(info, Role.SERVICE)
    try:
        purchase_id = node_uuid(data.purchase_id, "Purchase", "purchaseId", ServiceCode.NOT_FOUND)
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
