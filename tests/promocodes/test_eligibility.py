"""Who may use a code, pinned at its edges: grants are per code, subscriber eligibility from
the purchase history (only CONFIRMED purchases count), and the validity window's instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.models.identity import Group, GroupMember, User
from app.models.promocodes import (
    Audience,
    Plan,
    Promocode,
    PurchaseStatus,
    Rejection,
    SubscriberEligibility,
)
from app.runtime import Runtime
from app.services.promocodes.eligibility import evaluate, subscriber_status
from tests.factories.identity import create_user
from tests.factories.promocodes import (
    create_plan,
    create_promocode,
    create_purchase_row,
    grant_promocode,
)

T = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
Eligibility = SubscriberEligibility


async def _verdict(
    runtime: Runtime, user: User, code: Promocode, plan: Plan, now: datetime | None = None
) -> Rejection | None:
    async with runtime.session_factory() as session:
        stored = await session.get(User, user.id)
        assert stored is not None
        verdict = await evaluate(session, stored, code.code, plan, now or datetime.now(UTC))
    return verdict.rejection


async def _group_of(runtime: Runtime, user: User) -> Group:
    async with runtime.session_factory() as session, session.begin():
        group = Group(name=f"group-{user.id.hex[:8]}")
        session.add(group)
        await session.flush()
        session.add(GroupMember(group_id=group.id, user_id=user.id))
    return group


@pytest.mark.parametrize("through", ["user", "group"])
async def test_a_grant_of_one_granted_code_does_not_open_another(
    runtime: Runtime, through: str
) -> None:
    plan = await create_plan(runtime)
    buyer, other = await create_user(runtime), await create_user(runtime)
    held = await create_promocode(runtime, audience=Audience.GRANTED)
    foreign = await create_promocode(runtime, audience=Audience.GRANTED)
    if through == "user":
        await grant_promocode(runtime, held, user=buyer)
    else:
        await grant_promocode(runtime, held, group=await _group_of(runtime, buyer))
    await grant_promocode(runtime, foreign, user=other)

    assert await _verdict(runtime, buyer, held, plan) is None
    assert await _verdict(runtime, buyer, foreign, plan) is Rejection.NOT_ASSIGNED_TO_USER
    assert await _verdict(runtime, other, foreign, plan) is None
    assert await _verdict(runtime, other, held, plan) is Rejection.NOT_ASSIGNED_TO_USER


# (purchase history: (status, confirmed days before T, discounted cycles), status at T)
# Plans last 30 days. Only CONFIRMED purchases count: a user whose purchases are all pending
# or failed never subscribed. A purchase runs duration * max(discounted cycles, 1): zero
# discounted cycles is one cycle, not none.
HISTORIES = {
    "no purchases": ([], Eligibility.NEVER_SUBSCRIBED),
    "only pending": ([(PurchaseStatus.PENDING, 0, 0)], Eligibility.NEVER_SUBSCRIBED),
    "only failed": (
        [(PurchaseStatus.FAILED, 0, 0), (PurchaseStatus.FAILED, 40, 0)],
        Eligibility.NEVER_SUBSCRIBED,
    ),
    "pending and failed": (
        [(PurchaseStatus.PENDING, 0, 0), (PurchaseStatus.FAILED, 1, 3)],
        Eligibility.NEVER_SUBSCRIBED,
    ),
    "confirmed today": ([(PurchaseStatus.CONFIRMED, 0, 1)], Eligibility.ACTIVE),
    "zero cycles still run one period": ([(PurchaseStatus.CONFIRMED, 29, 0)], Eligibility.ACTIVE),
    "zero cycles, period over": ([(PurchaseStatus.CONFIRMED, 31, 0)], Eligibility.LAPSED),
    "one cycle over": ([(PurchaseStatus.CONFIRMED, 31, 1)], Eligibility.LAPSED),
    "two cycles still running": ([(PurchaseStatus.CONFIRMED, 31, 2)], Eligibility.ACTIVE),
    "lapsed and a pending retry": (
        [(PurchaseStatus.CONFIRMED, 45, 1), (PurchaseStatus.PENDING, 0, 0)],
        Eligibility.LAPSED,
    ),
    "lapsed and a running one": (
        [(PurchaseStatus.CONFIRMED, 90, 1), (PurchaseStatus.CONFIRMED, 10, 1)],
        Eligibility.ACTIVE,
    ),
}


@pytest.mark.parametrize(("history", "expected"), HISTORIES.values(), ids=HISTORIES.keys())
async def test_subscriber_eligibility_follows_confirmed_purchases(
    runtime: Runtime,
    history: list[tuple[PurchaseStatus, int, int]],
    expected: SubscriberEligibility,
) -> None:
    plan = await create_plan(runtime, duration_days=30)
    user = await create_user(runtime)
    for status, days_ago, cycles in history:
        await create_purchase_row(
            runtime,
            user,
            plan,
            status,
            confirmed_at=T - timedelta(days=days_ago),
            discounted_cycles=cycles,
        )
    async with runtime.session_factory() as session:
        assert await subscriber_status(session, user.id, T) is expected

    codes = {
        wanted: await create_promocode(runtime, eligibility=wanted)
        for wanted in SubscriberEligibility
    }
    verdicts = {
        wanted: await _verdict(runtime, user, code, plan, T) for wanted, code in codes.items()
    }
    assert verdicts == {
        wanted: None if wanted in (Eligibility.ANY, expected) else Rejection.SUBSCRIBER_NOT_ELIGIBLE
        for wanted in SubscriberEligibility
    }


async def test_a_subscription_lapses_at_the_exact_end_of_its_period(runtime: Runtime) -> None:
    plan = await create_plan(runtime, duration_days=30)
    user = await create_user(runtime)
    await create_purchase_row(runtime, user, plan, confirmed_at=T, discounted_cycles=0)
    end = T + timedelta(days=30)
    async with runtime.session_factory() as session:
        assert await subscriber_status(session, user.id, end - timedelta(seconds=1)) is (
            Eligibility.ACTIVE
        )
        assert await subscriber_status(session, user.id, end) is Eligibility.LAPSED


async def test_valid_from_is_inclusive_and_valid_until_exclusive(runtime: Runtime) -> None:
    """The validity window is half-open, [validFrom, validUntil) (docs/promocodes.md)."""
    plan = await create_plan(runtime)
    user = await create_user(runtime)
    until = T + timedelta(days=7)
    code = await create_promocode(runtime, valid_from=T, valid_until=until)
    tick = timedelta(microseconds=1)
    assert await _verdict(runtime, user, code, plan, T - tick) is Rejection.NOT_STARTED
    assert await _verdict(runtime, user, code, plan, T) is None
    assert await _verdict(runtime, user, code, plan, until - tick) is None
    assert await _verdict(runtime, user, code, plan, until) is Rejection.EXPIRED
