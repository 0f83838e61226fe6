"""Family accounts: the types clients read (the family, its members, limits, cards, notices)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.models.base import utcnow
from app.models.family import (
    FamilyNotificationKind,
    FamilyRole,
    LimitFrame,
    MigrationState,
    PortalStatus,
)
from app.models.identity import Role
from app.services.family import reading
from app.services.family.notifications import NotificationView
from app.services.family.usage import LimitState
from schema.base import Money, decode_global_id
from schema.context import Context
from schema.family.errors import FamilyError
from schema.family.loaders import FamilyMembersLoader

InfoT = Info[Context, Any]


def member_global_id(member_id: uuid.UUID) -> strawberry.ID:
    return strawberry.ID(relay.to_base64("FamilyMember", str(member_id)))


@strawberry.type(description="A member's limit in the current frame, and what is left of it.")
class FamilyLimit:
    amount: Money = strawberry.field(description="The limit per frame.")
    frame: LimitFrame = strawberry.field(description="The calendar frame it applies to.")
    frame_starts_at: datetime = strawberry.field(description="When the current frame began.")
    resets_at: datetime = strawberry.field(description="When the next frame begins.")
    charged: Money = strawberry.field(description="Rides charged in this frame.")
    held: Money = strawberry.field(description="Fares held by rides under way.")
    used: Money = strawberry.field(description="charged + held.")
    remaining: Money = strawberry.field(description="What the member may still spend now.")

    @classmethod
    def from_state(cls, state: LimitState) -> FamilyLimit:
        def money(amount: int) -> Money:
            return Money(amount_minor=amount, currency=state.currency)

        return cls(
            amount=money(state.amount_minor),
            frame=state.frame_kind,
            frame_starts_at=state.frame.start,
            resets_at=state.frame.end,
            charged=money(state.usage.charged),
            held=money(state.usage.held),
            used=money(state.usage.used),
            remaining=money(state.remaining),
        )


@strawberry.type(description="A person in a family.")
class FamilyMember:
    id: strawberry.ID | None = strawberry.field(
        description=(
            "The member's id for the member mutations; null for a member added in passport "
            "directly (the owner manages them in passport)."
        )
    )
    phone: str | None = strawberry.field(description="The member's phone number (E.164).")
    role: FamilyRole
    accepted_at: datetime | None = strawberry.field(
        description="When they accepted the invitation; null while they are only invited."
    )
    portal_status: PortalStatus = strawberry.field(description="Their standing in passport.")
    limit: FamilyLimit | None = strawberry.field(
        description="Their limit and its usage; null with no limit or when `limitHidden`."
    )
    limit_hidden: bool = strawberry.field(
        description="Another member's limit: only the owner sees every member's."
    )

    @classmethod
    def from_view(cls, view: reading.MemberView) -> FamilyMember:
        return cls(
            id=member_global_id(view.id) if view.id is not None else None,
            phone=view.phone,
            role=view.role,
            accepted_at=view.accepted_at,
            portal_status=view.portal_status,
            limit=FamilyLimit.from_state(view.limit) if view.limit else None,
            limit_hidden=view.limit_hidden,
        )


@strawberry.type(description="A bank card: its id at the card store, never its number.")
class PaymentCard:
    id: str = strawberry.field(description="The card store's id, card-….")
    brand: str
    last4: str
    expires_month: int
    expires_year: int

    @classmethod
    def from_view(cls, card: reading.CardView) -> PaymentCard:
        return cls(
            id=card.id,
            brand=card.brand,
            last4=card.last4,
            expires_month=card.expires_month,
            expires_year=card.expires_year,
        )


@strawberry.type(
    name="FamilyAccount",
    description=(
        "A family account: the owner's cards shared with the members, each member's limit. "
        "Its members see it; only the owner changes it."
    ),
)
class FamilyAccountNode(relay.Node):
    id: relay.NodeID[str]
    type: str = strawberry.field(description="Always FAMILY.")
    name: str
    color: str = strawberry.field(description="RRGGBB.")
    passport_account: bool = strawberry.field(
        description="Whether the family lives in passport (migrated)."
    )
    has_plus_multi: bool = strawberry.field(
        description="Whether the owner's subscription is Plus Multi (else the app may offer it)."
    )
    member_role: FamilyRole | None = strawberry.field(
        description="The caller's role in it (null for an admin outside the family)."
    )
    accepted_at: datetime | None = strawberry.field(description="When the caller joined.")
    members: list[FamilyMember] | None = strawberry.field(
        description=(
            "Its members. In a migrated family they come from passport; null when passport "
            "can't be reached (see `membersError`): never an old copy shown as fresh."
        )
    )
    members_error: FamilyError | None = strawberry.field(
        description="Why `members` is null: PASSPORT_UNAVAILABLE."
    )
    payment_methods: list[PaymentCard] = strawberry.field(
        description="The owner's cards shared with the family, in the owner's order."
    )
    main_payment_method_id: str | None = strawberry.field(description="The card used first.")
    migration_state: MigrationState | None = strawberry.field(
        description="Its migration to passport; null if never scheduled."
    )

    @classmethod
    def from_view(cls, view: reading.FamilyView) -> FamilyAccountNode:
        error = None
        if view.members_error is not None:
            error = FamilyError(
                code=view.members_error,
                field="members",
                message="Passport is unavailable: the members can't be shown now.",
            )
        return cls(
            id=str(view.id),
            type="FAMILY",
            name=view.name,
            color=view.color,
            passport_account=view.passport_family_id is not None,
            has_plus_multi=view.has_plus_multi,
            member_role=view.viewer_role,
            accepted_at=view.accepted_at,
            members=None
            if view.members is None
            else [FamilyMember.from_view(m) for m in view.members],
            members_error=error,
            payment_methods=[PaymentCard.from_view(c) for c in view.cards],
            main_payment_method_id=view.main_card_id,
            migration_state=view.migration_state,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: InfoT, node_ids: Any, required: bool = False
    ) -> list[FamilyAccountNode | None]:
        """Members refetch their family; admins any family."""
        principal = await info.context.principal()
        admin = principal.has_role(Role.ADMIN)
        found = await info.context.loaders[FamilyMembersLoader].load_many(list(node_ids))
        nodes: list[FamilyAccountNode | None] = []
        for members in found:
            if members is None or not (admin or principal.user_id in members[1]):
                nodes.append(None)
                continue
            viewer = principal.user_id if principal.user_id in members[1] else None
            view = await reading.family_view(
                info.context.session,
                members[0],
                viewer_id=viewer,
                passport=info.context.runtime.passport,
                now=utcnow(),
            )
            nodes.append(cls.from_view(view) if view is not None else None)
        return nodes


def account_uuid(value: str) -> uuid.UUID:
    """A FamilyAccount global id or a raw UUID (for service callers); ValueError if neither."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return decode_global_id(value, "FamilyAccount")


@strawberry.type(description="A card the caller may pay with: their own, or a family's.")
class PaymentMethod:
    card: PaymentCard
    family_account_id: strawberry.ID | None = strawberry.field(
        description="The FamilyAccount whose shared card this is; null for the caller's own."
    )
    main: bool = strawberry.field(description="The family's main card.")
    passport_account: bool = strawberry.field(
        description="For a family card: whether the family lives in passport."
    )
    limit: FamilyLimit | None = strawberry.field(
        description="For a family card: the caller's limit there (null: no limit)."
    )


def payment_methods_of(found: reading.PaymentMethods) -> list[PaymentMethod]:
    own = [
        PaymentMethod(
            card=PaymentCard.from_view(card),
            family_account_id=None,
            main=False,
            passport_account=False,
            limit=None,
        )
        for card in found.own
    ]
    family = found.family
    if family is None:
        return own
    family_id = strawberry.ID(relay.to_base64("FamilyAccount", str(family.account_id)))
    limit = FamilyLimit.from_state(family.limit) if family.limit else None
    return own + [
        PaymentMethod(
            card=PaymentCard.from_view(card),
            family_account_id=family_id,
            main=card.id == family.main_card_id,
            passport_account=family.passport_account,
            limit=limit,
        )
        for card in family.cards
    ]


@strawberry.type(description="An in-app notification about the caller's family.")
class FamilyNotification:
    id: strawberry.ID
    kind: FamilyNotificationKind
    family_account_id: strawberry.ID | None
    details: JSON = strawberry.field(
        description=(
            "What it is about: for limits {userId, limitMinor, usedMinor, currency, frame, "
            "frameStart}; for FAMILY_MOVED {role, deepLink}; for MEMBERS_WITHOUT_PORTAL "
            "{members: [{memberId, phone, status}]}."
        )
    )
    created_at: datetime
    seen_at: datetime | None

    @classmethod
    def from_view(cls, view: NotificationView) -> FamilyNotification:
        account = view.account_id
        return cls(
            id=strawberry.ID(relay.to_base64("FamilyNotification", str(view.id))),
            kind=view.kind,
            family_account_id=strawberry.ID(relay.to_base64("FamilyAccount", str(account)))
            if account
            else None,
            details=JSON(view.details),
            created_at=view.created_at,
            seen_at=view.seen_at,
        )


@strawberry.type(description="A family that invited the caller, waiting for an answer.")
class FamilyInvitation:
    family_account_id: strawberry.ID
    name: str
    color: str
    owner_phone: str | None = strawberry.field(description="Who invited: the owner's phone.")
    invited_at: datetime

    @classmethod
    def from_view(cls, view: reading.InvitationView) -> FamilyInvitation:
        return cls(
            family_account_id=strawberry.ID(relay.to_base64("FamilyAccount", str(view.account_id))),
            name=view.name,
            color=view.color,
            owner_phone=view.owner_phone,
            invited_at=view.invited_at,
        )


@strawberry.type(description="What the app shows of the family at start.")
class LaunchFamily:
    family_account_id: strawberry.ID
    member_role: FamilyRole
    passport_account: bool = strawberry.field(description="Whether the family lives in passport.")


__all__ = [
    "FamilyAccountNode",
    "FamilyInvitation",
    "FamilyLimit",
    "FamilyMember",
    "FamilyNotification",
    "LaunchFamily",
    "MigrationState",
    "PaymentCard",
    "PaymentMethod",
    "account_uuid",
    "member_global_id",
    "payment_methods_of",
]
