"""Family accounts: mutation inputs and payloads (client, service and admin)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.models.family import LimitFrame, MigrationState
from app.services.family.codes import RideRefusal
from app.services.family.rides import ReleaseOutcome
from schema.family.errors import (
    FamilyError,
    FamilyMigrationError,
    FamilyRideError,
    PaymentCardError,
)
from schema.family.types import FamilyAccountNode, FamilyLimit, FamilyMember, PaymentCard
from schema.orders.inputs import MoneyInput


@strawberry.input(description="A limit per calendar frame, in the limit's currency.")
class FamilyLimitInput:
    amount_minor: int = strawberry.field(description="0-2,000,000,000 minor units.")
    currency: str = strawberry.field(description="ISO 4217, e.g. RUB.")
    frame: LimitFrame


@strawberry.input(description="A new family; the caller becomes its owner.")
class FamilyCreateInput:
    name: str = strawberry.field(description="1-64 printable characters.")
    color: str = strawberry.field(default="000000", description="RRGGBB (a leading # is fine).")


@strawberry.input(description="The family to act on.")
class FamilyAccountInput:
    account_id: strawberry.ID = strawberry.field(description="The FamilyAccount's id.")


@strawberry.input(description="Add someone to the owner's family by their phone number.")
class FamilyMemberAddInput:
    account_id: strawberry.ID
    phone: str = strawberry.field(description="Their phone, +E.164; they must use the app.")
    limit: FamilyLimitInput | None = strawberry.field(
        default=None, description="Their limit from the start; none if omitted."
    )


@strawberry.input(description="A member of the owner's family.")
class FamilyMemberInput:
    account_id: strawberry.ID
    member_id: strawberry.ID = strawberry.field(description="The FamilyMember's id.")


@strawberry.input(description="Set or lift a member's limit; the next ride check applies it.")
class FamilyMemberLimitSetInput:
    account_id: strawberry.ID
    member_id: strawberry.ID
    limit: FamilyLimitInput | None = strawberry.field(description="null lifts the limit.")


@strawberry.input(description="The owner's cards shared with the family (replaces the list).")
class FamilyPaymentMethodSetInput:
    account_id: strawberry.ID
    card_ids: list[str] = strawberry.field(description="Card ids of the owner's, at most 5.")
    main_card_id: str | None = strawberry.field(
        default=None, description="One of `cardIds`; the first one if omitted."
    )


@strawberry.input(description="Acknowledge family notifications.")
class FamilyNotificationsMarkSeenInput:
    ids: list[strawberry.ID] = strawberry.field(description="At most 100 ids.")


@strawberry.type(description="The family after a change.")
class FamilyAccountPayload:
    account: FamilyAccountNode | None = strawberry.field(
        default=None, description="The family now; null when refused."
    )
    errors: list[FamilyError] = strawberry.field(description="Why not; empty on success.")


@strawberry.type(description="The result of `familyMemberAdd`.")
class FamilyMemberAddPayload:
    account: FamilyAccountNode | None = None
    member: FamilyMember | None = strawberry.field(default=None, description="The new member.")
    errors: list[FamilyError] = strawberry.field(description="Why not; empty on success.")


@strawberry.type(description="The result of `familyDelete` or `familyLeave`.")
class FamilyGonePayload:
    account_id: strawberry.ID | None = strawberry.field(
        default=None, description="The family deleted or left; null when refused."
    )
    errors: list[FamilyError] = strawberry.field(description="Why not; empty on success.")


@strawberry.type(description="The result of `familyNotificationsMarkSeen`.")
class FamilyNotificationsMarkSeenPayload:
    marked: int = strawberry.field(default=0, description="Notifications newly acknowledged.")
    errors: list[FamilyError] = strawberry.field(description="Why not; empty on success.")


# --- service calls ------------------------------------------------------------------


@strawberry.input(description="Hold the fare against the limit until charged or released.")
class FamilyRideHoldInput:
    order_id: str = strawberry.field(description="The ride's order id, 1-64 characters.")
    ttl_seconds: int | None = strawberry.field(
        default=None, description="60 s - 7 days; FAMILY_HOLD_TTL_SECONDS by default."
    )


@strawberry.input(description="May this member ride on the family for this fare?")
class FamilyRideCheckInput:
    account_id: strawberry.ID = strawberry.field(description="A FamilyAccount id or raw UUID.")
    user_id: strawberry.ID = strawberry.field(description="A User id or raw UUID.")
    amount: MoneyInput = strawberry.field(description="The (estimated) fare.")
    hold: FamilyRideHoldInput | None = strawberry.field(
        default=None, description="Hold the fare if it fits (ride starts)."
    )


@strawberry.type(description="A fare held against a member's limit.")
class FamilyRideHold:
    id: strawberry.ID
    order_id: str
    expires_at: datetime = strawberry.field(description="When it stops counting unless charged.")


@strawberry.type(description="The result of `familyRideCheck`.")
class FamilyRideCheckPayload:
    available: bool = strawberry.field(default=False, description="Whether the fare fits.")
    reason: RideRefusal | None = strawberry.field(default=None, description="Why not.")
    limit: FamilyLimit | None = strawberry.field(
        default=None, description="The member's limit now (after the hold); null: none."
    )
    hold: FamilyRideHold | None = strawberry.field(default=None, description="The hold made.")
    errors: list[FamilyRideError] = strawberry.field(description="A refused call.")


@strawberry.input(description="A ride paid by the family: its final fare.")
class FamilyRideChargeInput:
    account_id: strawberry.ID
    user_id: strawberry.ID
    order_id: str = strawberry.field(description="Charged once per order id.")
    amount: MoneyInput


@strawberry.type(description="The result of `familyRideCharge`.")
class FamilyRideChargePayload:
    duplicate: bool = strawberry.field(
        default=False, description="Charged before with these terms: nothing changed."
    )
    limit: FamilyLimit | None = strawberry.field(default=None, description="The limit now.")
    errors: list[FamilyRideError] = strawberry.field(description="A refused call.")


@strawberry.input(description="A cancelled ride: end its hold.")
class FamilyRideReleaseInput:
    account_id: strawberry.ID
    order_id: str


@strawberry.type(description="The result of `familyRideRelease`.")
class FamilyRideReleasePayload:
    outcome: ReleaseOutcome | None = None
    errors: list[FamilyRideError] = strawberry.field(description="A refused call.")


@strawberry.input(description="A user's card as the card store knows it.")
class PaymentCardUpsertInput:
    user_id: strawberry.ID = strawberry.field(description="A User id or raw UUID.")
    card_id: str = strawberry.field(description="card-<letters and digits>.")
    brand: str = strawberry.field(description="VISA, MASTERCARD, MIR, …")
    last4: str
    expires_month: int
    expires_year: int


@strawberry.type(description="The result of `paymentCardUpsert`.")
class PaymentCardUpsertPayload:
    card: PaymentCard | None = None
    created: bool = False
    errors: list[PaymentCardError] = strawberry.field(description="A refused call.")


@strawberry.input(description="A card the card store removed.")
class PaymentCardRemoveInput:
    user_id: strawberry.ID
    card_id: str


@strawberry.type(description="The result of `paymentCardRemove`.")
class PaymentCardRemovePayload:
    removed_card_id: str | None = None
    errors: list[PaymentCardError] = strawberry.field(description="A refused call.")


@strawberry.input(description="The subscription system's word on a family's Plus Multi.")
class FamilyPlusMultiSetInput:
    account_id: strawberry.ID
    enabled: bool


@strawberry.type(description="The result of `familyPlusMultiSet`.")
class FamilyPlusMultiSetPayload:
    errors: list[FamilyError] = strawberry.field(description="A refused call.")


# --- admin ----------------------------------------------------------------------------


@strawberry.input(description="Plan B: schedule the eligible families' migration in batches.")
class FamilyMigrationBulkInput:
    dry_run: bool = strawberry.field(description="Count only; schedule nothing.")
    batch_size: int | None = strawberry.field(
        default=None, description="Families per batch, 1-10,000 (FAMILY_MIGRATION_BATCH_SIZE)."
    )
    after: strawberry.ID | None = strawberry.field(
        default=None, description="`nextAfter` of the previous call, to go on."
    )


@strawberry.type(description="What one bulk batch did (or, dry, would do).")
class FamilyMigrationBulkPayload:
    examined: int = 0
    eligible: int = 0
    scheduled: int = 0
    next_after: strawberry.ID | None = strawberry.field(
        default=None, description="Pass as `after` for the next batch; null: that was the last."
    )
    errors: list[FamilyMigrationError] = strawberry.field(description="A refused call.")


@strawberry.type(description="A family's migration to passport, for admins.")
class FamilyMigration:
    account_id: strawberry.ID
    state: MigrationState
    attempts: int
    last_error: str | None
    trigger: str = strawberry.field(description="APP, BULK or ADMIN.")
    scheduled_at: datetime
    finished_at: datetime | None


@strawberry.type(description="The result of `familyMigrationStart`.")
class FamilyMigrationStartPayload:
    migration: FamilyMigration | None = None
    errors: list[FamilyMigrationError] = strawberry.field(description="A refused call.")
