"""The `goalProgress` subscription (served over WebSocket; the event contract is in
`schema/goals/events.py`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.types import Info

from app.events import user_channel
from app.metrics import SUBSCRIPTIONS_ACTIVE
from schema.context import Context
from schema.goals.events import GoalProgressEvent, goal_event_from
from schema.permissions import AuthError, IsUser


@strawberry.type
class GoalEventSubscription:
    @strawberry.subscription(
        description=(
            "The signed-in user's goal events as they happen: activation, progress, "
            "reversal, completion, misses, rewards, reminders. Events published while the "
            "client is not connected are not replayed: refetch `viewer.goals` on (re)connect."
        ),
        permission_classes=[IsUser],
    )
    async def goal_progress(
        self, info: Info[Context, Any]
    ) -> AsyncGenerator[GoalProgressEvent, None]:
        principal = await info.context.principal()
        if principal.user_id is None:
            raise AuthError("FORBIDDEN", "Only users have goals.")
        pubsub = info.context.runtime.pubsub
        SUBSCRIPTIONS_ACTIVE.labels("goalProgress").inc()
        try:
            async with pubsub.subscribe(user_channel(principal.user_id)) as messages:
                async for message in messages:
                    event = goal_event_from(message)
                    if event is not None:
                        yield event
        finally:
            SUBSCRIPTIONS_ACTIVE.labels("goalProgress").dec()
