"""Personal goals, client side: the viewer's goals, achievements, progress log and wallet,
and the service-side `orderRecord`.

Goal objects are built eagerly from one query row with the texts already localized, so
every field is a plain attribute (async leaf resolvers cost far more than the data).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.models.goals import NotificationKind, UserGoalStatus
from app.services.goals.conditions import OrderKind, OrderStatus, ProgressReason
from app.services.orders.recording import OrderErrorCode, RecordOutcome
from schema.base import After, Money, PageSize
from schema.context import Context

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
strawberry.enum(OrderKind, name="OrderKind", description="What kind of event an order is.")
strawberry.enum(OrderStatus, name="OrderStatus", description="An order's status.")
strawberry.enum(
    RecordOutcome,
    name="OrderRecordOutcome",
    description="NEW: stored and scheduled; DUPLICATE: seen before, nothing changed; "
    "STATUS_CHANGED: a cancellation or completion of a known order, processed again.",
)
strawberry.enum(
    OrderErrorCode, name="OrderRecordErrorCode", description="Why an order was refused."
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
        from resolvers.goals.queries import user_goals_by_ids

        return await user_goals_by_ids(info, list(node_ids))


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
        """Notifications are read through `viewer.goalNotifications`, not refetched by id."""
        return [None for _ in node_ids]


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


@strawberry.enum(description="Why the wallet changed.")
class WalletEntryKind(enum.Enum):
    GOAL_BONUS = "GOAL_BONUS"
    CASHBACK = "CASHBACK"
    CASHBACK_REVERSAL = "CASHBACK_REVERSAL"


@strawberry.type(description="A wallet credit or debit.")
class WalletEntryNode(relay.Node):
    id: relay.NodeID[str]
    amount: Money
    kind: WalletEntryKind
    order_id: str | None
    created_at: datetime


@strawberry.type(description="The viewer's wallet, credited by goal bonuses and cashback.")
class Wallet:
    @strawberry.field(description="The balance per currency (currencies with entries only).")
    async def balances(self, info: Info[Context, Any]) -> list[Money]:
        from resolvers.goals.queries import wallet_balances

        return await wallet_balances(info)

    @strawberry.field(description="Entries, newest first.")
    async def entries(
        self,
        info: Info[Context, Any],
        first: PageSize = None,
        after: After = None,
    ) -> relay.Connection[WalletEntryNode]:
        from resolvers.goals.queries import wallet_entries

        return await wallet_entries(info, first, after)


@strawberry.type(description="Error detail of `orderRecord`.")
class OrderRecordError:
    code: OrderErrorCode
    field: str | None
    message: str


@strawberry.type(description="An order as recorded.")
class RecordedOrder:
    order_id: str
    status: OrderStatus
    recorded_at: datetime


@strawberry.type
class OrderRecordPayload:
    outcome: RecordOutcome | None
    order: RecordedOrder | None
    errors: list[OrderRecordError]


@strawberry.input(description="Money in integer minor units.")
class MoneyInput:
    amount_minor: int
    currency: str = strawberry.field(description="ISO 4217, e.g. RUB.")


@strawberry.input(description="An order as the ordering service knows it.")
class OrderRecordInput:
    order_id: str = strawberry.field(description="The ordering service's id, 1-64 characters.")
    user_id: strawberry.ID = strawberry.field(description="A User global id or a raw UUID.")
    created_at: datetime
    completed_at: datetime | None = None
    status: OrderStatus
    kind: OrderKind = OrderKind.RIDE
    ride_class: str | None = None
    payment_method: str | None = None
    price: MoneyInput
    city_timezone: str = strawberry.field(description="IANA name, e.g. Europe/Moscow.")
    data: JSON | None = strawberry.field(default=None, description="Free-form, at most 4 KB.")


@strawberry.enum(description="Why achievements could not be acknowledged.")
class AchievementsMarkSeenErrorCode(enum.Enum):
    TOO_MANY_IDS = "TOO_MANY_IDS"


@strawberry.type
class AchievementsMarkSeenError:
    code: AchievementsMarkSeenErrorCode
    field: str | None
    message: str


@strawberry.input
class GoalNotificationsMarkSeenInput:
    ids: list[strawberry.ID] = strawberry.field(
        description="GoalNotification ids (at most 100); unknown ids are ignored."
    )


@strawberry.type
class GoalNotificationsMarkSeenPayload:
    marked: int = strawberry.field(description="How many notifications became seen now.")
    errors: list[AchievementsMarkSeenError]


@strawberry.input
class AchievementsMarkSeenInput:
    goal_ids: list[strawberry.ID] = strawberry.field(
        description="User goal ids (at most 100); unknown ids are ignored."
    )


@strawberry.type
class AchievementsMarkSeenPayload:
    marked: int = strawberry.field(description="How many achievements became seen now.")
    has_unseen_achievements: bool
    errors: list[AchievementsMarkSeenError]
