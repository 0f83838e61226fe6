"""Promocodes, admin surface: the admin's view of a code (stats, grants, purchases) and the
attempt log with true reasons. Inputs and payloads are in `admin_inputs.py`, the error codes in
`errors.py`; plans and purchases reuse the client types.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.promocodes import (
    AttemptOperation,
    Audience,
    Promocode,
    PromocodeAttempt,
    PromocodeGrant,
    PromocodeKind,
    Rejection,
    ReleaseReason,
    SubscriberEligibility,
)
from app.services.promocodes import reading, stats
from schema.base import After, Money, PageSize, offset_connection, offset_page
from schema.context import Context
from schema.identity.loaders import GroupByIdLoader, UserByIdLoader
from schema.identity.types import GroupNode, UserNode
from schema.permissions import visible_nodes
from schema.promocodes.loaders import (
    AttemptByIdLoader,
    GrantByIdLoader,
    PlanByIdLoader,
    PlansByPromocodeIdLoader,
    PromocodeByIdLoader,
)
from schema.promocodes.types import PlanNode, PurchaseNode

strawberry.enum(
    Audience,
    name="PromocodeAudience",
    description=(
        "Who may use a code. PUBLIC: any registered, active user. GRANTED: only users it was "
        "granted to, personally or through a group (`promocodeGrant`)."
    ),
)
strawberry.enum(
    SubscriberEligibility,
    name="SubscriberEligibility",
    description=(
        "Which subscribers a code is for. ANY: everyone. NEVER_SUBSCRIBED: users who never "
        "bought a plan. LAPSED: users whose subscription ended. ACTIVE: current subscribers."
    ),
)
strawberry.enum(
    Rejection,
    name="PromocodeRejection",
    description=(
        "The true reason a code was refused (admins only; a user is told NOT_FOUND for "
        "NOT_ASSIGNED_TO_USER so codes can't be enumerated). NOT_FOUND: no such code. "
        "INACTIVE: deactivated. NOT_STARTED / EXPIRED: outside its validity window. "
        "EXHAUSTED: every use taken. ALREADY_USED_BY_USER: the per-user limit reached. "
        "NOT_ASSIGNED_TO_USER: a GRANTED code not granted to the user. PLAN_NOT_ELIGIBLE: not "
        "for this plan. SUBSCRIBER_NOT_ELIGIBLE: not for the user's subscription status. "
        "USER_NOT_ACTIVE: the account is blocked. RATE_LIMITED: too many recent refusals."
    ),
)
strawberry.enum(
    AttemptOperation,
    name="PromocodeAttemptOperation",
    description=(
        "Where a code was tried. QUOTE: `promocodeQuote`. PURCHASE: `purchaseCreate`. "
        "ADMIN_APPLY: an admin's `promocodeApply` for the user."
    ),
)
strawberry.enum(
    ReleaseReason,
    name="PromocodeReleaseReason",
    description=(
        "Why a reserved use was given back. PAYMENT_FAILED: the payment system reported a "
        "failure. TIMEOUT: no payment result within the reservation's TTL. ADMIN: by an admin."
    ),
)


@strawberry.type(description="How many released uses had one release reason.")
class PromocodeReleaseCount:
    reason: ReleaseReason = strawberry.field(description="Why the uses were released.")
    count: int = strawberry.field(description="How many.")


@strawberry.type(description="How many rejected attempts had one true reason.")
class PromocodeRejectionCount:
    reason: Rejection = strawberry.field(description="The true reason.")
    count: int = strawberry.field(description="How many.")


@strawberry.type(
    description=(
        "A code's usage: the ledger by status, releases by reason and rejected attempts by "
        "their true reason. `uses` = reserved + confirmed."
    )
)
class PromocodeStats:
    uses: int = strawberry.field(description="Uses held now: RESERVED plus CONFIRMED.")
    max_uses: int | None = strawberry.field(description="The limit; null for unlimited.")
    remaining: int | None = strawberry.field(
        description="Uses left (`maxUses - uses`); null for an unlimited code."
    )
    reserved: int = strawberry.field(description="Uses reserved, waiting for a payment result.")
    confirmed: int = strawberry.field(description="Uses whose payment was confirmed.")
    released: int = strawberry.field(description="Uses given back (all reasons).")
    released_by_reason: list[PromocodeReleaseCount] = strawberry.field(
        description="Released uses per reason, every reason listed (zeros included)."
    )
    rejections: list[PromocodeRejectionCount] = strawberry.field(
        description="Rejected attempts per true reason, every reason listed (zeros included)."
    )
    user_grants: int = strawberry.field(description="Users the code is granted to personally.")
    group_grants: int = strawberry.field(description="Groups the code is granted to.")


@strawberry.type(
    name="Promocode",
    description="A promocode as admins see it: what it gives, its limits and its usage (admin).",
)
class PromocodeNode(relay.Node):
    id: relay.NodeID[str]
    code: str = strawberry.field(description="The code, normalised (upper case).")
    kind: PromocodeKind = strawberry.field(description="How the code changes the price.")
    value: int = strawberry.field(
        description=(
            "PERCENT: the percentage off (1-100). AMOUNT: minor units off. FIXED_PRICE: the "
            "price in minor units. FREE: 0."
        )
    )
    currency: str | None = strawberry.field(
        description="The currency of an AMOUNT or FIXED_PRICE value; null for PERCENT and FREE."
    )
    amount: Money | None = strawberry.field(
        description="`value` as money for AMOUNT and FIXED_PRICE codes; null otherwise."
    )
    description: str = strawberry.field(description="What the code is for, in words.")
    valid_from: datetime | None = strawberry.field(
        description="When the code starts working; null: at once."
    )
    valid_until: datetime | None = strawberry.field(
        description="When the code stops working; null: never expires."
    )
    max_uses: int | None = strawberry.field(
        description="Total uses allowed; null: unlimited, 1: a one-time code."
    )
    max_uses_per_user: int = strawberry.field(description="Uses allowed per user.")
    uses: int = strawberry.field(description="Uses held now (reserved + confirmed).")
    audience: Audience = strawberry.field(description="Who may use the code.")
    eligibility: SubscriberEligibility = strawberry.field(
        description="Which subscribers the code is for."
    )
    trial_days: int = strawberry.field(description="Free days before the first billing cycle.")
    discounted_cycles: int = strawberry.field(
        description="How many billing cycles the discounted price applies to."
    )
    active: bool = strawberry.field(description="False once deactivated.")
    batch_id: str | None = strawberry.field(
        description="The `promocodeGenerate` batch (a UUID) that made the code; null if none."
    )
    created_by: str = strawberry.field(description="Who created it (`user:<id>`, …).")
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="When it last changed.")

    @strawberry.field(
        description="The plans the code is limited to (retired ones too); null: every plan."
    )
    async def plans(self, info: Info[Context, Any]) -> list[PlanNode] | None:
        plans = await info.context.loaders[PlansByPromocodeIdLoader].load(self.id)
        return None if plans is None else [PlanNode.from_model(plan) for plan in plans]

    @strawberry.field(description="Usage and rejection counts.")
    async def stats(self, info: Info[Context, Any]) -> PromocodeStats:
        found = await stats.promocode_stats(info.context.session, uuid.UUID(self.id))
        return PromocodeStats(
            uses=found.uses,
            max_uses=found.max_uses,
            remaining=found.remaining,
            reserved=found.reserved,
            confirmed=found.confirmed,
            released=found.released,
            released_by_reason=[
                PromocodeReleaseCount(reason=r, count=found.released_by_reason.get(r, 0))
                for r in ReleaseReason
            ],
            rejections=[
                PromocodeRejectionCount(reason=r, count=found.rejections.get(r, 0))
                for r in Rejection
            ],
            user_grants=found.user_grants,
            group_grants=found.group_grants,
        )

    @strawberry.field(description="Who the code is granted to, newest first.")
    async def grants(
        self, info: Info[Context, Any], first: PageSize = None, after: After = None
    ) -> relay.Connection[PromocodeGrantNode]:
        page = offset_page(first, after, info.context.settings.max_page_size)
        found = await reading.grants_page(info.context.session, uuid.UUID(self.id), page)
        nodes = [PromocodeGrantNode.from_model(grant) for grant in found.rows]
        return offset_connection(relay.Connection[PromocodeGrantNode], nodes, page, found.has_next)

    @strawberry.field(description="Purchases made with the code (every status), newest first.")
    async def purchases(
        self, info: Info[Context, Any], first: PageSize = None, after: After = None
    ) -> relay.Connection[PurchaseNode]:
        page = offset_page(first, after, info.context.settings.max_page_size)
        found = await reading.purchases_of_code_page(info.context.session, uuid.UUID(self.id), page)
        nodes = [PurchaseNode.from_model(purchase) for purchase in found.rows]
        return offset_connection(relay.Connection[PurchaseNode], nodes, page, found.has_next)

    @classmethod
    def from_model(cls, promocode: Promocode) -> PromocodeNode:
        money = promocode.currency is not None and promocode.kind in (
            PromocodeKind.AMOUNT,
            PromocodeKind.FIXED_PRICE,
        )
        return cls(
            id=str(promocode.id),
            code=promocode.code,
            kind=promocode.kind,
            value=promocode.value,
            currency=promocode.currency,
            amount=Money(amount_minor=promocode.value, currency=promocode.currency or "")
            if money
            else None,
            description=promocode.description,
            valid_from=promocode.valid_from,
            valid_until=promocode.valid_until,
            max_uses=promocode.max_uses,
            max_uses_per_user=promocode.max_uses_per_user,
            uses=promocode.uses,
            audience=promocode.audience,
            eligibility=promocode.eligibility,
            trial_days=promocode.trial_days,
            discounted_cycles=promocode.discounted_cycles,
            active=promocode.active,
            batch_id=str(promocode.batch_id) if promocode.batch_id else None,
            created_by=promocode.created_by,
            created_at=promocode.created_at,
            updated_at=promocode.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[PromocodeNode | None]:
        """Admins only."""
        return await visible_nodes(info, PromocodeByIdLoader, node_ids, cls.from_model)


@strawberry.type(
    name="PromocodeGrant",
    description="A GRANTED code given to one user or to every member of one group (admin).",
)
class PromocodeGrantNode(relay.Node):
    id: relay.NodeID[str]
    granted_by: str = strawberry.field(description="Who granted it (`user:<id>`, …).")
    created_at: datetime = strawberry.field(description="When it was granted.")
    user_id: strawberry.Private[str | None]
    group_id: strawberry.Private[str | None]

    @strawberry.field(description="The user it is granted to; null for a group grant.")
    async def user(self, info: Info[Context, Any]) -> UserNode | None:
        if self.user_id is None:
            return None
        user = await info.context.loaders[UserByIdLoader].load(self.user_id)
        return UserNode.from_model(user) if user is not None else None

    @strawberry.field(description="The group it is granted to; null for a personal grant.")
    async def group(self, info: Info[Context, Any]) -> GroupNode | None:
        if self.group_id is None:
            return None
        group = await info.context.loaders[GroupByIdLoader].load(self.group_id)
        return GroupNode.from_model(group) if group is not None else None

    @classmethod
    def from_model(cls, grant: PromocodeGrant) -> PromocodeGrantNode:
        return cls(
            id=str(grant.id),
            granted_by=grant.granted_by,
            created_at=grant.created_at,
            user_id=str(grant.user_id) if grant.user_id else None,
            group_id=str(grant.group_id) if grant.group_id else None,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[PromocodeGrantNode | None]:
        """Admins only."""
        return await visible_nodes(info, GrantByIdLoader, node_ids, cls.from_model)


@strawberry.type(
    name="PromocodeAttempt",
    description=(
        "A rejected try of a code, with its true reason: why a user's code failed (admin)."
    ),
)
class PromocodeAttemptNode(relay.Node):
    id: relay.NodeID[str]
    code_entered: str = strawberry.field(description="The code as the user typed it.")
    operation: AttemptOperation = strawberry.field(description="Where the code was tried.")
    reason: Rejection = strawberry.field(
        description="The true reason (the user may have been told NOT_FOUND instead)."
    )
    ip: str | None = strawberry.field(description="The caller's IP address, when known.")
    created_at: datetime = strawberry.field(description="When the attempt was made.")
    user_id: strawberry.Private[str | None]
    promocode_id: strawberry.Private[str | None]
    plan_id: strawberry.Private[str | None]

    @strawberry.field(description="Who tried the code; null if the account is gone.")
    async def user(self, info: Info[Context, Any]) -> UserNode | None:
        if self.user_id is None:
            return None
        user = await info.context.loaders[UserByIdLoader].load(self.user_id)
        return UserNode.from_model(user) if user is not None else None

    @strawberry.field(description="The code tried, when one matched what was typed.")
    async def promocode(self, info: Info[Context, Any]) -> PromocodeNode | None:
        if self.promocode_id is None:
            return None
        found = await info.context.loaders[PromocodeByIdLoader].load(self.promocode_id)
        return PromocodeNode.from_model(found) if found is not None else None

    @strawberry.field(description="The plan it was tried on.")
    async def plan(self, info: Info[Context, Any]) -> PlanNode | None:
        if self.plan_id is None:
            return None
        plan = await info.context.loaders[PlanByIdLoader].load(self.plan_id)
        return PlanNode.from_model(plan) if plan is not None else None

    @classmethod
    def from_model(cls, attempt: PromocodeAttempt) -> PromocodeAttemptNode:
        def text(value: object | None) -> str | None:
            return str(value) if value is not None else None

        return cls(
            id=str(attempt.id),
            code_entered=attempt.code_entered,
            operation=attempt.operation,
            reason=attempt.reason,
            ip=attempt.ip,
            created_at=attempt.created_at,
            user_id=text(attempt.user_id),
            promocode_id=text(attempt.promocode_id),
            plan_id=text(attempt.plan_id),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[PromocodeAttemptNode | None]:
        """Admins only."""
        return await visible_nodes(info, AttemptByIdLoader, node_ids, cls.from_model)
