"""The goals domain's DataLoaders: user goals, notifications, ledger rows and templates by id.

User goals are read with their template's texts; `now` is the batch's clock (an overdue
ACTIVE goal reads as MISSED).
"""

from __future__ import annotations

from collections.abc import Sequence

from app.models.base import utcnow
from app.models.goals import GoalTemplate
from app.services.goals import reading, templates
from app.services.goals.reading import AchievementView, GoalView, LogEntry
from schema.loaders import ContextLoader


class UserGoalByIdLoader(ContextLoader[str, GoalView | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[GoalView | None]:
        return await reading.goals_by_keys(self.session, keys, now=utcnow())


class GoalNotificationByIdLoader(ContextLoader[str, AchievementView | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[AchievementView | None]:
        return await reading.notifications_by_ids(self.session, keys, now=utcnow())


class ProgressLogEntryByIdLoader(ContextLoader[str, LogEntry | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[LogEntry | None]:
        return await reading.log_entries_by_ids(self.session, keys)


class GoalTemplateByIdLoader(ContextLoader[str, GoalTemplate | None]):
    async def batch_load(self, keys: Sequence[str]) -> Sequence[GoalTemplate | None]:
        return await templates.templates_by_ids(self.session, keys)
