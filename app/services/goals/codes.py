"""The goals domain's error codes (re-exported by `conditions` and `bonuses`)."""

from __future__ import annotations

import enum


class GoalErrorCode(enum.Enum):
    INVALID_CONDITIONS = "INVALID_CONDITIONS"  # not an object, or an unknown key
    INVALID_TARGET = "INVALID_TARGET"
    INVALID_PERIOD = "INVALID_PERIOD"
    INVALID_TIME_WINDOW = "INVALID_TIME_WINDOW"
    UNKNOWN_RIDE_CLASS = "UNKNOWN_RIDE_CLASS"
    UNKNOWN_PAYMENT_METHOD = "UNKNOWN_PAYMENT_METHOD"
    UNKNOWN_ORDER_KIND = "UNKNOWN_ORDER_KIND"
    INVALID_MIN_PRICE = "INVALID_MIN_PRICE"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    UNKNOWN_BONUS_TYPE = "UNKNOWN_BONUS_TYPE"
    INVALID_BONUS = "INVALID_BONUS"  # not an object, an unknown key or a bad value
    INVALID_TIMEZONE = "INVALID_TIMEZONE"
    INVALID_ORDER = "INVALID_ORDER"  # order facts that can't be true (price, completion time)
    # templates (app/services/goals/templates.py, texts.py)
    INVALID_ID = "INVALID_ID"  # a template id is a slug: ^[a-z0-9][a-z0-9-]{0,63}$
    INVALID_TEXT = "INVALID_TEXT"  # a localized text: bad locale, missing default, too long
    INVALID_REASON = "INVALID_REASON"  # the audit reason: too long or not printable
    TEMPLATE_EXISTS = "TEMPLATE_EXISTS"
    TEMPLATE_NOT_FOUND = "TEMPLATE_NOT_FOUND"
