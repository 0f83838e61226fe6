"""Admin side of personal goals beyond templates: assigning goals (one user, or a CSV file
with a dry run), looking up an order's processing outcome, and listing a user's goals."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import strawberry
from strawberry.file_uploads import Upload

from app.services.goals.assignment import AssignErrorCode, RowStatus, UploadErrorCode
from app.services.goals.assignment_csv import AssignmentFileError, RowError
from schema.goals.types import GoalProgressLogEntry, UserGoalNode

strawberry.enum(
    RowStatus,
    name="GoalAssignmentRowStatus",
    description="ASSIGNED (committed), VALID (a dry run would assign it), "
    "ALREADY_ASSIGNED (nothing to do), ERROR (see errorCode).",
)


@strawberry.enum(description="Why an assignment, a file or a row was refused.")
class GoalAssignErrorCode(enum.Enum):
    """Every code of AssignErrorCode, UploadErrorCode, AssignmentFileError and RowError (a
    test fails if they drift apart)."""

    UNKNOWN_USER = "UNKNOWN_USER"
    UNKNOWN_GOAL = "UNKNOWN_GOAL"
    GOAL_ARCHIVED = "GOAL_ARCHIVED"
    ALREADY_ASSIGNED = "ALREADY_ASSIGNED"
    INVALID_PERIOD = "INVALID_PERIOD"
    NOT_A_FILE = "NOT_A_FILE"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    MALFORMED_CSV = "MALFORMED_CSV"
    EMPTY_FILE = "EMPTY_FILE"
    TOO_MANY_ROWS = "TOO_MANY_ROWS"
    MISSING_COLUMN = "MISSING_COLUMN"
    UNKNOWN_COLUMN = "UNKNOWN_COLUMN"
    INVALID_USER_ID = "INVALID_USER_ID"
    INVALID_GOAL_ID = "INVALID_GOAL_ID"
    INVALID_DATE = "INVALID_DATE"
    END_BEFORE_START = "END_BEFORE_START"
    DUPLICATE_ROW = "DUPLICATE_ROW"


SOURCE_CODES: tuple[type[enum.Enum], ...] = (
    AssignErrorCode,
    UploadErrorCode,
    AssignmentFileError,
    RowError,
)


@strawberry.type
class GoalAssignError:
    code: GoalAssignErrorCode
    field: str | None
    message: str


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


@strawberry.type(description="The outcome of one CSV row.")
class GoalAssignmentRow:
    line: int
    status: RowStatus
    user_id: uuid.UUID | None
    goal_id: str | None
    error_code: GoalAssignErrorCode | None
    message: str | None
    user_goal_id: strawberry.ID | None


@strawberry.type
class GoalAssignmentSummary:
    rows: int
    valid: int
    assigned: int
    already_assigned: int
    errors: int


@strawberry.type
class GoalAssignmentUploadPayload:
    dry_run: bool
    batch_id: uuid.UUID | None = strawberry.field(
        description="The committed upload (also when the same file was uploaded before)."
    )
    summary: GoalAssignmentSummary | None
    rows: list[GoalAssignmentRow]
    errors: list[GoalAssignError]


@strawberry.type(description="An order as recorded, and what processing made of it.")
class GoalOrderLookup:
    order_id: str
    user_id: uuid.UUID
    kind: str
    status: str
    ride_class: str | None
    payment_method: str | None
    completed_at: datetime | None
    city_timezone: str
    recorded_at: datetime
    outcome: GoalProgressLogEntry | None = strawberry.field(
        description="The ledger row; null while the order waits to be processed."
    )
