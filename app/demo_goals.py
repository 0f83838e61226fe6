"""Demo goal templates, assigned to the demo users, and an `orderRecord` to try."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.goals import GoalTemplate
from app.models.identity import User
from app.services.goals.assignment import Assignment, assign_goal

DEMO_TEMPLATES: tuple[dict[str, object], ...] = (
    {
        "id": "comfort-3",
        "title": {"en": "Take 3 Comfort rides", "ru": "Совершите 3 поездки в «Комфорте»"},
        "description": {"en": "Three rides in 5 days earn 300 RUB in your wallet."},
        "details": {"en": ["Comfort or Comfort+", "Any time of day", "From 200 RUB"]},
        "button_text": {"en": "Collect", "ru": "Забрать"},
        "conditions": {
            "target": 3,
            "periodDays": 5,
            "rideClasses": ["comfort", "comfort_plus"],
            "minPrice": {"amountMinor": 20_000, "currency": "RUB"},
        },
        "bonus": {"type": "WALLET", "amountMinor": 30_000, "currency": "RUB"},
    },
    {
        "id": "night-owl-2",
        "title": {"en": "Two night rides", "ru": "Две ночные поездки"},
        "description": {"en": "Ride between 22:00 and 06:00 twice for a 15 % promocode."},
        "details": {"en": ["22:00-06:00, your city's time", "Any class"]},
        "button_text": {"en": "Get the code"},
        "conditions": {
            "target": 2,
            "periodDays": 7,
            "timeWindow": {"start": "22:00", "end": "06:00"},
        },
        "bonus": {"type": "PROMOCODE", "kind": "PERCENT", "value": 15, "validityDays": 30},
    },
    {
        "id": "wallet-week",
        "title": {"en": "Pay by wallet 2 times"},
        "description": {"en": "Two wallet-paid rides earn 5 % cashback for 14 days."},
        "details": {"en": ["Payment: wallet"]},
        "button_text": {"en": "Nice"},
        "conditions": {"target": 2, "periodDays": 7, "paymentMethods": ["wallet"]},
        "bonus": {"type": "CASHBACK", "percent": 5, "days": 14},
    },
)


async def load_demo_goals(
    session: AsyncSession, admin: User, users: list[User], now: datetime
) -> None:
    for data in DEMO_TEMPLATES:
        session.add(
            GoalTemplate(
                default_locale="en", created_by=admin.email, updated_by=admin.email, **data
            )
        )
    await session.flush()
    plan = {0: ("comfort-3", "night-owl-2"), 1: ("wallet-week",)}
    # Started an hour ago, so rides completed "now" (the printed example) count.
    started = now - timedelta(hours=1)
    for index, template_ids in plan.items():
        for template_id in template_ids:
            await assign_goal(
                session,
                Assignment(users[index].id, template_id),
                actor=f"demo:{admin.email}",
                now=started,
            )


def order_record_example(user: User, now: datetime) -> str:
    """A ready `orderRecord` mutation that counts towards the demo user's comfort goal."""
    completed = now.replace(microsecond=0)
    variables = {
        "input": {
            "orderId": f"demo-{int(completed.timestamp())}",
            "userId": str(user.id),
            "createdAt": (completed - timedelta(minutes=25)).isoformat(),
            "completedAt": completed.isoformat(),
            "status": "COMPLETE",
            "rideClass": "comfort",
            "paymentMethod": "card",
            "price": {"amountMinor": 45_000, "currency": "RUB"},
            "cityTimezone": "Europe/Moscow",
        }
    }
    return (
        "mutation Record($input: OrderRecordInput!) {\n"
        "  orderRecord(input: $input) { outcome order { orderId status } "
        "errors { code field message } }\n}\n"
        f"variables: {json.dumps(variables)}"
    )
