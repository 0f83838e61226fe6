"""The family domain's error codes; each enum is the GraphQL enum too (schema/family)."""

from __future__ import annotations

import enum


class FamilyErrorCode(enum.Enum):
    """What the client's family mutations refuse, and why (`field` names the input)."""

    NOT_FOUND = "NOT_FOUND"  # no such family, or not one the caller belongs to
    NOT_OWNER = "NOT_OWNER"  # only the owner changes members, limits and cards
    ALREADY_IN_FAMILY = "ALREADY_IN_FAMILY"  # the user owns or belongs to a family already
    ALREADY_MEMBER = "ALREADY_MEMBER"  # the user is a member of this family already
    OWNER_IS_MEMBER = "OWNER_IS_MEMBER"  # the owner can't be added, removed or limited as one
    USER_NOT_FOUND = "USER_NOT_FOUND"  # no active user has that phone number
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"  # not a member of this family
    FAMILY_FULL = "FAMILY_FULL"
    OWNER_CANNOT_LEAVE = "OWNER_CANNOT_LEAVE"  # the owner deletes the family instead
    RIDE_IN_PROGRESS = "RIDE_IN_PROGRESS"  # a member's ride holds part of a limit
    INVALID_NAME = "INVALID_NAME"
    INVALID_COLOR = "INVALID_COLOR"
    INVALID_PHONE = "INVALID_PHONE"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    CARD_NOT_FOUND = "CARD_NOT_FOUND"  # not a card of the owner's
    MAIN_CARD_NOT_SHARED = "MAIN_CARD_NOT_SHARED"
    TOO_MANY_CARDS = "TOO_MANY_CARDS"
    NO_PORTAL_ACCOUNT = "NO_PORTAL_ACCOUNT"  # a migrated family takes passport users only
    PASSPORT_UNAVAILABLE = "PASSPORT_UNAVAILABLE"  # passport failed: nothing was changed
    TOO_MANY_IDS = "TOO_MANY_IDS"


class FamilyRideErrorCode(enum.Enum):
    """What the service caller's ride calls refuse (a ride that doesn't fit is not an error:
    it is `available: false`)."""

    NOT_FOUND = "NOT_FOUND"  # no such family
    NOT_A_MEMBER = "NOT_A_MEMBER"  # the user is not in the family
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"  # not the currency of the member's limit
    INVALID_ORDER_ID = "INVALID_ORDER_ID"
    INVALID_TTL = "INVALID_TTL"
    ORDER_ID_REUSED = "ORDER_ID_REUSED"  # the order was held or charged with other terms
    HOLD_NOT_FOUND = "HOLD_NOT_FOUND"
    ALREADY_CHARGED = "ALREADY_CHARGED"  # a charged ride's hold can't be released


class RideRefusal(enum.Enum):
    """Why `familyRideCheck` answered `available: false`."""

    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"  # the fare is more than what remains in the frame


class CardErrorCode(enum.Enum):
    """What the card store's `paymentCardUpsert` / `paymentCardRemove` refuse."""

    INVALID_CARD_ID = "INVALID_CARD_ID"
    INVALID_USER = "INVALID_USER"
    INVALID_BRAND = "INVALID_BRAND"
    INVALID_LAST4 = "INVALID_LAST4"
    INVALID_EXPIRY = "INVALID_EXPIRY"
    CARD_OF_ANOTHER_USER = "CARD_OF_ANOTHER_USER"  # the id names another user's card
    NOT_FOUND = "NOT_FOUND"


class MigrationErrorCode(enum.Enum):
    """What the admin's migration mutations refuse."""

    PASSPORT_OFF = "PASSPORT_OFF"  # no PASSPORT_URL: migration is off
    NOT_FOUND = "NOT_FOUND"
    ALREADY_MIGRATED = "ALREADY_MIGRATED"
    IN_FLIGHT = "IN_FLIGHT"  # PENDING or RUNNING already
    INVALID_LIMIT = "INVALID_LIMIT"
