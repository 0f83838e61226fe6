"""The family domain's error types. The service enums (`app/services/family/codes.py`) and the
models' enums are the GraphQL enums: registered here once, under their API names."""

from __future__ import annotations

import strawberry

from app.models.family import (
    FamilyNotificationKind,
    FamilyRole,
    LimitFrame,
    MigrationState,
    PortalStatus,
)
from app.services.family.codes import (
    CardErrorCode,
    FamilyErrorCode,
    FamilyRideErrorCode,
    MigrationErrorCode,
    RideRefusal,
)
from app.services.family.rides import ReleaseOutcome

strawberry.enum(
    FamilyErrorCode,
    name="FamilyErrorCode",
    description=(
        "Why a family mutation was refused (`field` names the input). NOT_FOUND: no such "
        "family, one the caller isn't in, or no invitation to it. NOT_OWNER: only the owner "
        "changes members, limits and cards. ALREADY_IN_FAMILY: the user owns or belongs to a "
        "family already (one each). ALREADY_MEMBER: a member or invited already. "
        "OWNER_IS_MEMBER: the owner can't be added, removed or limited as a member. "
        "USER_NOT_FOUND: nobody with that phone uses the app. MEMBER_NOT_FOUND. FAMILY_FULL: "
        "8 people at most. OWNER_CANNOT_LEAVE: the owner deletes the family instead. "
        "RIDE_IN_PROGRESS: a ride holds part of a limit. INVALID_NAME (1-64 printable "
        "characters), INVALID_COLOR (RRGGBB), INVALID_PHONE (+E.164), INVALID_AMOUNT "
        "(0-2,000,000,000 minor units), INVALID_CURRENCY. CARD_NOT_FOUND: not a card of the "
        "owner's. MAIN_CARD_NOT_SHARED. TOO_MANY_CARDS (5). NO_PORTAL_ACCOUNT: a family in "
        "passport takes members with a passport account only. PASSPORT_UNAVAILABLE: passport "
        "failed; nothing was changed. TOO_MANY_IDS (100)."
    ),
)
strawberry.enum(
    FamilyRideErrorCode,
    name="FamilyRideErrorCode",
    description=(
        "Why a service ride call was refused (a fare that doesn't fit is not an error: it is "
        "`available: false`). NOT_FOUND: no such family. NOT_A_MEMBER. INVALID_AMOUNT, "
        "INVALID_CURRENCY. CURRENCY_MISMATCH: not the currency of the member's limit. "
        "INVALID_ORDER_ID (1-64 printable characters). INVALID_TTL (60 s - 7 days). "
        "ORDER_ID_REUSED: the order holds or was charged with other terms. HOLD_NOT_FOUND. "
        "ALREADY_CHARGED: a charged ride's hold can't be released."
    ),
)
strawberry.enum(
    RideRefusal,
    name="FamilyRideRefusal",
    description="LIMIT_EXCEEDED: the fare is more than what remains of the frame's limit.",
)
strawberry.enum(
    ReleaseOutcome,
    name="FamilyRideReleaseOutcome",
    description=(
        "RELEASED: the hold ended now. ALREADY_RELEASED: it had been (nothing changed). "
        "EXPIRED: it had expired, so it counted for nothing already."
    ),
)
strawberry.enum(
    CardErrorCode,
    name="PaymentCardErrorCode",
    description=(
        "Why the card store's call was refused. INVALID_CARD_ID (card-<letters and digits>), "
        "INVALID_USER, INVALID_BRAND (VISA, MASTERCARD, MIR, …), INVALID_LAST4 (four digits), "
        "INVALID_EXPIRY. CARD_OF_ANOTHER_USER: the id names another user's card. NOT_FOUND."
    ),
)
strawberry.enum(
    MigrationErrorCode,
    name="FamilyMigrationErrorCode",
    description=(
        "Why an admin migration call was refused. PASSPORT_OFF: no passport is configured "
        "(PASSPORT_URL), so migration is off. NOT_FOUND. ALREADY_MIGRATED. IN_FLIGHT: PENDING "
        "or RUNNING already. INVALID_LIMIT: batchSize is 1-10,000."
    ),
)
strawberry.enum(FamilyRole, name="FamilyRole", description="OWNER pays; MEMBERs ride on it.")
strawberry.enum(
    PortalStatus,
    name="FamilyPortalStatus",
    description=(
        "A member's standing in passport. LOCAL: the family is not migrated. LINKED: in the "
        "passport family. NO_PORTAL_ACCOUNT: passport has no account for the member's phone; "
        "they stay in the family here. REFUSED: passport wouldn't take them (they are in "
        "another passport family, or it is full); they stay here."
    ),
)
strawberry.enum(
    LimitFrame,
    name="FamilyLimitFrame",
    description=(
        "A calendar frame in the owner's timezone: DAY (from midnight), WEEK (from Monday), "
        "MONTH (from the 1st)."
    ),
)
strawberry.enum(
    MigrationState,
    name="FamilyMigrationState",
    description=(
        "A family's migration to passport: PENDING (scheduled), RUNNING, DONE, PARTIAL (done, "
        "with members left local), FAILED (see lastError; the owner's next app start schedules "
        "it again after a cooldown)."
    ),
)
strawberry.enum(
    FamilyNotificationKind,
    name="FamilyNotificationKind",
    description=(
        "LIMIT_80 / LIMIT_100: a member used 80 % / all of the frame's limit (to the owner). "
        "RIDE_REFUSED: a member's ride didn't fit the limit (to the owner, once per frame). "
        "FAMILY_MOVED: the family moved to passport (to each member; `details.role` and "
        "`details.deepLink` differ for the owner). MEMBERS_WITHOUT_PORTAL: who stayed local "
        "(to the owner)."
    ),
)


@strawberry.type(description="A refused family mutation: what was wrong, and where.")
class FamilyError:
    code: FamilyErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(description="The input field at fault (camelCase).")
    message: str = strawberry.field(description="A human-readable explanation.")


@strawberry.type(description="A refused service ride call.")
class FamilyRideError:
    code: FamilyRideErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(description="The input field at fault (camelCase).")
    message: str = strawberry.field(description="A human-readable explanation.")


@strawberry.type(description="A refused card store call.")
class PaymentCardError:
    code: CardErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(description="The input field at fault (camelCase).")
    message: str = strawberry.field(description="A human-readable explanation.")


@strawberry.type(description="A refused admin migration call.")
class FamilyMigrationError:
    code: MigrationErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(description="The input field at fault (camelCase).")
    message: str = strawberry.field(description="A human-readable explanation.")
