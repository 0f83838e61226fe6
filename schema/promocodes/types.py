"""Promocodes, client and service surface: the Plan and Purchase nodes, offers and quotes.

Inputs and payloads are in `inputs.py`, the error codes in `errors.py`, the admin's types in
`admin.py` and `admin_inputs.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.identity import Role
from app.models.promocodes import Plan, Promocode, PromocodeKind, Purchase, PurchaseStatus
from app.services.promocodes.reservation import PlanView, PurchaseView
from schema.base import Money
from schema.context import Context
from schema.identity.loaders import UserByIdLoader
from schema.identity.types import UserNode
from schema.permissions import visible_nodes
from schema.promocodes.loaders import (
    PlanByIdLoader,
    PlansByPromocodeIdLoader,
    PromocodeByIdLoader,
    PurchaseByIdLoader,
)

strawberry.enum(
    PromocodeKind,
    name="PromocodeKind",
    description=(
        "What a promocode gives. FIXED_PRICE: the plan for a set price (never above its list "
        "price). FREE: the plan for nothing (a trial). PERCENT: a percentage off, rounded in "
        "the customer's disfavour by less than one minor unit. AMOUNT: a set amount off, never "
        "below zero."
    ),
)
strawberry.enum(
    PurchaseStatus,
    name="PurchaseStatus",
    description=(
        "PENDING: created, waiting for the payment result (a promocode use is reserved for "
        "it). CONFIRMED: paid. FAILED: the payment failed; the promocode use was released."
    ),
)


def _money(amount_minor: int, currency: str) -> Money:
    return Money(amount_minor=amount_minor, currency=currency)


@strawberry.type(
    name="Plan",
    description="A paid subscription plan: what it costs and how long one billing cycle lasts.",
)
class PlanNode(relay.Node):
    id: relay.NodeID[str]
    slug: str = strawberry.field(description="A stable machine name, e.g. `monthly`.")
    name: str = strawberry.field(description="The display name.")
    price: Money = strawberry.field(description="The list price of one billing cycle.")
    duration_days: int = strawberry.field(description="How long one billing cycle lasts.")
    active: bool = strawberry.field(
        description="Whether the plan can be bought now (a purchase's plan may be retired)."
    )

    @classmethod
    def from_model(cls, plan: Plan | PlanView) -> PlanNode:
        return cls(
            id=str(plan.id),
            slug=plan.slug,
            name=plan.name,
            price=_money(plan.price_minor, plan.currency),
            duration_days=plan.duration_days,
            active=plan.active,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[PlanNode | None]:
        """Plans are public: anyone may refetch one, retired ones included (purchase
        history)."""
        found = await info.context.loaders[PlanByIdLoader].load_many(list(node_ids))
        return [cls.from_model(plan) if plan else None for plan in found]


@strawberry.type(
    description=(
        "A promocode available to the signed-in user and what it gives. Exactly one of "
        "`percentOff`, `amountOff` and `fixedPrice` is set, by `kind` (none for FREE)."
    )
)
class PromocodeOffer:
    code: str = strawberry.field(description="The code to enter (normalised: upper case).")
    kind: PromocodeKind = strawberry.field(description="How the code changes the price.")
    percent_off: int | None = strawberry.field(
        description="The percentage off, 1-100 (PERCENT only)."
    )
    amount_off: Money | None = strawberry.field(
        description=(
            "The amount taken off the list price (AMOUNT only). Null also for a code with no "
            "currency of its own: it then applies to plans in any currency."
        )
    )
    fixed_price: Money | None = strawberry.field(
        description="The price the plan is sold for (FIXED_PRICE only); same null rule."
    )
    trial_days: int = strawberry.field(description="Free days before the first billing cycle.")
    discounted_cycles: int = strawberry.field(
        description="How many billing cycles the discounted price applies to."
    )
    valid_until: datetime | None = strawberry.field(
        description="When the code stops working; null if it doesn't expire."
    )
    description: str = strawberry.field(description="What the code is for, in words.")
    promocode_id: strawberry.Private[str]

    @strawberry.field(
        description=("The active plans the code applies to; null when it applies to every plan.")
    )
    async def eligible_plans(self, info: Info[Context, Any]) -> list[PlanNode] | None:
        plans = await info.context.loaders[PlansByPromocodeIdLoader].load(self.promocode_id)
        if plans is None:
            return None
        return [PlanNode.from_model(plan) for plan in plans if plan.active]

    @classmethod
    def from_model(cls, promocode: Promocode) -> PromocodeOffer:
        value, currency = promocode.value, promocode.currency
        in_money = _money(value, currency) if currency else None
        return cls(
            code=promocode.code,
            kind=promocode.kind,
            percent_off=value if promocode.kind is PromocodeKind.PERCENT else None,
            amount_off=in_money if promocode.kind is PromocodeKind.AMOUNT else None,
            fixed_price=in_money if promocode.kind is PromocodeKind.FIXED_PRICE else None,
            trial_days=promocode.trial_days,
            discounted_cycles=promocode.discounted_cycles,
            valid_until=promocode.valid_until,
            description=promocode.description,
            promocode_id=str(promocode.id),
        )


@strawberry.type(
    description=(
        "What a plan would cost under a promocode (a dry run: nothing is reserved). The "
        "discounted price applies to `discountedCycles` billing cycles after `trialDays` free "
        "days."
    )
)
class PromocodeQuote:
    plan: PlanNode = strawberry.field(description="The plan quoted.")
    list_price: Money = strawberry.field(description="The plan's price without the code.")
    final_price: Money = strawberry.field(description="The price to pay with the code.")
    discount: Money = strawberry.field(description="`listPrice` minus `finalPrice`.")
    trial_days: int = strawberry.field(description="Free days before the first billing cycle.")
    discounted_cycles: int = strawberry.field(
        description="How many billing cycles `finalPrice` applies to."
    )


@strawberry.type(
    name="Purchase",
    description=(
        "A plan bought by a user, priced when created; the payment system reports the result "
        "(`purchaseConfirm` / `purchaseFail`)."
    ),
)
class PurchaseNode(relay.Node):
    id: relay.NodeID[str]
    status: PurchaseStatus = strawberry.field(description="Where the payment stands.")
    list_price: Money = strawberry.field(description="The plan's price when it was bought.")
    final_price: Money = strawberry.field(description="The price to pay, after the promocode.")
    trial_days: int = strawberry.field(description="Free days before the first billing cycle.")
    discounted_cycles: int = strawberry.field(
        description="How many billing cycles `finalPrice` applies to (0 without a promocode)."
    )
    created_at: datetime = strawberry.field(description="When the purchase was created.")
    confirmed_at: datetime | None = strawberry.field(
        description="When the payment was confirmed; null unless CONFIRMED."
    )
    failed_at: datetime | None = strawberry.field(
        description="When the payment failed; null unless FAILED."
    )
    plan_id: strawberry.Private[str]
    promocode_id: strawberry.Private[str | None]
    user_id: strawberry.Private[str]
    # What `purchaseCreate` read already (`PurchaseView`): its payload asks no query for them.
    known_plan: strawberry.Private[PlanView | None] = None
    known_code: strawberry.Private[str | None] = None

    @strawberry.field(
        description="Who bought it: shown to the buyer and to admins; null for anyone else."
    )
    async def buyer(self, info: Info[Context, Any]) -> UserNode | None:
        principal = await info.context.principal()
        if not (principal.has_role(Role.ADMIN) or str(principal.user_id) == self.user_id):
            return None
        user = await info.context.loaders[UserByIdLoader].load(self.user_id)
        return UserNode.from_model(user) if user is not None else None

    @strawberry.field(description="The plan bought.")
    async def plan(self, info: Info[Context, Any]) -> PlanNode:
        if self.known_plan is not None:
            return PlanNode.from_model(self.known_plan)
        plan = await info.context.loaders[PlanByIdLoader].load(self.plan_id)
        assert plan is not None  # a purchase's plan is never deleted (foreign key)
        return PlanNode.from_model(plan)

    @strawberry.field(description="The promocode used, as entered (normalised); null if none.")
    async def promocode(self, info: Info[Context, Any]) -> str | None:
        if self.promocode_id is None:
            return None
        if self.known_code is not None:
            return self.known_code
        promocode = await info.context.loaders[PromocodeByIdLoader].load(self.promocode_id)
        return promocode.code if promocode is not None else None

    @classmethod
    def from_model(cls, purchase: Purchase | PurchaseView) -> PurchaseNode:
        known = purchase if isinstance(purchase, PurchaseView) else None
        return cls(
            id=str(purchase.id),
            status=purchase.status,
            list_price=_money(purchase.list_price_minor, purchase.currency),
            final_price=_money(purchase.final_price_minor, purchase.currency),
            trial_days=purchase.trial_days,
            discounted_cycles=purchase.discounted_cycles,
            created_at=purchase.created_at,
            confirmed_at=purchase.confirmed_at,
            failed_at=purchase.failed_at,
            plan_id=str(purchase.plan_id),
            promocode_id=str(purchase.promocode_id) if purchase.promocode_id else None,
            user_id=str(purchase.user_id),
            known_plan=known.plan if known else None,
            known_code=known.code if known else None,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[PurchaseNode | None]:
        """A user sees their own purchases; admins and services (the payment system) any."""
        return await visible_nodes(
            info,
            PurchaseByIdLoader,
            node_ids,
            cls.from_model,
            owner=lambda row: row.user_id,
            roles=(Role.ADMIN, Role.SERVICE),
        )
