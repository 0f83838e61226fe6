"""Admin resolvers for assigning goals, order lookups and a user's goals (ADMIN only)."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from starlette.datastructures import UploadFile
from strawberry.types import Info

from app.models.base import utcnow
from app.models.identity import Role
from app.services.errors import DomainError
from app.services.goals import reading
from app.services.goals.assignment import (
    Assignment,
    UploadResult,
    assign_goal,
    upload_assignments,
)
from app.services.goals.assignment_csv import parse_assignment_csv
from app.services.goals.codes import AssignErrorCode
from app.services.orders.reading import find_order
from schema.context import Context
from schema.errors import payload_errors
from schema.goals.assign import (
    GoalOrderLookup,
    assignment_row,
    assignment_summary,
    order_lookup,
)
from schema.goals.errors import GoalAssignError
from schema.goals.inputs import (
    GoalAssignInput,
    GoalAssignmentUploadInput,
    GoalAssignmentUploadPayload,
    GoalAssignPayload,
)
from schema.goals.types import UserGoalNode, goal_node
from schema.ids import node_uuid
from schema.permissions import require

InfoT = Info[Context, Any]
MAX_USER_GOALS = 200


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
        return GoalAssignPayload(user_goal=None, errors=payload_errors(GoalAssignError, exc))
    views = await reading.goals_by_ids(info.context.session, [goal.id], now=utcnow())
    return GoalAssignPayload(user_goal=goal_node(views[goal.id], None), errors=[])


async def _read_upload(info: InfoT, upload: object) -> bytes:
    """The uploaded file's bytes, at most MAX_UPLOAD_BYTES of them."""
    if not isinstance(upload, UploadFile):  # strawberry's Upload scalar accepts any value
        raise DomainError(AssignErrorCode.NOT_A_FILE, "Send the CSV as a multipart file.", "file")
    limit = info.context.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise DomainError(
            AssignErrorCode.FILE_TOO_LARGE, f"The file is over {limit} bytes.", "file"
        )
    return data


async def goal_assignment_upload(
    info: InfoT, data: GoalAssignmentUploadInput
) -> GoalAssignmentUploadPayload:
    principal = await require(info, Role.ADMIN)
    try:
        content = await _read_upload(info, data.file)
        result = await upload_assignments(
            info.context.session,
            parse_assignment_csv(content),
            filename=getattr(data.file, "filename", None) or "upload.csv",
            dry_run=data.dry_run,
            notify=data.notify,
            actor=principal.key,
            now=utcnow(),
        )
    except DomainError as exc:
        return GoalAssignmentUploadPayload(
            dry_run=data.dry_run,
            batch_id=None,
            summary=None,
            rows=[],
            errors=payload_errors(GoalAssignError, exc),
        )
    return _upload_payload(result)


def _upload_payload(result: UploadResult) -> GoalAssignmentUploadPayload:
    return GoalAssignmentUploadPayload(
        dry_run=result.dry_run,
        batch_id=result.batch.id if result.batch is not None else None,
        summary=assignment_summary(result),
        rows=[assignment_row(row) for row in result.rows],
        errors=[],
    )


async def goal_order(info: InfoT, order_id: str) -> GoalOrderLookup | None:
    await require(info, Role.ADMIN)
    session = info.context.session
    order = await find_order(session, order_id)
    if order is None:
        return None
    return order_lookup(order, await reading.log_entry_of_order(session, order_id))


async def user_goals(info: InfoT, user_id: strawberry.ID) -> list[UserGoalNode]:
    await require(info, Role.ADMIN)
    try:
        owner = _user_uuid(user_id, "userId")
    except DomainError:
        return []
    views = await reading.user_goals(
        info.context.session, owner, now=utcnow(), limit=MAX_USER_GOALS
    )
    return [goal_node(view, None) for view in views]


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
