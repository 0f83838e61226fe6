"""Admin side of personal goals beyond templates: a CSV upload's row outcomes and summary, and
an order's processing outcome, with their builders. Inputs and payloads are in `inputs.py`,
the error codes (`GoalAssignErrorCode`) in `errors.py`."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry import relay

from app.models.orders import Order
from app.services.goals.assignment import RowOutcome, RowStatus, UploadResult
from app.services.goals.codes import AssignErrorCode
from app.services.goals.reading import LogEntry
from schema.goals.types import GoalProgressLogEntry, log_entry_node

strawberry.enum(
    RowStatus,
    name="GoalAssignmentRowStatus",
    description="ASSIGNED (committed), VALID (a dry run would assign it), "
    "ALREADY_ASSIGNED (nothing to do), ERROR (see errorCode).",
)


@strawberry.type(description="The outcome of one CSV row.")
class GoalAssignmentRow:
    line: int
    status: RowStatus
    user_id: uuid.UUID | None
    goal_id: str | None
    error_code: AssignErrorCode | None
    message: str | None
    user_goal_id: strawberry.ID | None


@strawberry.type
class GoalAssignmentSummary:
    rows: int
    valid: int
    assigned: int
    already_assigned: int
    errors: int


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


def assignment_row(row: RowOutcome) -> GoalAssignmentRow:
    return GoalAssignmentRow(
        line=row.line,
        status=row.status,
        user_id=row.user_id,
        goal_id=row.goal_id,
        error_code=row.error,
        message=row.message,
        user_goal_id=None
        if row.user_goal is None
        else strawberry.ID(relay.to_base64("UserGoal", str(row.user_goal.id))),
    )


def assignment_summary(result: UploadResult) -> GoalAssignmentSummary:
    return GoalAssignmentSummary(
        rows=len(result.rows),
        valid=result.count(RowStatus.VALID),
        assigned=result.count(RowStatus.ASSIGNED),
        already_assigned=result.count(RowStatus.ALREADY_ASSIGNED),
        errors=result.count(RowStatus.ERROR),
    )


def order_lookup(order: Order, entry: LogEntry | None) -> GoalOrderLookup:
    return GoalOrderLookup(
        order_id=order.order_id,
        user_id=order.user_id,
        kind=order.kind,
        status=order.status,
        ride_class=order.ride_class,
        payment_method=order.payment_method,
        completed_at=order.completed_at,
        city_timezone=order.city_timezone,
        recorded_at=order.created_at,
        outcome=None if entry is None else log_entry_node(entry),
    )
