"""The promotions domain's error codes; each enum is the GraphQL enum too (schema/promotions)."""

from __future__ import annotations

import enum


class PromotionErrorCode(enum.Enum):
    """What a user's promotion mutations (start, reward, accept) refuse, and why."""

    NOT_FOUND = "NOT_FOUND"  # no such promotion (or not one offered to the caller)
    NO_PRE_OFFER = "NO_PRE_OFFER"  # no newcomer pre-offer for this promotion
    PROMOTION_INACTIVE = "PROMOTION_INACTIVE"
    PROMOTIONS_DISABLED = "PROMOTIONS_DISABLED"  # the geo flag of the user's region is off
    NOT_A_NEWCOMER = "NOT_A_NEWCOMER"  # a promotion of the user's was REWARDED before
    ALREADY_STARTED = "ALREADY_STARTED"
    NOT_STARTED = "NOT_STARTED"
    NOT_COMPLETED = "NOT_COMPLETED"  # the challenge is still running
    CHALLENGE_OVER = "CHALLENGE_OVER"  # EXPIRED: the window closed short of the target
    REWARD_EXPIRED = "REWARD_EXPIRED"  # the claim window closed
    ALREADY_REWARDED = "ALREADY_REWARDED"


class PromotionAdminErrorCode(enum.Enum):
    """What the admin and service mutations refuse (promotions, geo config, pre-offers)."""

    INVALID_KEY = "INVALID_KEY"  # a promotion key is a slug: ^[a-z0-9][a-z0-9_-]{0,63}$
    KEY_TAKEN = "KEY_TAKEN"
    NOT_FOUND = "NOT_FOUND"
    INVALID_TITLE = "INVALID_TITLE"
    INVALID_TARGET = "INVALID_TARGET"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    INVALID_DAYS = "INVALID_DAYS"
    INVALID_CONDITIONS = "INVALID_CONDITIONS"
    INVALID_PRODUCT = "INVALID_PRODUCT"
    INVALID_RATE = "INVALID_RATE"
    INVALID_REGION = "INVALID_REGION"
    INVALID_USER = "INVALID_USER"
    TOO_MANY_ROWS = "TOO_MANY_ROWS"


class PreOfferOutcome(enum.Enum):
    """What one row of a pre-offer import did."""

    CREATED = "CREATED"
    UNCHANGED = "UNCHANGED"  # this user's pre-offer for this key is in already
    REJECTED = "REJECTED"


class PreOfferRejection(enum.Enum):
    """Why one row of a pre-offer import was refused; the other rows still go in."""

    UNKNOWN_PROMOTION = "UNKNOWN_PROMOTION"
    UNKNOWN_USER = "UNKNOWN_USER"
    DUPLICATE_USER = "DUPLICATE_USER"  # the same user and key twice in one import
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    INVALID_RATE = "INVALID_RATE"
    INVALID_REGION = "INVALID_REGION"
    CONFLICT = "CONFLICT"  # in already with other terms: a re-import never changes them


class IneligibleReason(enum.Enum):
    """Why `viewer.promotion` shows a promotion the user can't start (or no split)."""

    PROMOTION_INACTIVE = "PROMOTION_INACTIVE"
    PROMOTIONS_DISABLED = "PROMOTIONS_DISABLED"
    NOT_A_NEWCOMER = "NOT_A_NEWCOMER"
