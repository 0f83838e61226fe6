"""Demo family: boris owns it and shares a card; anna rides on it with a weekly limit, vera
with a daily one; and what to try (a ride check that holds the fare, its charge)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.models.base import utcnow
from app.models.family import LimitFrame
from app.models.identity import User
from app.services.family import accounts, cards, members
from app.services.family.members import LimitSpec

DEMO_CARD = "card-xdemo0000boris"


async def load_demo_family(session: AsyncSession, owner: User, riders: list[User]) -> uuid.UUID:
    """The family; returns its id."""
    now = utcnow()
    account_id = await accounts.create_family(
        session, owner.id, name="Boris's family", color="FF9900", now=now
    )
    limits = (
        LimitSpec(150_000, "RUB", LimitFrame.WEEK),
        LimitSpec(30_000, "RUB", LimitFrame.DAY),
    )
    for rider, limit in zip(riders, limits, strict=True):
        assert rider.phone is not None
        await members.add_member(
            session, account_id, owner.id, phone=rider.phone, limit=limit, passport=None, now=now
        )
        await members.accept(session, account_id, rider.id, passport=None, now=now)
    await cards.upsert_card(
        session,
        owner.id,
        card_id=DEMO_CARD,
        brand="VISA",
        last4="4242",
        expires_month=12,
        expires_year=2030,
        now=now,
    )
    await cards.set_family_cards(session, account_id, owner.id, [DEMO_CARD], DEMO_CARD, now=now)
    return account_id


def family_try(account_id: uuid.UUID, vera: User) -> str:
    ride = (
        f'accountId: "{account_id}", userId: "{vera.id}", '
        'amount: {amountMinor: 25000, currency: "RUB"}'
    )
    return (
        "\nFamily: boris (owner) shares a card with anna (1,500 RUB a week) and vera (300 RUB "
        "a day). As anna: query { viewer { paymentMethods { card { id last4 } limit { "
        "remaining { amountMinor } resetsAt } } familyAccounts { name members { phone role "
        "limit { remaining { amountMinor } } limitHidden } } } }\n"
        "With the SERVICE token, hold vera's fare (a second hold of 25000 is LIMIT_EXCEEDED):\n"
        f'  mutation {{ familyRideCheck(input: {{{ride}, hold: {{orderId: "demo-ride-1"}}}}) '
        "{ available reason limit { remaining { amountMinor } resetsAt } "
        "errors { code field } } }\n"
        f'  mutation {{ familyRideCharge(input: {{{ride}, orderId: "demo-ride-1"}}) '
        "{ duplicate limit { charged { amountMinor } } errors { code field } } }\n"
        "As boris (boris@example.com): query { viewer { familyNotifications { kind details } } }"
    )
