"""Goal push events (both backends): what services publish is what `goalProgress` reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from strawberry.relay import to_base64

from app.events import take_committed_events, user_channel
from app.models.goals import UserGoalStatus
from app.runtime import Runtime
from app.services.goals import events
from schema.goals.events import GoalEventKind, goal_event_from


def test_the_api_event_kinds_are_the_service_kinds() -> None:
    assert [kind.name for kind in GoalEventKind] == [kind.name for kind in events.GoalEventKind]


async def test_a_published_event_reads_back_as_a_goal_progress_event(runtime: Runtime) -> None:
    user_id, user_goal_id = uuid.uuid4(), uuid.uuid4()
    at = datetime(2025, 3, 1, 12, tzinfo=UTC)
    async with runtime.session_factory() as session:
        async with session.begin():
            events.goal_event(
                session,
                kind=events.GoalEventKind.PROGRESS,
                user_id=user_id,
                user_goal_id=user_goal_id,
                template_id="comfort-5",
                status=UserGoalStatus.ACTIVE.value,
                current=2,
                total=5,
                at=at,
            )
        [(channel, message)] = take_committed_events(session)

    event = goal_event_from(message)

    assert channel == user_channel(user_id)
    assert event is not None
    assert (event.kind, event.goal_id, event.template_id, event.status) == (
        GoalEventKind.PROGRESS,
        to_base64("UserGoal", str(user_goal_id)),
        "comfort-5",
        UserGoalStatus.ACTIVE,
    )
    assert (event.current, event.total, event.at) == (2, 5, at)
