"""The promocodes domain's error codes: one enum per API enum, and what a client may see.

`PurchaseErrorCode` covers the client's and the payment system's mutations (quotes,
purchases, the payment result); `PromocodeErrorCode` the admin's. The API registers these very
enums (`schema/promocodes/errors.py`), so a code added here is a code in the API.

A refused code has a true reason (`Rejection`, kept in the attempt log for admins) and a
client code. `CLIENT_REJECTIONS` is the one place the two differ: a code that exists but was
never given to the caller is shown as NOT_FOUND, so codes can't be enumerated.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from app.models.promocodes import Rejection
from app.services.idempotency import IdempotencyErrorCode


class PurchaseErrorCode(enum.Enum):
    # A refused promocode (field `code`): the client's view of a Rejection.
    NOT_FOUND = "NOT_FOUND"  # also: no such purchase (field `purchaseId`)
    INACTIVE = "INACTIVE"
    NOT_STARTED = "NOT_STARTED"
    EXPIRED = "EXPIRED"
    EXHAUSTED = "EXHAUSTED"
    ALREADY_USED_BY_USER = "ALREADY_USED_BY_USER"
    PLAN_NOT_ELIGIBLE = "PLAN_NOT_ELIGIBLE"
    SUBSCRIBER_NOT_ELIGIBLE = "SUBSCRIBER_NOT_ELIGIBLE"
    USER_NOT_ACTIVE = "USER_NOT_ACTIVE"
    RATE_LIMITED = "RATE_LIMITED"
    # Purchases and the payment result.
    UNKNOWN_PLAN = "UNKNOWN_PLAN"
    INVALID_STATE = "INVALID_STATE"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"
    INVALID_REASON = "INVALID_REASON"
    INVALID_IDEMPOTENCY_KEY = "INVALID_IDEMPOTENCY_KEY"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


class PromocodeErrorCode(enum.Enum):
    # Codes and their offer.
    INVALID_CODE = "INVALID_CODE"
    CODE_TAKEN = "CODE_TAKEN"
    INVALID_VALUE = "INVALID_VALUE"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    INVALID_DESCRIPTION = "INVALID_DESCRIPTION"
    INVALID_PERIOD = "INVALID_PERIOD"
    INVALID_LIMIT = "INVALID_LIMIT"
    TOO_MANY_PLANS = "TOO_MANY_PLANS"
    UNKNOWN_PLAN = "UNKNOWN_PLAN"
    PLAN_NOT_ELIGIBLE = "PLAN_NOT_ELIGIBLE"
    NOT_FOUND = "NOT_FOUND"
    # Grants.
    NOT_GRANTABLE = "NOT_GRANTABLE"
    INVALID_GRANTEES = "INVALID_GRANTEES"
    INVALID_REASON = "INVALID_REASON"
    # Plans.
    INVALID_SLUG = "INVALID_SLUG"
    SLUG_TAKEN = "SLUG_TAKEN"
    INVALID_NAME = "INVALID_NAME"
    INVALID_PRICE = "INVALID_PRICE"
    INVALID_DURATION = "INVALID_DURATION"
    # Bulk generation and admin-apply.
    INVALID_GENERATE_REQUEST = "INVALID_GENERATE_REQUEST"
    NO_USERS = "NO_USERS"
    TOO_MANY_USERS = "TOO_MANY_USERS"


CLIENT_REJECTIONS: Mapping[Rejection, PurchaseErrorCode] = MappingProxyType(
    {
        Rejection.NOT_FOUND: PurchaseErrorCode.NOT_FOUND,
        Rejection.INACTIVE: PurchaseErrorCode.INACTIVE,
        Rejection.NOT_STARTED: PurchaseErrorCode.NOT_STARTED,
        Rejection.EXPIRED: PurchaseErrorCode.EXPIRED,
        Rejection.EXHAUSTED: PurchaseErrorCode.EXHAUSTED,
        Rejection.ALREADY_USED_BY_USER: PurchaseErrorCode.ALREADY_USED_BY_USER,
        # Anti-enumeration: a code that isn't the caller's looks like no code at all.
        Rejection.NOT_ASSIGNED_TO_USER: PurchaseErrorCode.NOT_FOUND,
        Rejection.PLAN_NOT_ELIGIBLE: PurchaseErrorCode.PLAN_NOT_ELIGIBLE,
        Rejection.SUBSCRIBER_NOT_ELIGIBLE: PurchaseErrorCode.SUBSCRIBER_NOT_ELIGIBLE,
        Rejection.USER_NOT_ACTIVE: PurchaseErrorCode.USER_NOT_ACTIVE,
        Rejection.RATE_LIMITED: PurchaseErrorCode.RATE_LIMITED,
    }
)

IDEMPOTENCY_ERRORS: Mapping[IdempotencyErrorCode, PurchaseErrorCode] = MappingProxyType(
    {
        IdempotencyErrorCode.INVALID_IDEMPOTENCY_KEY: PurchaseErrorCode.INVALID_IDEMPOTENCY_KEY,
        IdempotencyErrorCode.IDEMPOTENCY_KEY_REUSED: PurchaseErrorCode.IDEMPOTENCY_KEY_REUSED,
    }
)


def client_code(reason: Rejection) -> PurchaseErrorCode:
    """What the caller is told for a code refused for `reason` (see CLIENT_REJECTIONS)."""
    return CLIENT_REJECTIONS[reason]


def purchase_code(code: IdempotencyErrorCode) -> PurchaseErrorCode:
    """An idempotency refusal of `purchaseCreate` as a purchase error."""
    return IDEMPOTENCY_ERRORS[code]
