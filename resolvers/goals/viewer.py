"""The goals domain's fields on `viewer` (the caller's goals, achievements, notifications,
progress log) and on `launch` (the app-start summary)."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from resolvers.goals import queries
from schema.base import After, PageSize
from schema.context import Context
from schema.goals.types import (
    Achievement,
    GoalNotificationNode,
    GoalProgressLogEntry,
    PersonalGoalsSummary,
    ViewerGoals,
)

InfoT = Info[Context, Any]
UnseenOnly = Annotated[bool, strawberry.argument(description="Only those not yet acknowledged.")]


@strawberry.type
class GoalViewer:
    @strawberry.field(description="The caller's personal goals: active, next and recent.")
    async def goals(self, info: InfoT) -> ViewerGoals:
        return await queries.viewer_goals(info)

    @strawberry.field(description="Goals reached, newest first (at most 100).")
    async def achievements(self, info: InfoT, unseen_only: UnseenOnly = True) -> list[Achievement]:
        return await queries.viewer_achievements(info, unseen_only)

    @strawberry.field(
        description="Goal notifications of every kind (achievements, reminders, assignments), "
        "newest first (at most 100)."
    )
    async def goal_notifications(
        self, info: InfoT, unseen_only: UnseenOnly = True
    ) -> list[GoalNotificationNode]:
        return await queries.viewer_notifications(info, unseen_only)

    @strawberry.field(
        description="Every processed order, newest first: did it count, and if not, why."
    )
    async def goal_progress_log(
        self, info: InfoT, first: PageSize = None, after: After = None
    ) -> relay.Connection[GoalProgressLogEntry]:
        return await queries.viewer_progress_log(info, first, after)


@strawberry.type
class GoalLaunch:
    @strawberry.field(description="Null unless the caller is a signed-in user.")
    async def personal_goals(self, info: InfoT) -> PersonalGoalsSummary | None:
        return await queries.personal_goals_summary(info)
