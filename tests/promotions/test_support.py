"""What support and product see (both backends): a user's promotion history with its ride
ledger, a promotion's funnel, the user's own ride log and reminders, and what account
deletion does to a run."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update
from strawberry.relay import to_base64

from app.models.base import utcnow
from app.models.identity import User
from app.models.promotions import PromotionUser
from app.runtime import Runtime
from app.services.goals.processing import process_pending
from app.services.identity import users as user_service
from app.services.promotions import expiry, reading, rewards, runs
from app.uow import unit_of_work
from tests.factories import promotions as f
from tests.factories.identity import access_token, create_user
from tests.factories.orders import order, record
from tests.helpers import gql
from tests.promotions.test_admin import admin_token

HISTORY = """
query History($id: ID!) {
  userPromotions(userId: $id) {
    promotionId status progress targetRides reward completedAt rewardedAt
    rides { orderId counted reason amount { amountMinor currency } }
  }
}"""
FUNNEL = """
query Funnel($id: ID!) {
  promotionFunnel(promotionId: $id) {
    splits started completed rewarded expired rewardExpired medianSecondsToComplete
  }
}"""
OWN = """
query {
  viewer { promotion { status rides { orderId counted reason } notifications { kind } } }
}"""


async def test_support_sees_a_users_runs_with_every_ride_and_its_reason(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    promotion = await f.started(runtime, user.id, target_rides=2)
    cheap = await f.ride(runtime, user.id, price_minor=100)
    counted = [await f.ride(runtime, user.id) for _ in range(2)]
    body = await gql(
        client, HISTORY, {"id": to_base64("User", str(user.id))}, token=await admin_token(runtime)
    )
    [run] = body["data"]["userPromotions"]
    assert run["promotionId"] == to_base64("Promotion", str(promotion.id))
    assert (run["status"], run["progress"], run["targetRides"]) == ("COMPLETED", 2, 2)
    assert run["completedAt"] is not None and run["rewardedAt"] is None
    assert {r["orderId"]: (r["counted"], r["reason"]) for r in run["rides"]} == {
        cheap: (False, "BELOW_MINIMUM"),
        counted[0]: (True, "COUNTED"),
        counted[1]: (True, "COUNTED"),
    }
    own = await gql(client, OWN, token=await access_token(runtime, user))
    shown = own["data"]["viewer"]["promotion"]
    assert {r["orderId"] for r in shown["rides"]} == {cheap, *counted}
    other = await gql(client, HISTORY, {"id": "not-a-user-id"}, token=await admin_token(runtime))
    assert other["data"]["userPromotions"] == []


async def test_the_funnel_counts_each_stage(client: httpx.AsyncClient, runtime: Runtime) -> None:
    promotion = await f.create_promotion(runtime, target_rides=1)
    await f.set_region(runtime)
    users = [await create_user(runtime) for _ in range(5)]
    for user in users:
        await f.pre_offer(runtime, user.id, promotion)
    for user in users[:4]:
        await f.start(runtime, user.id, promotion)  # each start makes the split too
    for user in users[:3]:
        await f.ride(runtime, user.id)
    await f.accept(runtime, users[0].id, promotion)
    short = await f.run_of(runtime, users[3].id, promotion)  # its deadline is the latest
    async with runtime.session_factory() as session, session.begin():
        await expiry.expire_due(
            session,
            now=short.challenge_ends_at + timedelta(minutes=5),
            grace=timedelta(0),
            batch_size=10,
        )  # users[1] and [2]: the reward lapsed; users[3]: the challenge too
    body = await gql(
        client,
        FUNNEL,
        {"id": to_base64("Promotion", str(promotion.id))},
        token=await admin_token(runtime),
    )
    funnel = body["data"]["promotionFunnel"]
    assert funnel | {"medianSecondsToComplete": None} == {
        "splits": 4,
        "started": 4,
        "completed": 3,
        "rewarded": 1,
        "expired": 1,
        "rewardExpired": 2,
        "medianSecondsToComplete": None,
    }
    assert 0 <= funnel["medianSecondsToComplete"] < 60
    unknown = await gql(
        client,
        FUNNEL,
        {"id": to_base64("Promotion", "00000000-0000-0000-0000-000000000000")},
        token=await admin_token(runtime),
    )
    assert unknown["data"]["promotionFunnel"] is None


async def test_the_viewer_sees_its_reminders(client: httpx.AsyncClient, runtime: Runtime) -> None:
    user = await create_user(runtime)
    promotion = await f.completed(runtime, user.id)
    run = await f.run_of(runtime, user.id, promotion)
    assert run.claim_ends_at is not None
    async with runtime.session_factory() as session, session.begin():
        await expiry.remind_due(
            session,
            now=run.claim_ends_at - timedelta(hours=1),
            before=timedelta(hours=48),
            batch_size=10,
        )
    own = await gql(client, OWN, token=await access_token(runtime, user))
    assert own["data"]["viewer"]["promotion"]["notifications"] == [{"kind": "CLAIM_ENDING"}]


async def test_deleting_the_account_ends_the_run_in_play(runtime: Runtime) -> None:
    running, done = await create_user(runtime), await create_user(runtime)
    started = await f.started(runtime, running.id)
    completed = await f.completed(runtime, done.id)
    for user in (running, done):
        async with runtime.session_factory() as session, session.begin():
            found = await session.get(User, user.id)
            assert found is not None
            await user_service.delete_account(session, found)
    assert (await f.run_of(runtime, running.id, started)).status == "EXPIRED"
    assert (await f.run_of(runtime, done.id, completed)).status == "REWARD_EXPIRED"


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_the_funnel_metrics_count_after_commit(runtime: Runtime) -> None:
    names = (
        "engage_promotions_started_total",
        "engage_promotions_completed_total",
        "engage_promotions_rewarded_total",
        "engage_promotion_claim_lag_seconds_count",
    )
    user = await create_user(runtime)
    promotion = await f.create_promotion(runtime, target_rides=1)
    await f.set_region(runtime)
    await f.pre_offer(runtime, user.id, promotion)
    started = utcnow() - timedelta(seconds=1)  # before the ride, however slow the machine
    ride = order(user.id, price_minor=20_000, currency="MXN", completed_at=utcnow())
    await record(runtime, ride)
    before = {name: _sample(name) for name in names}
    now = utcnow()
    async with unit_of_work(runtime.session_factory) as session:  # runs the after-commit hooks
        await runs.start(session, user.id, promotion.id, now=started)
    async with unit_of_work(runtime.session_factory) as session:
        await process_pending(session, [user.id], now=now)
    for _ in range(2):  # a retry counts nothing
        async with unit_of_work(runtime.session_factory) as session:
            await rewards.accept(session, user.id, promotion.id, now=utcnow())
    with pytest.raises(RuntimeError, match="rolled back"):  # noqa: PT012 - the block is the unit
        async with unit_of_work(runtime.session_factory) as session:
            await rewards.accept(session, user.id, promotion.id, now=utcnow())
            raise RuntimeError("rolled back")
    assert {name: _sample(name) - before[name] for name in names} == dict.fromkeys(names, 1.0)


async def test_the_median_time_to_complete_is_the_middle_run(runtime: Runtime) -> None:
    promotion = await f.create_promotion(runtime, target_rides=1)
    await f.set_region(runtime)
    started_at = utcnow() - timedelta(days=2)
    for hours in (1, 2, 10, None):  # three completed runs and one still running
        user = await create_user(runtime)
        await f.pre_offer(runtime, user.id, promotion)
        run = await f.start(runtime, user.id, promotion, now=started_at)
        if hours is not None:
            async with runtime.session_factory() as session, session.begin():
                await session.execute(
                    update(PromotionUser)
                    .where(PromotionUser.id == run.id)
                    .values(status="COMPLETED", completed_at=started_at + timedelta(hours=hours))
                )
    async with runtime.session_factory() as session:
        funnel = await reading.funnel(session, promotion.id)
    assert (funnel.started, funnel.completed) == (4, 3)
    assert funnel.median_seconds_to_complete == pytest.approx(2 * 3600)
