"""The goals domain's error types. The service enums (`app/services/goals/codes.py`) are the
GraphQL enums: registered here once, under their API names."""

from __future__ import annotations

import strawberry

from app.services.goals.codes import AssignErrorCode, GoalErrorCode, MarkSeenErrorCode

strawberry.enum(
    GoalErrorCode,
    name="GoalAdminErrorCode",
    description=(
        "Why an admin goal mutation was refused (`field` names the input at fault, e.g. "
        "`conditions.timeWindow.start`, `bonus.type`, `title.ru`). INVALID_CONDITIONS: "
        "conditions not an object, or an unknown key. INVALID_TARGET: target not 1-1000. "
        "INVALID_PERIOD: periodDays not 1-366, both or neither of periodDays and "
        "startsAt/endsAt, endsAt not after startsAt or in the past, a time without offset. "
        "INVALID_TIME_WINDOW: not HH:MM 00:00-23:59, or start equal to end. "
        "UNKNOWN_RIDE_CLASS, UNKNOWN_PAYMENT_METHOD, UNKNOWN_ORDER_KIND, UNKNOWN_BONUS_TYPE: a "
        "value not in the list. INVALID_MIN_PRICE, INVALID_CURRENCY, INVALID_BONUS: a bad "
        "amount, currency or bonus field. INVALID_TIMEZONE, INVALID_ORDER: order facts. "
        "INVALID_ID: a template id is 1-64 of a-z, 0-9 and '-'. INVALID_TEXT: a bad locale, "
        "no text for the default locale, a text too long, empty or not printable, too many "
        "locales or lines. INVALID_REASON: over 500 characters or not printable. "
        "TEMPLATE_EXISTS: the id is taken (archived templates keep theirs). "
        "TEMPLATE_NOT_FOUND: no such template."
    ),
)
strawberry.enum(
    AssignErrorCode,
    name="GoalAssignErrorCode",
    description="Why an assignment, a file or a row was refused.",
)
strawberry.enum(
    MarkSeenErrorCode,
    name="AchievementsMarkSeenErrorCode",
    description="Why achievements could not be acknowledged.",
)


@strawberry.type(description="A refused admin goal mutation: what was wrong, and where.")
class GoalAdminError:
    code: GoalErrorCode = strawberry.field(description="What went wrong.")
    field: str | None = strawberry.field(
        description=(
            "The input field at fault as a dotted camelCase path (`conditions.target`, "
            "`details.en.2`); null for the request as a whole."
        )
    )
    message: str = strawberry.field(description="A human-readable explanation, for operators.")


@strawberry.type
class GoalAssignError:
    code: AssignErrorCode
    field: str | None
    message: str


@strawberry.type
class AchievementsMarkSeenError:
    code: MarkSeenErrorCode
    field: str | None
    message: str
