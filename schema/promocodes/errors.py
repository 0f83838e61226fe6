"""Promocodes' error codes in the API: the service's enums, registered once, and their types.

The client is told of a refused code what `app.services.promocodes.errors.client_code` says
(NOT_ASSIGNED_TO_USER looks like NOT_FOUND); admins see the true reason in the attempt log.
"""

from __future__ import annotations

import strawberry

from app.services.promocodes.errors import PromocodeErrorCode, PurchaseErrorCode

strawberry.enum(
    PurchaseErrorCode,
    name="PurchaseErrorCode",
    description=(
        "Why a quote or purchase mutation was refused. Promocode rejections (field `code`): "
        "NOT_FOUND (no such code, or not one available to you), INACTIVE, NOT_STARTED, "
        "EXPIRED, EXHAUSTED (used up), ALREADY_USED_BY_USER (you used it as often as allowed), "
        "PLAN_NOT_ELIGIBLE, SUBSCRIBER_NOT_ELIGIBLE (not for your subscription status), "
        "USER_NOT_ACTIVE, RATE_LIMITED (too many rejected codes: wait `retryAfter` seconds). "
        "Purchases: UNKNOWN_PLAN (field `planId`), NOT_FOUND (field `purchaseId`: no such "
        "purchase), INVALID_STATE (a confirmed purchase can't fail, a failed one can't be "
        "confirmed), RESERVATION_EXPIRED (the code's reservation lapsed and it is used up: "
        "refund), INVALID_REASON, INVALID_IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_REUSED (the key was "
        "used for a different request)."
    ),
)
strawberry.enum(
    PromocodeErrorCode,
    name="PromocodeErrorCode",
    description=(
        "Why an admin promocode mutation was refused (`field` names the input at fault). "
        "INVALID_CODE: empty, over 64 characters, or not A-Z 0-9 '-' '_'. CODE_TAKEN: the code "
        "exists (case-insensitively). INVALID_VALUE: percent outside 1-100, a negative or zero "
        "amount, or a fixed price above an eligible plan's price. INVALID_CURRENCY: missing, "
        "unsupported, not the plans' currency, or given for a PERCENT/FREE code. "
        "INVALID_DESCRIPTION, INVALID_REASON: too long or not printable. INVALID_PERIOD: "
        "validUntil not after validFrom, in the past, or without an offset. INVALID_LIMIT: "
        "maxUses, maxUsesPerUser, trialDays or discountedCycles out of range. TOO_MANY_PLANS, "
        "UNKNOWN_PLAN, PLAN_NOT_ELIGIBLE (a plan not on sale). NOT_FOUND: no such object "
        "(`field` says which; an id of another type counts as none). "
        "NOT_GRANTABLE: a PUBLIC code can't be granted. INVALID_GRANTEES: no, too many or "
        "malformed user/group ids. INVALID_SLUG, SLUG_TAKEN, INVALID_NAME, INVALID_PRICE, "
        "INVALID_DURATION: plan fields. INVALID_GENERATE_REQUEST: a bulk request that can't be "
        "met (count, length or prefix). NO_USERS, TOO_MANY_USERS: `promocodeApply`'s userIds."
    ),
)


@strawberry.type(description="A refused quote or purchase mutation: what was wrong, and where.")
class PurchaseError:
    code: PurchaseErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(
        description="The input field at fault (`code`, `planId`, `purchaseId`, `reason`, "
        "`idempotencyKey`); null for the request as a whole."
    )
    message: str = strawberry.field(description="A human-readable explanation.")
    retry_after: int | None = strawberry.field(
        default=None,
        description="Seconds to wait before trying a code again (RATE_LIMITED only), if known.",
    )


@strawberry.type(description="A refused admin promocode mutation: what was wrong, and where.")
class PromocodeError:
    code: PromocodeErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(
        description="The input field at fault (camelCase); null for the request as a whole."
    )
    message: str = strawberry.field(description="A human-readable explanation, for operators.")
