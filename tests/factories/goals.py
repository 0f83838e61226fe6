"""Plain async factories for goals test data, and a stand-in for the processing actor.

Orders come from `tests.factories.orders`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.models.base import utcnow
from app.models.goals import GoalTemplate, UserGoal
from app.runtime import Runtime
from app.services.goals.assignment import Assignment, assign_goal
from app.services.goals.granting import finish_goal
from app.services.goals.processing import ProcessResult, process_order, process_pending
from app.services.orders.recording import OrderInput
from tests.factories.orders import record

WALLET_300 = {"type": "WALLET", "amountMinor": 30_000, "currency": "RUB"}


async def create_template(
    runtime: Runtime,
    template_id: str | None = None,
    *,
    conditions: dict[str, Any] | None = None,
    bonus: dict[str, Any] | None = None,
    title: dict[str, str] | None = None,
) -> GoalTemplate:
    async with runtime.session_factory() as session, session.begin():
        template = GoalTemplate(
            id=template_id or f"goal-{uuid.uuid4().hex[:8]}",
            default_locale="en",
            title=title or {"en": "Take 3 comfort rides", "ru": "Совершите 3 поездки"},
            description={"en": "Rides in comfort count."},
            details={"en": ["Comfort class", "Any time"]},
            button_text={"en": "Great"},
            conditions=conditions or {"target": 3, "periodDays": 5, "rideClasses": ["comfort"]},
            bonus=bonus or WALLET_300,
            created_by="test",
            updated_by="test",
        )
        session.add(template)
    return template


async def assign(
    runtime: Runtime,
    user_id: uuid.UUID,
    template_id: str,
    *,
    now: datetime | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> UserGoal:
    async with runtime.session_factory() as session, session.begin():
        return await assign_goal(
            session,
            Assignment(user_id, template_id, starts_at, ends_at),
            actor="test",
            now=now or utcnow(),
        )


async def process(
    runtime: Runtime, order_id: str, user_id: uuid.UUID, *, now: datetime | None = None
) -> ProcessResult:
    """What the `goals.process_order` actor does, in its own transaction."""
    async with runtime.session_factory() as session, session.begin():
        return await process_order(session, order_id, user_id, now=now or utcnow())


async def process_users(
    runtime: Runtime, user_ids: list[uuid.UUID], *, now: datetime | None = None
) -> list[ProcessResult]:
    """What the `goals.process_orders` actor does, in its own transaction."""
    async with runtime.session_factory() as session, session.begin():
        return await process_pending(session, user_ids, now=now or utcnow())


async def record_and_process(
    runtime: Runtime, data: OrderInput, *, now: datetime | None = None
) -> ProcessResult:
    await record(runtime, data)
    return await process(runtime, data.order_id, data.user_id, now=now)


async def finish(runtime: Runtime, user_goal_id: uuid.UUID, *, now: datetime | None = None) -> bool:
    async with runtime.session_factory() as session, session.begin():
        return await finish_goal(session, user_goal_id, now=now or utcnow())


async def goal(runtime: Runtime, user_goal_id: uuid.UUID) -> UserGoal:
    async with runtime.session_factory() as session:
        found = await session.get(UserGoal, user_goal_id)
        assert found is not None
        return found


async def goals_of(runtime: Runtime, user_id: uuid.UUID) -> list[UserGoal]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(
            select(UserGoal).where(UserGoal.user_id == user_id).order_by(UserGoal.position)
        )
        return list(rows)
