"""Personal goals resolvers: the viewer's reads, achievements, `launch`, and `orderRecord`.

Everything here is scoped to the caller: a user reads and acknowledges only their own goals
(ids of other users' goals resolve to null or are ignored, never revealed); `orderRecord`
needs the SERVICE role.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.models.base import utcnow
from app.models.goals import WalletEntry
from app.models.users import Role
from app.services.errors import DomainError
from app.services.goals import reading
from app.services.goals.conditions import OrderStatus, ProgressReason, RollingPeriod
from app.services.goals.lifecycle import snapshot_conditions
from app.services.goals.orders import OrderErrorCode, OrderInput, record_order
from app.services.goals.reading import GoalView, LogEntry
from app.services.goals.texts import localize, localize_lines
from resolvers.ids import node_uuid, parse_uuids
from resolvers.permissions import require
from schema.base import BadUserInput, Money, decode_global_id
from schema.context import Context
from schema.goals import (
    Achievement,
    AchievementsMarkSeenError,
    AchievementsMarkSeenErrorCode,
    AchievementsMarkSeenInput,
    AchievementsMarkSeenPayload,
    GoalBonusView,
    GoalConditionsView,
    GoalNotificationNode,
    GoalNotificationsMarkSeenInput,
    GoalNotificationsMarkSeenPayload,
    GoalProgressCount,
    GoalProgressLogEntry,
    GoalTimeWindow,
    OrderRecordError,
    OrderRecordInput,
    OrderRecordPayload,
    PersonalGoalsSummary,
    RecordedOrder,
    UserGoalNode,
    ViewerGoals,
    WalletEntryKind,
    WalletEntryNode,
)

InfoT = Info[Context, Any]
MAX_MARK_SEEN = 100
MAX_ACHIEVEMENTS = 100


# ---- building objects ----------------------------------------------------------------------


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


async def _viewer(info: InfoT) -> tuple[uuid.UUID, str | None]:
    """The calling user's id and locale (USER role); the principal's row is already loaded."""
    principal = await require(info, Role.USER)
    assert principal.user_id is not None
    user = info.context.session.info.get("principal_user")
    return principal.user_id, getattr(user, "locale", None)


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
    result = []
    for item in found:
        node = goal_node(item.goal, locale)
        result.append(
            Achievement(
                goal=node,
                goal_id=strawberry.ID(relay.to_base64("UserGoal", str(item.goal.id))),
                title=node.title,
                description=node.description,
                progress=node.progress,
                button_text=node.button_text,
                created_at=item.created_at,
                seen=item.seen_at is not None,
            )
        )
    return result


async def achievements_mark_seen(
    info: InfoT, data: AchievementsMarkSeenInput
) -> AchievementsMarkSeenPayload:
    user_id, _ = await _viewer(info)
    session = info.context.session
    if len(data.goal_ids) > MAX_MARK_SEEN:
        return AchievementsMarkSeenPayload(
            marked=0,
            has_unseen_achievements=await reading.has_unseen_achievements(session, user_id),
            errors=[
                AchievementsMarkSeenError(
                    code=AchievementsMarkSeenErrorCode.TOO_MANY_IDS,
                    field="goalIds",
                    message=f"At most {MAX_MARK_SEEN} ids at once.",
                )
            ],
        )
    ids = _typed_uuids(data.goal_ids, "UserGoal")
    marked = await reading.mark_achievements_seen(session, user_id, ids, now=utcnow())
    unseen = await reading.has_unseen_achievements(session, user_id)
    return AchievementsMarkSeenPayload(marked=marked, has_unseen_achievements=unseen, errors=[])


async def viewer_notifications(info: InfoT, unseen_only: bool) -> list[GoalNotificationNode]:
    user_id, locale = await _viewer(info)
    found = await reading.notifications(
        info.context.session, user_id, unseen_only=unseen_only, now=utcnow(), limit=MAX_ACHIEVEMENTS
    )
    return [
        GoalNotificationNode(
            id=str(item.id),
            kind=item.kind,
            goal=goal_node(item.goal, locale),
            created_at=item.created_at,
            seen=item.seen_at is not None,
        )
        for item in found
    ]


async def notifications_mark_seen(
    info: InfoT, data: GoalNotificationsMarkSeenInput
) -> GoalNotificationsMarkSeenPayload:
    user_id, _ = await _viewer(info)
    if len(data.ids) > MAX_MARK_SEEN:
        return GoalNotificationsMarkSeenPayload(
            marked=0,
            errors=[
                AchievementsMarkSeenError(
                    code=AchievementsMarkSeenErrorCode.TOO_MANY_IDS,
                    field="ids",
                    message=f"At most {MAX_MARK_SEEN} ids at once.",
                )
            ],
        )
    ids = _typed_uuids(data.ids, "GoalNotification")
    marked = await reading.mark_notifications_seen(info.context.session, user_id, ids, now=utcnow())
    return GoalNotificationsMarkSeenPayload(marked=marked, errors=[])


async def user_goals_by_ids(info: InfoT, ids: list[str]) -> list[UserGoalNode | None]:
    """Node refetch: a user gets their own goals, an admin anyone's; others get null."""
    principal = await info.context.principal()
    if principal.user_id is None and not principal.has_role(Role.ADMIN):
        return [None] * len(ids)
    parsed = parse_uuids(ids)
    found = await reading.goals_by_ids(info.context.session, list(parsed.values()), now=utcnow())
    locale = getattr(info.context.session.info.get("principal_user"), "locale", None)
    result: list[UserGoalNode | None] = []
    for key in ids:
        view = found.get(parsed[key]) if key in parsed else None
        visible = view is not None and (
            view.user_id == principal.user_id or principal.has_role(Role.ADMIN)
        )
        result.append(goal_node(view, locale) if visible and view is not None else None)
    return result


def _typed_uuids(ids: Sequence[strawberry.ID], type_name: str) -> list[uuid.UUID]:
    """The `type_name` ids among `ids`; anything else is ignored like an unknown id."""
    found = []
    for value in ids:
        try:
            found.append(decode_global_id(value, type_name))
        except ValueError:
            continue
    return found


# ---- keyset pages --------------------------------------------------------------------------


def _cursor(at: datetime, entry_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"k:{at.isoformat()}|{entry_id}".encode()).decode()


def _decode_keyset(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        kind, _, raw = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        at, _, entry_id = raw.partition("|")
        moment = datetime.fromisoformat(at)
        # Cursors we issue carry an offset; a naive time can't be compared with the column.
        if kind != "k" or moment.tzinfo is None:
            raise ValueError(cursor)
        return moment, uuid.UUID(entry_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadUserInput("Invalid cursor.", "after") from exc


def _page_size(info: InfoT, first: int | None) -> int:
    limit = info.context.settings.max_page_size if first is None else first
    if not 0 <= limit <= info.context.settings.max_page_size:
        raise BadUserInput(
            f"`first` must be between 0 and {info.context.settings.max_page_size}.", "first"
        )
    return limit


def _connection(
    nodes: list[Any], cursors: list[str], has_next: bool, has_previous: bool
) -> relay.Connection[Any]:
    edges = [
        relay.Edge(node=node, cursor=cursor) for node, cursor in zip(nodes, cursors, strict=True)
    ]
    return relay.Connection(
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
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


async def viewer_progress_log(
    info: InfoT, first: int | None, after: str | None
) -> relay.Connection[GoalProgressLogEntry]:
    user_id, _ = await _viewer(info)
    limit = _page_size(info, first)
    before = _decode_keyset(after)
    rows = await reading.progress_log(info.context.session, user_id, limit=limit + 1, before=before)
    page = rows[:limit]
    return _connection(
        [log_entry_node(r) for r in page],
        [_cursor(r.processed_at, r.id) for r in page],
        len(rows) > limit,
        before is not None,
    )


def wallet_entry_node(entry: WalletEntry) -> WalletEntryNode:
    return WalletEntryNode(
        id=str(entry.id),
        amount=Money(amount_minor=entry.amount_minor, currency=entry.currency),
        kind=WalletEntryKind(entry.kind.value),
        order_id=entry.order_id,
        created_at=entry.created_at,
    )


async def wallet_balances(info: InfoT) -> list[Money]:
    user_id, _ = await _viewer(info)
    found = await reading.wallet_balances(info.context.session, user_id)
    return [Money(amount_minor=amount, currency=currency) for amount, currency in found]


async def wallet_entries(
    info: InfoT, first: int | None, after: str | None
) -> relay.Connection[WalletEntryNode]:
    user_id, _ = await _viewer(info)
    limit = _page_size(info, first)
    before = _decode_keyset(after)
    rows = await reading.wallet_entries(
        info.context.session, user_id, limit=limit + 1, before=before
    )
    page = rows[:limit]
    return _connection(
        [wallet_entry_node(r) for r in page],
        [_cursor(r.created_at, r.id) for r in page],
        len(rows) > limit,
        before is not None,
    )


# ---- orderRecord ---------------------------------------------------------------------------


def _order_error(exc: DomainError) -> OrderRecordPayload:
    code = OrderErrorCode.__members__.get(exc.code.name, OrderErrorCode.INVALID_ORDER)
    return OrderRecordPayload(
        outcome=None,
        order=None,
        errors=[OrderRecordError(code=code, field=exc.field, message=exc.message)],
    )


def _user_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        pass
    return node_uuid(strawberry.ID(raw), "User", "userId", OrderErrorCode.UNKNOWN_USER)


async def order_record(info: InfoT, data: OrderRecordInput) -> OrderRecordPayload:
    await require(info, Role.SERVICE)
    payload: dict[str, Any] = data.data if isinstance(data.data, dict) else {}
    try:
        if data.data is not None and not isinstance(data.data, dict):
            raise DomainError(OrderErrorCode.INVALID_DATA, "Give a JSON object.", "data")
        result = await record_order(
            info.context.session,
            OrderInput(
                order_id=data.order_id,
                user_id=_user_id(str(data.user_id)),
                kind=data.kind,
                status=data.status,
                ride_class=data.ride_class,
                payment_method=data.payment_method,
                price_minor=data.price.amount_minor,
                currency=data.price.currency,
                ordered_at=data.created_at,
                completed_at=data.completed_at,
                city_timezone=data.city_timezone,
                data=payload,
            ),
        )
    except DomainError as exc:
        return _order_error(exc)
    order = result.order
    return OrderRecordPayload(
        outcome=result.outcome,
        order=RecordedOrder(
            order_id=order.order_id,
            status=OrderStatus(order.status),
            recorded_at=order.created_at,
        ),
        errors=[],
    )


# ---- roots ---------------------------------------------------------------------------------


@strawberry.type(description="What the app needs on start, one field per domain.")
class Launch:
    @strawberry.field(description="Null unless the caller is a signed-in user.")
    async def personal_goals(self, info: InfoT) -> PersonalGoalsSummary | None:
        return await personal_goals_summary(info)


@strawberry.type
class GoalQuery:
    @strawberry.field(description="The app-start query: one call for what every screen needs.")
    def launch(self) -> Launch:
        return Launch()


@strawberry.type
class GoalMutation:
    @strawberry.mutation(
        description="Record an order (SERVICE): stored once by order id and processed "
        "against the user's active goal in the background."
    )
    async def order_record(self, info: InfoT, input: OrderRecordInput) -> OrderRecordPayload:
        return await order_record(info, input)

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
