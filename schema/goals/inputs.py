"""Personal goals: every input and payload, client (acknowledgements), admin (templates) and
assignment (one user, a CSV upload). The types they carry are in `types.py`, `admin.py` and
`assign.py`; their errors in `errors.py`."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.file_uploads import Upload
from strawberry.scalars import JSON

from schema.goals.admin import TEXT_DESCRIPTION, GoalTemplateNode
from schema.goals.assign import GoalAssignmentRow, GoalAssignmentSummary
from schema.goals.errors import AchievementsMarkSeenError, GoalAdminError, GoalAssignError
from schema.goals.types import UserGoalNode

# ---- client: acknowledgements ---------------------------------------------------------------


@strawberry.input
class GoalNotificationsMarkSeenInput:
    ids: list[strawberry.ID] = strawberry.field(
        description="GoalNotification ids (at most 100); unknown ids are ignored."
    )


@strawberry.type
class GoalNotificationsMarkSeenPayload:
    marked: int = strawberry.field(description="How many notifications became seen now.")
    errors: list[AchievementsMarkSeenError]


@strawberry.input
class AchievementsMarkSeenInput:
    goal_ids: list[strawberry.ID] = strawberry.field(
        description="User goal ids (at most 100); unknown ids are ignored."
    )


@strawberry.type
class AchievementsMarkSeenPayload:
    marked: int = strawberry.field(description="How many achievements became seen now.")
    has_unseen_achievements: bool
    errors: list[AchievementsMarkSeenError]


# ---- admin: templates -----------------------------------------------------------------------

REASON_DESCRIPTION = "Why, for the audit log: at most 500 printable characters."
TEMPLATE_ID_DESCRIPTION = "The template's slug (a GoalTemplate global id is accepted too)."
CONDITIONS_DESCRIPTION = (
    'What an order must meet to count, e.g. {"target": 5, "periodDays": 7, "rideClasses": '
    '["comfort"], "timeWindow": {"start": "22:00", "end": "06:00"}} (see docs/goals.md).'
)
BONUS_DESCRIPTION = (
    'What the goal gives, e.g. {"type": "PROMOCODE", "kind": "PERCENT", "value": 15, '
    '"validityDays": 30}, {"type": "WALLET", "amountMinor": 30000, "currency": "RUB"} or '
    '{"type": "CASHBACK", "percent": 10, "days": 14}.'
)


@strawberry.input(description="A new goal template.")
class GoalTemplateCreateInput:
    id: str = strawberry.field(
        description="A stable slug: 1-64 of a-z, 0-9 and '-', starting with a-z or 0-9."
    )
    default_locale: str = strawberry.field(
        default="en", description="The locale every text must have, e.g. en or ru."
    )
    title: JSON = strawberry.field(description=f"{TEXT_DESCRIPTION}; at most 120 characters.")
    description: JSON | None = strawberry.field(
        default=None, description=f"{TEXT_DESCRIPTION}; at most 1000 characters; optional."
    )
    details: JSON | None = strawberry.field(
        default=None,
        description="A map locale -> 1-10 lines of at most 200 characters; optional.",
    )
    button_text: JSON | None = strawberry.field(
        default=None,
        description=(
            f'{TEXT_DESCRIPTION}; at most 40 characters; omitted: {{"<defaultLocale>": "OK"}}.'
        ),
    )
    conditions: JSON = strawberry.field(description=CONDITIONS_DESCRIPTION)
    bonus: JSON = strawberry.field(description=BONUS_DESCRIPTION)
    reason: str | None = strawberry.field(default=None, description=REASON_DESCRIPTION)


@strawberry.input(
    description=(
        "Changes to a goal template; an omitted (or null) field stays as it is, the id never "
        "changes. Goals already assigned keep the conditions and bonus they were given; text "
        "changes show on them too."
    )
)
class GoalTemplateUpdateInput:
    id: str = strawberry.field(description=TEMPLATE_ID_DESCRIPTION)
    default_locale: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="A new default locale; every non-empty text must have it.",
    )
    title: JSON | None = strawberry.field(default=strawberry.UNSET, description="New titles.")
    description: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="New descriptions; {} removes them."
    )
    details: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="New detail lines; {} removes them."
    )
    button_text: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="New button texts."
    )
    conditions: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"New conditions (for later assignments). {CONDITIONS_DESCRIPTION}",
    )
    bonus: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"A new bonus (for later assignments). {BONUS_DESCRIPTION}",
    )
    reason: str | None = strawberry.field(default=None, description=REASON_DESCRIPTION)


@strawberry.input(description="A goal template to archive or unarchive.")
class GoalTemplateArchiveInput:
    id: str = strawberry.field(description=TEMPLATE_ID_DESCRIPTION)
    reason: str | None = strawberry.field(default=None, description=REASON_DESCRIPTION)


@strawberry.type(description="The result of `goalTemplateCreate`, `goalTemplateUpdate` and co.")
class GoalTemplatePayload:
    template: GoalTemplateNode | None = strawberry.field(
        default=None, description="The template as it is now; null when refused."
    )
    errors: list[GoalAdminError] = strawberry.field(description="Why it was refused; or empty.")


# ---- admin: assignment ----------------------------------------------------------------------


@strawberry.input
class GoalAssignInput:
    user_id: strawberry.ID = strawberry.field(description="A User global id or a raw UUID.")
    goal_id: str = strawberry.field(description="The goal template's slug.")
    starts_at: datetime | None = strawberry.field(
        default=None, description="Not before this time (the period starts at activation)."
    )
    ends_at: datetime | None = strawberry.field(
        default=None, description="A deadline replacing the template's period end."
    )
    notify: bool = strawberry.field(default=False, description="Create an in-app notification.")


@strawberry.type
class GoalAssignPayload:
    user_goal: UserGoalNode | None
    errors: list[GoalAssignError]


@strawberry.input
class GoalAssignmentUploadInput:
    file: Upload = strawberry.field(
        description="CSV, UTF-8, header `user_id,goal_id[,starts_at,ends_at]`."
    )
    dry_run: bool = strawberry.field(
        default=True, description="Validate and report only (the default); false commits."
    )
    notify: bool = strawberry.field(default=False, description="Notify each assigned user.")


@strawberry.type
class GoalAssignmentUploadPayload:
    dry_run: bool
    batch_id: uuid.UUID | None = strawberry.field(
        description="The committed upload (also when the same file was uploaded before)."
    )
    summary: GoalAssignmentSummary | None
    rows: list[GoalAssignmentRow]
    errors: list[GoalAssignError]
