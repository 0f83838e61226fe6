"""The promotions domain's error types. The service enums (`app/services/promotions/codes.py`)
are the GraphQL enums: registered here once, under their API names."""

from __future__ import annotations

import strawberry

from app.models.promotions import PromotionUserStatus, RideReason
from app.services.promotions.codes import (
    IneligibleReason,
    PreOfferOutcome,
    PreOfferRejection,
    PromotionAdminErrorCode,
    PromotionErrorCode,
)

strawberry.enum(
    PromotionErrorCode,
    name="PromotionErrorCode",
    description=(
        "Why a promotion mutation was refused. NOT_FOUND: no such promotion. NO_PRE_OFFER: "
        "the user has no offer for it. PROMOTION_INACTIVE: it is not running. "
        "PROMOTIONS_DISABLED: not available in the user's region. NOT_A_NEWCOMER: the user "
        "took part in a promotion before (nobody is a newcomer twice). ALREADY_STARTED: a "
        "promotion can't be retried. NOT_STARTED. NOT_COMPLETED: the challenge is still "
        "running. CHALLENGE_OVER: the challenge window closed short of the target (the app "
        'shows "the challenge is over"). REWARD_EXPIRED: the claim window closed (the app '
        'shows "reward expired"). ALREADY_REWARDED: the reward was accepted (`promotionReward` '
        "only; accepting again returns the same application)."
    ),
)
strawberry.enum(
    PromotionAdminErrorCode,
    name="PromotionAdminErrorCode",
    description=(
        "Why an admin or service promotion mutation was refused (`field` names the input). "
        "INVALID_KEY: a key is 1-64 of a-z, 0-9, '-' and '_'. KEY_TAKEN. NOT_FOUND. "
        "INVALID_TITLE: 1-200 printable characters. INVALID_TARGET: 1-1000 rides. "
        "INVALID_AMOUNT, INVALID_CURRENCY, INVALID_DAYS (1-365), INVALID_CONDITIONS (JSON, at "
        "most 4 KiB), INVALID_PRODUCT, INVALID_RATE (a decimal percent in (0, 100], two "
        "decimals at most), INVALID_REGION (MX or MX-CMX), TOO_MANY_ROWS (1000 per import)."
    ),
)
strawberry.enum(
    PreOfferOutcome,
    name="PreOfferImportOutcome",
    description=(
        "CREATED: the pre-offer is in. UNCHANGED: it was in already with these terms "
        "(re-imports change nothing). REJECTED: see `reason`."
    ),
)
strawberry.enum(
    PreOfferRejection,
    name="PreOfferRejection",
    description=(
        "Why one import row was refused. UNKNOWN_PROMOTION: no promotion has the key. "
        "UNKNOWN_USER: not a user id, or no such user. DUPLICATE_USER: the same user and key "
        "earlier in this import. INVALID_AMOUNT, INVALID_CURRENCY, INVALID_RATE, "
        "INVALID_REGION: a bad value. CONFLICT: in already with other terms (never rewritten)."
    ),
)
strawberry.enum(
    IneligibleReason,
    name="PromotionIneligibleReason",
    description=(
        "Why the user can't start the promotion shown. PROMOTION_INACTIVE: not running. "
        "PROMOTIONS_DISABLED: not in the user's region. NOT_A_NEWCOMER: a promotion of the "
        "user's was rewarded before."
    ),
)
strawberry.enum(
    PromotionUserStatus,
    name="PromotionStatus",
    description=(
        "A user's run at a promotion. STARTED: the challenge is running. COMPLETED: the target "
        "was reached; the reward can be claimed until `claimEndsAt`. REWARDED: the reward was "
        "accepted. EXPIRED: the challenge window closed short of the target. REWARD_EXPIRED: "
        "the reward was not claimed in time. Deadlines apply as of the read, even before the "
        "periodic job stores them."
    ),
)
strawberry.enum(
    RideReason,
    name="PromotionRideReason",
    description=(
        "Why a ride counted (COUNTED) or not. NOT_A_RIDE: another kind of order. NOT_COMPLETE: "
        "not (yet) completed. CURRENCY_MISMATCH: paid in another currency than the "
        "promotion's. BELOW_MINIMUM: under the minimum amount. OUTSIDE_WINDOW: completed "
        "before the start or after the challenge window. TARGET_REACHED: the challenge was "
        "complete already."
    ),
)


@strawberry.type(description="A refused promotion mutation: what was wrong, and where.")
class PromotionError:
    code: PromotionErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(description="The input field at fault, if one is.")
    message: str = strawberry.field(description="A human-readable explanation.")


@strawberry.type(description="A refused admin or service promotion mutation.")
class PromotionAdminError:
    code: PromotionAdminErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(description="The input field at fault (camelCase).")
    message: str = strawberry.field(description="A human-readable explanation, for operators.")
