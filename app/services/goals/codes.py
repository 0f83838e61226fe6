"""The goals domain's error codes; each enum is the GraphQL enum too (`schema/goals/errors.py`).

`GoalErrorCode` is re-exported by `conditions` and `bonuses`.
"""

from __future__ import annotations

import enum


class GoalErrorCode(enum.Enum):
    """Template rules: conditions, bonus, texts, and the admin's template mutations."""

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
    # Order facts are checked by the orders domain (OrderErrorCode) now; these two stay in
    # the published GoalAdminErrorCode enum.
    INVALID_TIMEZONE = "INVALID_TIMEZONE"
    INVALID_ORDER = "INVALID_ORDER"
    # templates (app/services/goals/templates.py, texts.py)
    INVALID_ID = "INVALID_ID"  # a template id is a slug: ^[a-z0-9][a-z0-9-]{0,63}$
    INVALID_TEXT = "INVALID_TEXT"  # a localized text: bad locale, missing default, too long
    INVALID_REASON = "INVALID_REASON"  # the audit reason: too long or not printable
    TEMPLATE_EXISTS = "TEMPLATE_EXISTS"
    TEMPLATE_NOT_FOUND = "TEMPLATE_NOT_FOUND"


class AssignErrorCode(enum.Enum):
    """Why an assignment (`goalAssign`), an uploaded file or one of its rows was refused."""

    # one assignment (assignment.py), also reported per CSV row
    UNKNOWN_USER = "UNKNOWN_USER"
    UNKNOWN_GOAL = "UNKNOWN_GOAL"
    GOAL_ARCHIVED = "GOAL_ARCHIVED"
    ALREADY_ASSIGNED = "ALREADY_ASSIGNED"
    INVALID_PERIOD = "INVALID_PERIOD"
    # the upload itself (read by the resolver)
    NOT_A_FILE = "NOT_A_FILE"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    # a file refused as a whole (assignment_csv.py)
    MALFORMED_CSV = "MALFORMED_CSV"
    EMPTY_FILE = "EMPTY_FILE"
    TOO_MANY_ROWS = "TOO_MANY_ROWS"
    MISSING_COLUMN = "MISSING_COLUMN"
    UNKNOWN_COLUMN = "UNKNOWN_COLUMN"
    # one row that can't be assigned; the other rows still can (assignment_csv.py)
    INVALID_USER_ID = "INVALID_USER_ID"
    INVALID_GOAL_ID = "INVALID_GOAL_ID"
    INVALID_DATE = "INVALID_DATE"
    END_BEFORE_START = "END_BEFORE_START"
    DUPLICATE_ROW = "DUPLICATE_ROW"


class MarkSeenErrorCode(enum.Enum):
    """Why notifications or achievements could not be acknowledged."""

    TOO_MANY_IDS = "TOO_MANY_IDS"
