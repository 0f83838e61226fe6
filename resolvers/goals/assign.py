"""Admin resolvers for assigning goals, order lookups and a user's goals (ADMIN only)."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from sqlalchemy import select
from starlette.datastructures import UploadFile
from strawberry import relay
from strawberry.types import Info

from app.models.base import utcnow
from app.models.goals import UserGoal
from app.models.identity import Role
from app.models.orders import Order
from app.services.errors import DomainError
from app.services.goals import reading
from app.services.goals.assignment import (
    AssignErrorCode,
    Assignment,
    RowOutcome,
    RowStatus,
    UploadErrorCode,
    UploadResult,
    assign_goal,
    upload_assignments,
)
from app.services.goals.assignment_csv import parse_assignment_csv
from schema.context import Context
from schema.goals.assign import (
    GoalAssignError,
    GoalAssignErrorCode,
    GoalAssignInput,
    GoalAssignmentRow,
    GoalAssignmentSummary,
    GoalAssignmentUploadInput,
    GoalAssignmentUploadPayload,
    GoalAssignPayload,
    GoalOrderLookup,
)
from schema.goals.types import UserGoalNode, goal_node, log_entry_node
from schema.ids import node_uuid
from schema.permissions import require

InfoT = Info[Context, Any]
MAX_USER_GOALS = 200


def _error(exc: DomainError) -> GoalAssignError:
    return GoalAssignError(
        code=GoalAssignErrorCode[exc.code.name], field=exc.field, message=exc.message
    )


def _user_uuid(raw: strawberry.ID, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return node_uuid(raw, "User", field, AssignErrorCode.UNKNOWN_USER)


async def goal_assign(info: InfoT, data: GoalAssignInput) -> GoalAssignPayload:
    principal = await require(info, Role.ADMIN)
    try:
        goal = await assign_goal(
            info.context.session,
            Assignment(
                _user_uuid(data.user_id, "userId"), data.goal_id, data.starts_at, data.ends_at
            ),
            actor=principal.key,
            now=utcnow(),
            notify=data.notify,
        )
    except DomainError as exc:
        return GoalAssignPayload(user_goal=None, errors=[_error(exc)])
    views = await reading.goals_by_ids(info.context.session, [goal.id], now=utcnow())
    return GoalAssignPayload(user_goal=goal_node(views[goal.id], None), errors=[])


async def _read_upload(info: InfoT, upload: object) -> bytes:
    if not isinstance(upload, UploadFile):  # strawberry's Upload scalar accepts any value
        raise DomainError(UploadErrorCode.NOT_A_FILE, "Send the CSV as a multipart file.", "file")
    limit = info.context.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise DomainError(
            UploadErrorCode.FILE_TOO_LARGE, f"The file is over {limit} bytes.", "file"
        )
    return data


async def goal_assignment_upload(
    info: InfoT, data: GoalAssignmentUploadInput
) -> GoalAssignmentUploadPayload:
    principal = await require(info, Role.ADMIN)
    try:
        content = await _read_upload(info, data.file)
        parsed = parse_assignment_csv(content)
        result = await upload_assignments(
            info.context.session,
            parsed,
            filename=getattr(data.file, "filename", None) or "upload.csv",
            dry_run=data.dry_run,
            notify=data.notify,
            actor=principal.key,
            now=utcnow(),
        )
    except DomainError as exc:
        return GoalAssignmentUploadPayload(
            dry_run=data.dry_run, batch_id=None, summary=None, rows=[], errors=[_error(exc)]
        )
    return _upload_payload(result)


def _upload_payload(result: UploadResult) -> GoalAssignmentUploadPayload:
    return GoalAssignmentUploadPayload(
        dry_run=result.dry_run,
        batch_id=result.batch.id if result.batch is not None else None,
        summary=GoalAssignmentSummary(
            rows=len(result.rows),
            valid=result.count(RowStatus.VALID),
            assigned=result.count(RowStatus.ASSIGNED),
            already_assigned=result.count(RowStatus.ALREADY_ASSIGNED),
            errors=result.count(RowStatus.ERROR),
        ),
        rows=[_row(row) for row in result.rows],
        errors=[],
    )


def _row(row: RowOutcome) -> GoalAssignmentRow:
    return GoalAssignmentRow(
        line=row.line,
        status=row.status,
        user_id=row.user_id,
        goal_id=row.goal_id,
        error_code=GoalAssignErrorCode[row.error] if row.error else None,
        message=row.message,
        user_goal_id=None
        if row.user_goal is None
        else strawberry.ID(relay.to_base64("UserGoal", str(row.user_goal.id))),
    )


async def goal_order(info: InfoT, order_id: str) -> GoalOrderLookup | None:
    await require(info, Role.ADMIN)
    session = info.context.session
    order = await session.get(Order, order_id)
    if order is None:
        return None
    entries = (await session.execute(reading.progress_log_query(order_id=order_id))).all()
    outcome = log_entry_node(reading.LogEntry(**entries[0]._mapping)) if entries else None
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
        outcome=outcome,
    )


async def user_goals(info: InfoT, user_id: strawberry.ID) -> list[UserGoalNode]:
    await require(info, Role.ADMIN)
    try:
        owner = _user_uuid(user_id, "userId")
    except DomainError:
        return []
    session = info.context.session
    ids = list(
        await session.scalars(
            select(UserGoal.id)
            .where(UserGoal.user_id == owner)
            .order_by(UserGoal.position.desc())
            .limit(MAX_USER_GOALS)
        )
    )
    views = await reading.goals_by_ids(session, ids, now=utcnow())
    return [goal_node(views[goal_id], None) for goal_id in ids if goal_id in views]


@strawberry.type
class GoalAssignQuery:
    @strawberry.field(description="An order's record and processing outcome (admin).")
    async def goal_order(self, info: InfoT, order_id: str) -> GoalOrderLookup | None:
        return await goal_order(info, order_id)

    @strawberry.field(description="A user's goals, newest assignment first (admin).")
    async def user_goals(self, info: InfoT, user_id: strawberry.ID) -> list[UserGoalNode]:
        return await user_goals(info, user_id)


@strawberry.type
class GoalAssignMutation:
    @strawberry.mutation(description="Assign a goal to one user (admin).")
    async def goal_assign(self, info: InfoT, input: GoalAssignInput) -> GoalAssignPayload:
        return await goal_assign(info, input)

    @strawberry.mutation(
        description="Assign goals from a CSV file (admin): a dry run reports each row's "
        "outcome; a commit assigns the valid rows. The same file twice assigns nothing new."
    )
    async def goal_assignment_upload(
        self, info: InfoT, input: GoalAssignmentUploadInput
    ) -> GoalAssignmentUploadPayload:
        return await goal_assignment_upload(info, input)
