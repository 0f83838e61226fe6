"""Promocodes, admin surface: mutation inputs, per-id outcomes and payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.models.promocodes import Audience, PromocodeKind, Rejection, SubscriberEligibility
from app.services.promocodes.batches import MAX_GENERATE_COUNT
from app.services.promocodes.grants import Grantee, GrantStatus
from app.services.promocodes.issuing import ApplyStatus
from schema.promocodes.admin import PromocodeNode
from schema.promocodes.errors import PromocodeError
from schema.promocodes.types import PlanNode, PurchaseNode

GENERATE_SAMPLE_SIZE = 100

strawberry.enum(
    Grantee,
    name="PromocodeGrantee",
    description="What a grant id names. USER: a User. GROUP: a Group (all its members).",
)
strawberry.enum(
    GrantStatus,
    name="PromocodeGrantStatus",
    description=(
        "One id's grant outcome. GRANTED: granted now. ALREADY_GRANTED: held it already (no "
        "change). UNKNOWN_USER: no such user, or the account is deleted. UNKNOWN_GROUP: no "
        "such group. USER_NOT_ACTIVE: the user is blocked (not granted)."
    ),
)
strawberry.enum(
    ApplyStatus,
    name="PromocodeApplyStatus",
    description=(
        "One user's outcome of `promocodeApply`. APPLIED: a PENDING purchase was created with "
        "the code. REJECTED: the code was refused for the user (see `rejection`). "
        "UNKNOWN_USER: no such user."
    ),
)

REASON_DESCRIPTION = "Why, for the audit log: at most 500 printable characters."


@strawberry.input(description="A new subscription plan.")
class PlanCreateInput:
    slug: str = strawberry.field(description="A stable machine name: 1-50 of a-z, 0-9 and '-'.")
    name: str = strawberry.field(description="The display name, 1-100 printable characters.")
    price_minor: int = strawberry.field(
        description="The price of one billing cycle in minor units."
    )
    currency: str = strawberry.field(description="An ISO 4217 currency code, e.g. RUB.")
    duration_days: int = strawberry.field(description="One billing cycle, 1-3660 days.")
    reason: str = strawberry.field(default="", description=REASON_DESCRIPTION)


@strawberry.type(description="The result of `planCreate`.")
class PlanCreatePayload:
    plan: PlanNode | None = strawberry.field(
        default=None, description="The new plan; null when refused."
    )
    errors: list[PromocodeError] = strawberry.field(description="Why it was refused; or empty.")


@strawberry.input(description="What a code gives and its limits (shared by create and generate).")
class PromocodeOfferInput:
    kind: PromocodeKind = strawberry.field(description="How the code changes the price.")
    value: int = strawberry.field(
        default=0,
        description=(
            "PERCENT: 1-100. AMOUNT: minor units off (at least 1). FIXED_PRICE: the price in "
            "minor units, no more than any eligible plan's price. FREE: 0."
        ),
    )
    currency: str | None = strawberry.field(
        default=None,
        description="Required for AMOUNT and FIXED_PRICE (the plans' currency); else null.",
    )
    valid_from: datetime | None = strawberry.field(
        default=None, description="When the code starts working (with an offset); null: now."
    )
    valid_until: datetime | None = strawberry.field(
        default=None, description="When it stops working, after validFrom; null: never."
    )
    max_uses_per_user: int = strawberry.field(default=1, description="Uses allowed per user.")
    plan_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list,
        description="Global ids of the plans it applies to (at most 100); empty: every plan.",
    )
    audience: Audience = strawberry.field(
        default=Audience.PUBLIC, description="PUBLIC, or GRANTED to chosen users and groups."
    )
    eligibility: SubscriberEligibility = strawberry.field(
        default=SubscriberEligibility.ANY, description="Which subscribers it is for."
    )
    trial_days: int = strawberry.field(
        default=0, description="Free days before the first billing cycle, 0-366."
    )
    discounted_cycles: int = strawberry.field(
        default=1, description="Billing cycles the discounted price applies to, 1-120."
    )
    description: str = strawberry.field(
        default="", description="What the code is for: at most 500 printable characters."
    )
    reason: str = strawberry.field(default="", description=REASON_DESCRIPTION)


@strawberry.input(description="A new promocode.")
class PromocodeCreateInput(PromocodeOfferInput):
    code: str = strawberry.field(
        description="1-64 of A-Z, 0-9, '-' and '_' (case-insensitive; stored upper case)."
    )
    max_uses: int | None = strawberry.field(
        default=None, description="Total uses allowed; null: unlimited, 1: a one-time code."
    )


@strawberry.input(
    description=(
        "Changes to a code; an omitted field stays as it is. What a code gives (code, kind, "
        "value, currency, trialDays, discountedCycles) can't change: create a new code."
    )
)
class PromocodeUpdateInput:
    promocode_id: strawberry.ID = strawberry.field(description="The Promocode's global id.")
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="New description; null leaves it as it is."
    )
    valid_from: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="New start; null removes it."
    )
    valid_until: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="New end; null removes it (never expires)."
    )
    max_uses: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="New total limit, not below the uses taken; null: unlimited.",
    )
    max_uses_per_user: int | None = strawberry.field(
        default=strawberry.UNSET, description="New per-user limit; null leaves it as it is."
    )
    plan_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET,
        description="The new plan list (empty: every plan); null leaves it as it is.",
    )
    audience: Audience | None = strawberry.field(
        default=strawberry.UNSET, description="New audience; null leaves it as it is."
    )
    eligibility: SubscriberEligibility | None = strawberry.field(
        default=strawberry.UNSET, description="New eligibility; null leaves it as it is."
    )
    active: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Reactivate or deactivate; null leaves it."
    )
    reason: str = strawberry.field(default="", description=REASON_DESCRIPTION)


@strawberry.input(description="A code to deactivate.")
class PromocodeDeactivateInput:
    promocode_id: strawberry.ID = strawberry.field(description="The Promocode's global id.")
    reason: str = strawberry.field(default="", description=REASON_DESCRIPTION)


@strawberry.type(description="The result of `promocodeCreate`, `promocodeUpdate` and co.")
class PromocodePayload:
    promocode: PromocodeNode | None = strawberry.field(
        default=None, description="The code as it is now; null when refused."
    )
    errors: list[PromocodeError] = strawberry.field(description="Why it was refused; or empty.")


@strawberry.input(
    description=(
        "Many random codes with one offer. Codes are `prefix` + `length` symbols from a "
        "charset without look-alikes (no 0/O, 1/I/L)."
    )
)
class PromocodeGenerateInput(PromocodeOfferInput):
    count: int = strawberry.field(description=f"How many codes, 1-{MAX_GENERATE_COUNT:,}.")
    length: int = strawberry.field(
        description=(
            "Random symbols per code. The request may use at most half of the 31^length "
            "possible codes (e.g. length 8 or more for 100,000 codes)."
        )
    )
    prefix: str = strawberry.field(
        default="", description="Put before each code: A-Z, 0-9 and '-' (upper-cased)."
    )
    max_uses: int | None = strawberry.field(
        default=1,
        description="Total uses of each code; 1 (the default): one-time codes; null: unlimited.",
    )


@strawberry.type(description="The result of `promocodeGenerate`.")
class PromocodeGeneratePayload:
    batch_id: str | None = strawberry.field(
        default=None,
        description=(
            "The batch's id (a UUID); list all its codes with `promocodes(batchId: …)`. Null "
            "when refused."
        ),
    )
    count: int = strawberry.field(default=0, description="How many codes were created.")
    sample: list[str] = strawberry.field(
        default_factory=list,
        description=(
            f"The first {GENERATE_SAMPLE_SIZE} codes at most, never the whole batch: a batch "
            "can hold 100,000 codes, too many for one response; page through "
            "`promocodes(batchId: …)` for the rest."
        ),
    )
    errors: list[PromocodeError] = strawberry.field(description="Why it was refused; or empty.")


@strawberry.input(description="Users and groups to grant a GRANTED code to (or revoke from).")
class PromocodeGrantInput:
    promocode_id: strawberry.ID = strawberry.field(description="The Promocode's global id.")
    user_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Users' global ids."
    )
    group_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Groups' global ids (1-1000 ids in all)."
    )
    reason: str = strawberry.field(default="", description=REASON_DESCRIPTION)


@strawberry.type(description="One user's or group's grant outcome.")
class PromocodeGrantOutcome:
    grantee: Grantee = strawberry.field(description="Whether `id` names a user or a group.")
    id: strawberry.ID = strawberry.field(description="The User's or Group's global id.")
    status: GrantStatus = strawberry.field(description="What happened for this id.")


@strawberry.type(description="The result of `promocodeGrant`: one outcome per distinct id.")
class PromocodeGrantPayload:
    promocode: PromocodeNode | None = strawberry.field(
        default=None, description="The code; null when refused as a whole."
    )
    outcomes: list[PromocodeGrantOutcome] = strawberry.field(
        default_factory=list, description="Per id, users first, in the order given."
    )
    granted: int = strawberry.field(default=0, description="How many grants were made now.")
    errors: list[PromocodeError] = strawberry.field(description="Why it was refused; or empty.")


@strawberry.type(description="The result of `promocodeRevokeGrant`.")
class PromocodeRevokeGrantPayload:
    promocode: PromocodeNode | None = strawberry.field(
        default=None, description="The code; null when refused."
    )
    revoked: int = strawberry.field(
        default=0, description="How many grants existed and were removed (uses taken stay)."
    )
    errors: list[PromocodeError] = strawberry.field(description="Why it was refused; or empty.")


@strawberry.input(description="A code to apply for users: a purchase is created for each.")
class PromocodeApplyInput:
    code: str = strawberry.field(description="The code (case-insensitive).")
    plan_id: strawberry.ID = strawberry.field(description="The Plan's global id.")
    user_ids: list[strawberry.ID] = strawberry.field(
        description="Users' global ids, 1-1000, applied in this order."
    )
    reason: str = strawberry.field(default="", description=REASON_DESCRIPTION)


@strawberry.type(description="One user's outcome of `promocodeApply`.")
class PromocodeApplyOutcome:
    user_id: strawberry.ID = strawberry.field(description="The User's global id.")
    status: ApplyStatus = strawberry.field(description="What happened for this user.")
    purchase: PurchaseNode | None = strawberry.field(
        default=None, description="The PENDING purchase created (APPLIED only)."
    )
    rejection: Rejection | None = strawberry.field(
        default=None, description="The true reason the code was refused (REJECTED only)."
    )


@strawberry.type(
    description=(
        "The result of `promocodeApply`: one outcome per distinct user. When the code runs "
        "out midway, the users after that are REJECTED with EXHAUSTED (partial success)."
    )
)
class PromocodeApplyPayload:
    outcomes: list[PromocodeApplyOutcome] = strawberry.field(
        default_factory=list, description="Per user, in the order given."
    )
    applied: int = strawberry.field(default=0, description="How many users got a purchase.")
    errors: list[PromocodeError] = strawberry.field(
        description="Why the request was refused as a whole; or empty."
    )
