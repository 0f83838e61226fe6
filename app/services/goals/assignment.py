"""Assigning goals to users: one user at a time, or a CSV file with a preview first.

An assignment snapshots the template's conditions and bonus into the user goal, queues it
as NEXT behind the user's other waiting goals, and activates it at once when the user has
no ACTIVE goal. A user waits for a template at most once (a partial unique index), so
assigning it again while it is NEXT or ACTIVE is ALREADY_ASSIGNED, not a second goal.

A CSV upload is validated row by row (`assignment_csv` for the format, this module for
unknown users and goals). A dry run reports what a commit would do and writes nothing; a
commit assigns the valid rows and records the file's hash, so uploading the same file again
assigns nothing and reports each row ALREADY_ASSIGNED.

Concurrency decisions:
- One user's goals change under the user's lock (`locking.lock_user`), taken by
  `assign_goal` and by each committed row before it reads the user's queue.
- The same file committed twice at once: the batch row (unique content hash) is written
  first, in a savepoint, before any goal. On PostgreSQL the second upload's INSERT waits for
  the first to commit and then violates the hash; it rolls its savepoint back, re-validates
  the rows (they are now pending) and answers exactly what a later upload of the file
  answers. On SQLite the unit of work holds the write lock from its first statement
  (`app.db`), so the second upload simply finds the batch; the savepoint is the backstop.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.goals import (
    GoalAssignmentBatch,
    GoalTemplate,
    NotificationKind,
    TemplateStatus,
    UserGoal,
    UserGoalStatus,
)
from app.models.identity import AuditLog, User, UserStatus
from app.services.errors import DomainError
from app.services.goals.assignment_csv import CsvRow, ParsedCsv
from app.services.goals.codes import AssignErrorCode
from app.services.goals.conditions import parse_conditions
from app.services.goals.lifecycle import activate_next, has_active_goal
from app.services.goals.locking import lock_user
from app.services.goals.metrics import GOALS_ASSIGNED
from app.services.goals.notifications import notify as add_notification
from app.uow import on_commit


class RowStatus(enum.StrEnum):
    ASSIGNED = "ASSIGNED"  # committed
    VALID = "VALID"  # dry run: a commit would assign it
    ALREADY_ASSIGNED = "ALREADY_ASSIGNED"  # nothing to do (same file again, or goal pending)
    ERROR = "ERROR"


@dataclass(frozen=True)
class Assignment:
    user_id: uuid.UUID
    template_id: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True)
class RowOutcome:
    line: int
    status: RowStatus
    user_id: uuid.UUID | None
    goal_id: str | None
    error: AssignErrorCode | None = None
    message: str | None = None
    user_goal: UserGoal | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True)
class UploadResult:
    dry_run: bool
    batch: GoalAssignmentBatch | None
    rows: list[RowOutcome]

    def count(self, status: RowStatus) -> int:
        return sum(row.status is status for row in self.rows)


async def assign_goal(
    session: AsyncSession,
    assignment: Assignment,
    *,
    actor: str,
    now: datetime,
    notify: bool = False,
    batch_id: uuid.UUID | None = None,
) -> UserGoal:
    """Assign one goal; raises DomainError (AssignErrorCode) naming the field."""
    template = await session.get(GoalTemplate, assignment.template_id)
    _check_template(template, "goalId")
    assert template is not None
    _check_window(assignment, now)
    if await lock_user(session, assignment.user_id) is not UserStatus.ACTIVE:
        raise DomainError(AssignErrorCode.UNKNOWN_USER, "No such user.", "userId")
    if await _pending_templates(session, [assignment.user_id], [template.id]):
        raise DomainError(
            AssignErrorCode.ALREADY_ASSIGNED,
            "The user already has this goal waiting or active.",
            "goalId",
        )
    goal = await _insert(session, template, assignment, actor, now, notify, batch_id)
    session.add(AuditLog(actor=actor, action="goal.assign", target=f"user_goal:{goal.id}"))
    return goal


def _check_template(template: GoalTemplate | None, field: str) -> None:
    if template is None:
        raise DomainError(AssignErrorCode.UNKNOWN_GOAL, "No such goal.", field)
    if template.status is TemplateStatus.ARCHIVED:
        raise DomainError(AssignErrorCode.GOAL_ARCHIVED, "The goal is archived.", field)


def _check_window(assignment: Assignment, now: datetime) -> None:
    starts, ends = assignment.starts_at, assignment.ends_at
    if starts is not None and ends is not None and ends <= starts:
        raise DomainError(
            AssignErrorCode.INVALID_PERIOD, "endsAt must be after startsAt.", "endsAt"
        )
    if ends is not None and ends <= now:
        raise DomainError(AssignErrorCode.INVALID_PERIOD, "endsAt is in the past.", "endsAt")


async def _pending_templates(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], template_ids: Iterable[str]
) -> set[tuple[uuid.UUID, str]]:
    rows = await session.execute(
        select(UserGoal.user_id, UserGoal.goal_id).where(
            UserGoal.user_id.in_(user_ids),
            UserGoal.goal_id.in_(list(template_ids)),
            UserGoal.status.in_([UserGoalStatus.NEXT, UserGoalStatus.ACTIVE]),
        )
    )
    return {(row.user_id, row.goal_id) for row in rows}


async def _insert(
    session: AsyncSession,
    template: GoalTemplate,
    assignment: Assignment,
    actor: str,
    now: datetime,
    notify: bool,
    batch_id: uuid.UUID | None,
) -> UserGoal:
    """Queue the goal behind the user's others; the caller holds the user's lock."""
    last = await session.scalar(
        select(func.max(UserGoal.position)).where(UserGoal.user_id == assignment.user_id)
    )
    goal = UserGoal(
        user_id=assignment.user_id,
        goal_id=template.id,
        status=UserGoalStatus.NEXT,
        position=(last or 0) + 1,
        conditions=template.conditions,
        bonus=template.bonus,
        target=parse_conditions(template.conditions).target,
        progress=0,
        custom_starts_at=assignment.starts_at,
        custom_ends_at=assignment.ends_at,
        assigned_by=actor,
        batch_id=batch_id,
    )
    session.add(goal)
    await session.flush()
    if notify:
        await add_notification(session, goal, NotificationKind.ASSIGNED, now)
    on_commit(session, GOALS_ASSIGNED.inc)
    if not await has_active_goal(session, assignment.user_id):
        await activate_next(session, assignment.user_id, at=now)
    return goal


async def upload_assignments(
    session: AsyncSession,
    parsed: ParsedCsv,
    *,
    filename: str,
    dry_run: bool,
    notify: bool,
    actor: str,
    now: datetime,
) -> UploadResult:
    """Validate every row against the database; with `dry_run=False` assign the valid ones."""
    earlier = await _batch_of(session, parsed.content_hash)
    outcomes = await _validate_rows(session, parsed.rows, now)
    if earlier is not None:
        return UploadResult(dry_run, earlier, _replay(outcomes))
    if dry_run:
        return UploadResult(True, None, outcomes)
    batch = await _claim_batch(session, parsed.content_hash, filename, len(outcomes), notify, actor)
    if batch is None:  # the same file, committed at the same time by another upload
        earlier = await _batch_of(session, parsed.content_hash)
        assert earlier is not None
        return UploadResult(
            False, earlier, _replay(await _validate_rows(session, parsed.rows, now))
        )
    committed = [await _commit_row(session, row, batch, actor, now, notify) for row in outcomes]
    batch.assigned = sum(row.status is RowStatus.ASSIGNED for row in committed)
    session.add(
        AuditLog(
            actor=actor,
            action="goal.upload",
            target=f"goal_assignment_batch:{batch.id}",
            reason=f"{filename[:200]}: {batch.assigned}/{batch.rows} assigned",
        )
    )
    return UploadResult(False, batch, committed)


async def _batch_of(session: AsyncSession, content_hash: str) -> GoalAssignmentBatch | None:
    return await session.scalar(
        select(GoalAssignmentBatch).where(GoalAssignmentBatch.content_hash == content_hash)
    )


async def _claim_batch(
    session: AsyncSession,
    content_hash: str,
    filename: str,
    rows: int,
    notify: bool,
    actor: str,
) -> GoalAssignmentBatch | None:
    """Record the file's batch before assigning anything; None when a concurrent upload of
    the same file recorded it first (its unique hash), which then assigns the rows."""
    batch = GoalAssignmentBatch(
        content_hash=content_hash,
        filename=filename[:255],
        rows=rows,
        assigned=0,
        notify=notify,
        created_by=actor,
    )
    try:
        async with session.begin_nested():
            session.add(batch)
            await session.flush()
    except IntegrityError:
        return None
    return batch


def _replay(rows: Sequence[RowOutcome]) -> list[RowOutcome]:
    """A file committed before assigns nothing again: its valid rows are reported done."""
    return [
        RowOutcome(
            row.line,
            RowStatus.ALREADY_ASSIGNED,
            row.user_id,
            row.goal_id,
            message="This file was already uploaded.",
        )
        if row.status is RowStatus.VALID
        else row
        for row in rows
    ]


async def _validate_rows(
    session: AsyncSession, rows: Sequence[CsvRow], now: datetime
) -> list[RowOutcome]:
    user_ids = list({row.user_id for row in rows if row.user_id is not None})
    goal_ids = list({row.goal_id for row in rows if row.goal_id is not None})
    users = set(
        await session.scalars(
            select(User.id).where(User.id.in_(user_ids), User.status == UserStatus.ACTIVE)
        )
    )
    templates = {
        t.id: t
        for t in await session.scalars(select(GoalTemplate).where(GoalTemplate.id.in_(goal_ids)))
    }
    pending = await _pending_templates(session, user_ids, goal_ids)
    return [_validate_row(row, users, templates, pending, now) for row in rows]


def _validate_row(
    row: CsvRow,
    users: set[uuid.UUID],
    templates: dict[str, GoalTemplate],
    pending: set[tuple[uuid.UUID, str]],
    now: datetime,
) -> RowOutcome:
    def error(code: AssignErrorCode, message: str) -> RowOutcome:
        return RowOutcome(row.line, RowStatus.ERROR, row.user_id, row.goal_id, code, message)

    if row.error is not None:
        return error(row.error, row.message or row.error.value)
    assert row.user_id is not None and row.goal_id is not None
    if row.user_id not in users:
        return error(AssignErrorCode.UNKNOWN_USER, f"user_id: no such user {row.user_id}.")
    try:
        _check_template(templates.get(row.goal_id), "goal_id")
        _check_window(Assignment(row.user_id, row.goal_id, row.starts_at, row.ends_at), now)
    except DomainError as exc:  # both checks raise AssignErrorCode
        return error(cast(AssignErrorCode, exc.code), f"{exc.field}: {exc.message}")
    if (row.user_id, row.goal_id) in pending:
        return RowOutcome(
            row.line,
            RowStatus.ALREADY_ASSIGNED,
            row.user_id,
            row.goal_id,
            message="The user already has this goal waiting or active.",
        )
    return RowOutcome(
        row.line,
        RowStatus.VALID,
        row.user_id,
        row.goal_id,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )


async def _commit_row(
    session: AsyncSession,
    row: RowOutcome,
    batch: GoalAssignmentBatch,
    actor: str,
    now: datetime,
    notify: bool,
) -> RowOutcome:
    if row.status is not RowStatus.VALID:
        return row
    assert row.user_id is not None and row.goal_id is not None
    template = await session.get(GoalTemplate, row.goal_id)
    assert template is not None
    await lock_user(session, row.user_id)
    goal = await _insert(session, template, _assignment_of(row), actor, now, notify, batch.id)
    return RowOutcome(
        row.line,
        RowStatus.ASSIGNED,
        row.user_id,
        row.goal_id,
        user_goal=goal,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )


def _assignment_of(row: RowOutcome) -> Assignment:
    assert row.user_id is not None and row.goal_id is not None
    return Assignment(row.user_id, row.goal_id, row.starts_at, row.ends_at)
