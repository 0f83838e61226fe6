"""Personal goals, client side: the viewer's reads and acknowledgements.

Everything here is scoped to the caller: a user reads and acknowledges only their own goals
(ids of other users' goals are ignored, never revealed). The fields are mounted on `viewer`
and `launch` by `resolvers/goals/viewer.py`; the mutations are `GoalMutation`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from app.models.base import utcnow
from app.models.identity import Role
from app.services.errors import DomainError
from app.services.goals import notifications, reading
from schema.base import connection_of, decode_global_id, decode_keyset, keyset_cursor, page_size
from schema.context import Context
from schema.errors import payload_errors
from schema.goals.errors import AchievementsMarkSeenError
from schema.goals.inputs import (
    AchievementsMarkSeenInput,
    AchievementsMarkSeenPayload,
    GoalNotificationsMarkSeenInput,
    GoalNotificationsMarkSeenPayload,
)
from schema.goals.types import (
    Achievement,
    GoalNotificationNode,
    GoalProgressLogEntry,
    PersonalGoalsSummary,
    ViewerGoals,
    achievement_node,
    goal_node,
    log_entry_node,
    notification_node,
    viewer_locale,
)
from schema.permissions import require

InfoT = Info[Context, Any]
MAX_ACHIEVEMENTS = 100


async def _viewer(info: InfoT) -> tuple[uuid.UUID, str | None]:
    """The calling user's id and locale (USER role); the principal's row is already loaded."""
    principal = await require(info, Role.USER)
    assert principal.user_id is not None
    return principal.user_id, viewer_locale(info)


# ---- viewer reads --------------------------------------------------------------------------


async def viewer_goals(info: InfoT) -> ViewerGoals:
    user_id, locale = await _viewer(info)
    found = await reading.viewer_goals(
        info.context.session,
        user_id,
        now=utcnow(),
        recent_done=info.context.settings.goals_recent_done,
    )
    return ViewerGoals(
        active=None if found.active is None else goal_node(found.active, locale),
        next=[goal_node(v, locale) for v in found.upcoming],
        recent=[goal_node(v, locale) for v in found.recent_done],
    )


async def personal_goals_summary(info: InfoT) -> PersonalGoalsSummary | None:
    principal = await info.context.principal()
    if principal.user_id is None or not principal.has_role(Role.USER):
        return None
    unseen = await reading.has_unseen_achievements(info.context.session, principal.user_id)
    return PersonalGoalsSummary(has_unseen_achievements=unseen)


async def viewer_achievements(info: InfoT, unseen_only: bool) -> list[Achievement]:
    user_id, locale = await _viewer(info)
    found = await reading.achievements(
        info.context.session,
        user_id,
        unseen_only=unseen_only,
        now=utcnow(),
        limit=MAX_ACHIEVEMENTS,
    )
    return [achievement_node(item, locale) for item in found]


async def achievements_mark_seen(
    info: InfoT, data: AchievementsMarkSeenInput
) -> AchievementsMarkSeenPayload:
    user_id, _ = await _viewer(info)
    session = info.context.session
    try:
        notifications.check_mark_seen(len(data.goal_ids), "goalIds")
    except DomainError as exc:
        return AchievementsMarkSeenPayload(
            marked=0,
            has_unseen_achievements=await reading.has_unseen_achievements(session, user_id),
            errors=payload_errors(AchievementsMarkSeenError, exc),
        )
    ids = _typed_uuids(data.goal_ids, "UserGoal")
    marked = await notifications.mark_achievements_seen(session, user_id, ids, now=utcnow())
    unseen = await reading.has_unseen_achievements(session, user_id)
    return AchievementsMarkSeenPayload(marked=marked, has_unseen_achievements=unseen, errors=[])


async def viewer_notifications(info: InfoT, unseen_only: bool) -> list[GoalNotificationNode]:
    user_id, locale = await _viewer(info)
    found = await reading.notifications(
        info.context.session, user_id, unseen_only=unseen_only, now=utcnow(), limit=MAX_ACHIEVEMENTS
    )
    return [notification_node(item, locale) for item in found]


async def notifications_mark_seen(
    info: InfoT, data: GoalNotificationsMarkSeenInput
) -> GoalNotificationsMarkSeenPayload:
    user_id, _ = await _viewer(info)
    try:
        notifications.check_mark_seen(len(data.ids), "ids")
    except DomainError as exc:
        return GoalNotificationsMarkSeenPayload(
            marked=0, errors=payload_errors(AchievementsMarkSeenError, exc)
        )
    ids = _typed_uuids(data.ids, "GoalNotification")
    marked = await notifications.mark_notifications_seen(
        info.context.session, user_id, ids, now=utcnow()
    )
    return GoalNotificationsMarkSeenPayload(marked=marked, errors=[])


def _typed_uuids(ids: Sequence[strawberry.ID], type_name: str) -> list[uuid.UUID]:
    """The `type_name` ids among `ids`; anything else is ignored like an unknown id."""
    found = []
    for value in ids:
        try:
            found.append(decode_global_id(value, type_name))
        except ValueError:
            continue
    return found


async def viewer_progress_log(
    info: InfoT, first: int | None, after: str | None
) -> relay.Connection[GoalProgressLogEntry]:
    user_id, _ = await _viewer(info)
    limit = page_size(first, info.context.settings.max_page_size)
    before = decode_keyset(after)
    rows = await reading.progress_log(info.context.session, user_id, limit=limit + 1, before=before)
    page = rows[:limit]
    return connection_of(
        [log_entry_node(r) for r in page],
        [keyset_cursor(r.processed_at, r.id) for r in page],
        len(rows) > limit,
        before is not None,
    )


@strawberry.type
class GoalMutation:
    @strawberry.mutation(
        description="Acknowledge the viewer's goal notifications by id; idempotent, unknown "
        "ids ignored."
    )
    async def goal_notifications_mark_seen(
        self, info: InfoT, input: GoalNotificationsMarkSeenInput
    ) -> GoalNotificationsMarkSeenPayload:
        return await notifications_mark_seen(info, input)

    @strawberry.mutation(
        description="Acknowledge the viewer's achievements; idempotent, unknown ids ignored."
    )
    async def achievements_mark_seen(
        self, info: InfoT, input: AchievementsMarkSeenInput
    ) -> AchievementsMarkSeenPayload:
        return await achievements_mark_seen(info, input)
