"""Personal goals, client side: the viewer's goals, achievements, notifications and the
progress log, and the builders that make them from service views. Inputs and payloads are in
`inputs.py`, error types in `errors.py`.

Goal objects are built eagerly from one query row with the texts already localized, so
every field is a plain attribute (async leaf resolvers cost far more than the data).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.models.goals import NotificationKind, UserGoalStatus
from app.services.goals.conditions import ProgressReason, RollingPeriod, snapshot_conditions
from app.services.goals.reading import AchievementView, GoalView, LogEntry
from app.services.goals.texts import localize, localize_lines
from schema.base import Money
from schema.context import Context
from schema.goals.loaders import (
    GoalNotificationByIdLoader,
    ProgressLogEntryByIdLoader,
    UserGoalByIdLoader,
)
from schema.orders.types import OrderKind
from schema.permissions import visible_nodes

strawberry.enum(
    UserGoalStatus,
    name="UserGoalStatus",
    description="NEXT waits its turn; ACTIVE counts orders; DONE reached the target; "
    "MISSED ran out of time.",
)
strawberry.enum(
    ProgressReason,
    name="ProgressReason",
    description="Why a processed order counted (COUNTED) or did not.",
)


@strawberry.type(description="How far a goal is: `current` of `total` orders.")
class GoalProgressCount:
    current: int
    total: int


@strawberry.type(description="A time-of-day window, local to the order's city; may cross midnight.")
class GoalTimeWindow:
    start: str = strawberry.field(description="HH:MM, inclusive.")
    end: str = strawberry.field(description="HH:MM, exclusive.")


@strawberry.type(
    description="What counts towards a goal; enough for the ride-class card to say "
    "'this ride counts' without another call."
)
class GoalConditionsView:
    ride_classes: list[str] = strawberry.field(description="Empty means any ride class.")
    payment_methods: list[str] = strawberry.field(description="Empty means any payment method.")
    time_window: GoalTimeWindow | None = strawberry.field(description="Null means all day.")
    min_price: Money | None
    order_kinds: list[OrderKind]
    period_days: int | None = strawberry.field(
        description="Days the goal lasts once active (null for a fixed period)."
    )


@strawberry.type(description="What a goal gives, and once granted, what was given.")
class GoalBonusView:
    type: str = strawberry.field(description="PROMOCODE, WALLET or CASHBACK.")
    definition: JSON = strawberry.field(description="The bonus as defined on the goal.")
    granted_at: datetime | None
    granted: JSON | None = strawberry.field(
        description="What was given: the promocode, the wallet credit or the cashback window."
    )


@strawberry.type(name="UserGoal", description="One of the viewer's goals.")
class UserGoalNode(relay.Node):
    id: relay.NodeID[str]
    goal_id: str = strawberry.field(description="The goal template's slug.")
    status: UserGoalStatus
    title: str
    description: str
    details: list[str]
    button_text: str
    progress: GoalProgressCount
    starts_at: datetime | None
    expires_at: datetime | None
    done_at: datetime | None
    conditions: GoalConditionsView
    bonus: GoalBonusView

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[UserGoalNode | None]:
        """The owner sees their goals, an admin anyone's."""
        return await visible_nodes(
            info,
            UserGoalByIdLoader,
            node_ids,
            # the locale is read after visible_nodes resolved the principal
            lambda view: goal_node(view, viewer_locale(info)),
            owner=lambda view: view.user_id,
        )


@strawberry.type(description="The viewer's goals: the one counting now, the queue, the recent.")
class ViewerGoals:
    active: UserGoalNode | None
    next: list[UserGoalNode] = strawberry.field(description="Waiting goals, in activation order.")
    recent: list[UserGoalNode] = strawberry.field(
        description="Recently ended goals, newest first (an overdue goal shows here as MISSED)."
    )


@strawberry.type(description="A goal reached and its bonus granted, for the app to celebrate.")
class Achievement:
    goal: UserGoalNode
    goal_id: strawberry.ID = strawberry.field(description="The user goal's global id.")
    title: str
    description: str
    progress: GoalProgressCount
    button_text: str
    created_at: datetime
    seen: bool


strawberry.enum(
    NotificationKind,
    name="GoalNotificationKind",
    description="ACHIEVEMENT: a goal reached and its bonus granted; REMINDER: the active goal "
    "expires soon; ASSIGNED: an admin assigned a goal.",
)


@strawberry.type(name="GoalNotification", description="An in-app notification about a goal.")
class GoalNotificationNode(relay.Node):
    id: relay.NodeID[str]
    kind: NotificationKind
    goal: UserGoalNode
    created_at: datetime
    seen: bool

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[GoalNotificationNode | None]:
        """The owner sees their notifications, an admin anyone's."""
        return await visible_nodes(
            info,
            GoalNotificationByIdLoader,
            node_ids,
            # the locale is read after visible_nodes resolved the principal
            lambda item: notification_node(item, viewer_locale(info)),
            owner=lambda item: item.goal.user_id,
        )


@strawberry.type(description="The app-start summary of personal goals.")
class PersonalGoalsSummary:
    has_unseen_achievements: bool


@strawberry.type(description="One processed order: did it count, and if not, why.")
class GoalProgressLogEntry(relay.Node):
    id: relay.NodeID[str]
    order_id: str
    reason: ProgressReason
    counted: bool
    reversed: bool = strawberry.field(description="Counted, then cancelled or refunded.")
    goal_id: str | None = strawberry.field(description="The goal template it was matched against.")
    user_goal_id: strawberry.ID | None
    order_kind: str
    order_status: str
    ride_class: str | None
    payment_method: str | None
    price: Money
    completed_at: datetime | None
    processed_at: datetime

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info[Context, Any], node_ids: Any, required: bool = False
    ) -> list[GoalProgressLogEntry | None]:
        """The owner sees their ledger, an admin anyone's."""
        return await visible_nodes(
            info, ProgressLogEntryByIdLoader, node_ids, log_entry_node, owner=lambda e: e.user_id
        )


# ---- nodes built eagerly from service views (every field a plain attribute) -------------


def conditions_view(data: dict[str, Any]) -> GoalConditionsView:
    conditions = snapshot_conditions(data)
    window = conditions.time_window
    price = conditions.min_price
    return GoalConditionsView(
        ride_classes=sorted(c.value for c in conditions.ride_classes),
        payment_methods=sorted(m.value for m in conditions.payment_methods),
        time_window=None
        if window is None
        else GoalTimeWindow(start=window.start.strftime("%H:%M"), end=window.end.strftime("%H:%M")),
        min_price=None
        if price is None
        else Money(amount_minor=price.amount_minor, currency=price.currency),
        order_kinds=sorted(conditions.order_kinds, key=lambda k: k.value),
        period_days=conditions.period.days
        if isinstance(conditions.period, RollingPeriod)
        else None,
    )


def goal_node(view: GoalView, locale: str | None) -> UserGoalNode:
    default = view.default_locale
    return UserGoalNode(
        id=str(view.id),
        goal_id=view.goal_id,
        status=view.status,
        title=localize(view.title, locale, default),
        description=localize(view.description, locale, default),
        details=list(localize_lines(view.details, locale, default)),
        button_text=localize(view.button_text, locale, default),
        progress=GoalProgressCount(current=view.progress, total=view.target),
        starts_at=view.starts_at,
        expires_at=view.expires_at,
        done_at=view.done_at,
        conditions=conditions_view(view.conditions),
        bonus=GoalBonusView(
            type=str(view.bonus.get("type")),
            definition=cast(JSON, view.bonus),
            granted_at=view.bonus_granted_at,
            granted=cast(JSON | None, view.bonus_details),
        ),
    )


def log_entry_node(entry: LogEntry) -> GoalProgressLogEntry:
    return GoalProgressLogEntry(
        id=str(entry.id),
        order_id=entry.order_id,
        reason=ProgressReason(entry.reason),
        counted=entry.counted,
        reversed=entry.reversed_at is not None,
        goal_id=entry.template_id,
        user_goal_id=None
        if entry.user_goal_id is None
        else strawberry.ID(relay.to_base64("UserGoal", str(entry.user_goal_id))),
        order_kind=entry.kind,
        order_status=entry.status,
        ride_class=entry.ride_class,
        payment_method=entry.payment_method,
        price=Money(amount_minor=entry.price_minor, currency=entry.currency),
        completed_at=entry.completed_at,
        processed_at=entry.processed_at,
    )


def achievement_node(item: AchievementView, locale: str | None) -> Achievement:
    node = goal_node(item.goal, locale)
    return Achievement(
        goal=node,
        goal_id=strawberry.ID(relay.to_base64("UserGoal", str(item.goal.id))),
        title=node.title,
        description=node.description,
        progress=node.progress,
        button_text=node.button_text,
        created_at=item.created_at,
        seen=item.seen_at is not None,
    )


def notification_node(item: AchievementView, locale: str | None) -> GoalNotificationNode:
    assert item.id is not None, "a notification read by id has its id"
    return GoalNotificationNode(
        id=str(item.id),
        kind=item.kind,
        goal=goal_node(item.goal, locale),
        created_at=item.created_at,
        seen=item.seen_at is not None,
    )


def viewer_locale(info: Info[Context, Any]) -> str | None:
    """The signed-in user's locale, for goal texts; None (the template's default) otherwise.
    The fields that show goal texts resolve the principal first."""
    return info.context.resolved_principal.locale
