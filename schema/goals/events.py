"""The `goalProgress` subscription: a user's goal events, pushed as they commit.

Services publish goal events (`app/services/goals/events.py`) with
`app.events.publish_after_commit` on the user's channel,
`app.events.user_channel(user_id)` (`engage:user:<uuid>`). The message contract, one JSON
object per event:

    {
      "type": "goal",                  # other types on the channel are ignored here
      "kind": "PROGRESS",              # ACTIVATED | PROGRESS | REVERSED | DONE | MISSED
                                       #   | ACHIEVEMENT | REMINDER
      "userGoalId": "<uuid>",          # the user goal's id (not the Relay global id)
      "templateId": "comfort-5",       # the goal template's id
      "status": "ACTIVE",              # the user goal's status now: NEXT | ACTIVE | DONE | MISSED
      "current": 3,                    # progress so far
      "total": 5,                      # the target
      "at": "2025-01-31T18:04:05+00:00"  # when it happened: ISO 8601 with an offset
    }

It becomes a `GoalProgressEvent` (`goalId` is the Relay global id `UserGoal:<uuid>`, `at` is
UTC). A malformed message is logged and skipped; the stream goes on.

Delivery is best effort: events published while a client is disconnected are not replayed,
so clients refetch `viewer.goals` when they (re)connect.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import strawberry
import structlog
from strawberry import relay

from app.services.goals.events import EVENT_TYPE
from schema.goals.types import UserGoalStatus

log = structlog.get_logger("engage.goal_events")


@strawberry.enum(description="What happened to a user goal.")
class GoalEventKind(Enum):
    ACTIVATED = strawberry.enum_value("ACTIVATED", description="The goal became the active one.")
    PROGRESS = strawberry.enum_value("PROGRESS", description="An order counted towards it.")
    REVERSED = strawberry.enum_value(
        "REVERSED", description="A counted order was cancelled or refunded: progress went back."
    )
    DONE = strawberry.enum_value("DONE", description="The goal was reached.")
    MISSED = strawberry.enum_value("MISSED", description="The goal's period ended unreached.")
    ACHIEVEMENT = strawberry.enum_value(
        "ACHIEVEMENT", description="A reward for the goal was granted."
    )
    REMINDER = strawberry.enum_value("REMINDER", description="A nudge about the active goal.")


@strawberry.type(description="One event of the signed-in user's goals.")
class GoalProgressEvent:
    kind: GoalEventKind = strawberry.field(description="What happened.")
    goal_id: strawberry.ID = strawberry.field(description="The user goal's global id.")
    template_id: str = strawberry.field(description="The goal template's id.")
    status: UserGoalStatus = strawberry.field(description="The user goal's status after the event.")
    current: int = strawberry.field(description="Progress so far.")
    total: int = strawberry.field(description="The progress that reaches the goal.")
    at: datetime = strawberry.field(description="When it happened.")


def goal_event_from(message: Mapping[str, Any]) -> GoalProgressEvent | None:
    """The event a pub/sub message carries; None for another type or a malformed message."""
    if message.get("type") != EVENT_TYPE:
        return None
    try:
        return GoalProgressEvent(
            kind=GoalEventKind(message["kind"]),
            goal_id=strawberry.ID(
                relay.to_base64("UserGoal", str(uuid.UUID(message["userGoalId"])))
            ),
            template_id=_string(message["templateId"]),
            status=UserGoalStatus(message["status"]),
            current=_integer(message["current"]),
            total=_integer(message["total"]),
            at=_utc(datetime.fromisoformat(message["at"])),
        )
    except (KeyError, TypeError, ValueError):
        log.warning("goal_events.malformed_message", message=message)
        return None


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("`at` has no UTC offset")
    return value.astimezone(UTC)
