"""Goal objects for GraphQL, built eagerly from query rows, and keyset page helpers."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from app.models.wallet import WalletEntry
from app.services.goals.conditions import ProgressReason, RollingPeriod
from app.services.goals.lifecycle import snapshot_conditions
from app.services.goals.reading import GoalView, LogEntry
from app.services.goals.texts import localize, localize_lines
from schema.base import BadUserInput, Money
from schema.context import Context
from schema.goals.types import (
    GoalBonusView,
    GoalConditionsView,
    GoalProgressCount,
    GoalProgressLogEntry,
    GoalTimeWindow,
    UserGoalNode,
    WalletEntryKind,
    WalletEntryNode,
)

InfoT = Info[Context, Any]


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


# ---- keyset pages --------------------------------------------------------------------------


def keyset_cursor(at: datetime, entry_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"k:{at.isoformat()}|{entry_id}".encode()).decode()


def decode_keyset(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
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


def wallet_entry_node(entry: WalletEntry) -> WalletEntryNode:
    return WalletEntryNode(
        id=str(entry.id),
        amount=Money(amount_minor=entry.amount_minor, currency=entry.currency),
        kind=WalletEntryKind(entry.kind.value),
        order_id=entry.order_id,
        created_at=entry.created_at,
    )
