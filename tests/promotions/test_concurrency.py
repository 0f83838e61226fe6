"""Promotions under concurrency and crashes, on PostgreSQL and the embedded SQLite alike
(`racing_runtime` commits for real): concurrent accepts make one application, a failure
between any two of the six steps leaves none of them, concurrent starts make one run, and
racing ride jobs complete a run once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models.base import utcnow
from app.models.promotions import (
    ActivePreOffer,
    LoanApplication,
    OriginationSession,
    PromotionRide,
    PromotionSplit,
    PromotionUser,
)
from app.runtime import Runtime
from app.services.errors import DomainError
from app.services.promotions import rewards, runs
from tests.factories import promotions as f
from tests.factories.goals import process_users
from tests.factories.identity import create_user
from tests.factories.orders import order, record_batch

EFFECTS = (PromotionSplit, ActivePreOffer, LoanApplication, OriginationSession)


async def _counts(runtime: Runtime) -> dict[str, int]:
    async with runtime.session_factory() as session:
        counts = {
            model.__tablename__: int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in EFFECTS
        }
        used = await session.scalar(select(func.count()).where(PromotionSplit.used_at.is_not(None)))
        rewarded = await session.scalar(
            select(func.count()).where(PromotionUser.status == "REWARDED")
        )
    return counts | {"used splits": int(used or 0), "rewarded": int(rewarded or 0)}


async def _accept(runtime: Runtime, user_id: Any, promotion_id: Any) -> rewards.Accepted:
    async with runtime.session_factory() as session, session.begin():
        return await rewards.accept(session, user_id, promotion_id, now=utcnow())


async def test_concurrent_accepts_make_one_application_and_all_get_it(
    racing_runtime: Runtime,
) -> None:
    runtime = racing_runtime
    user = await create_user(runtime)
    promotion = await f.completed(runtime, user.id)
    accepted = await asyncio.gather(*(_accept(runtime, user.id, promotion.id) for _ in range(8)))
    assert len({a.application_id for a in accepted}) == 1
    assert await _counts(runtime) == {
        "promotion_splits": 1,
        "promotion_active_pre_offers": 1,
        "promotion_loan_applications": 1,
        "promotion_origination_sessions": 1,
        "used splits": 1,
        "rewarded": 1,
    }


STEPS = ("_use_split", "_active_pre_offer", "_application", "_origination_session")


@pytest.mark.parametrize("step", STEPS)
async def test_a_failure_at_any_step_leaves_none_of_them_and_a_retry_does_all(
    racing_runtime: Runtime, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    runtime = racing_runtime
    user = await create_user(runtime)
    promotion = await f.completed(runtime, user.id)
    async with runtime.session_factory() as session, session.begin():
        await session.execute(PromotionSplit.__table__.delete())  # step 1 must create it
    before = await _counts(runtime)
    original: Callable[..., Any] = getattr(rewards, step)

    async def crash(*args: Any, **kwargs: Any) -> Any:
        await original(*args, **kwargs)  # the step's write happens, then the process dies
        raise ConnectionError(f"crash after {step}")

    monkeypatch.setattr(rewards, step, crash)
    with pytest.raises(ConnectionError):
        await _accept(runtime, user.id, promotion.id)
    assert await _counts(runtime) == before
    assert (await f.run_of(runtime, user.id, promotion)).status == "COMPLETED"

    monkeypatch.setattr(rewards, step, original)
    await _accept(runtime, user.id, promotion.id)
    assert await _counts(runtime) == {
        "promotion_splits": 1,
        "promotion_active_pre_offers": 1,
        "promotion_loan_applications": 1,
        "promotion_origination_sessions": 1,
        "used splits": 1,
        "rewarded": 1,
    }


async def test_concurrent_starts_make_one_run(racing_runtime: Runtime) -> None:
    runtime = racing_runtime
    user = await create_user(runtime)
    promotion = await f.create_promotion(runtime)
    await f.set_region(runtime)
    await f.pre_offer(runtime, user.id, promotion)

    async def start() -> str:
        try:
            async with runtime.session_factory() as session, session.begin():
                await runs.start(session, user.id, promotion.id, now=utcnow())
        except DomainError as exc:
            return exc.code.value
        return "STARTED"

    outcomes = await asyncio.gather(*(start() for _ in range(6)))
    assert sorted(outcomes) == ["ALREADY_STARTED"] * 5 + ["STARTED"]
    async with runtime.session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(PromotionUser)) == 1
        assert await session.scalar(select(func.count()).select_from(PromotionSplit)) == 1


async def test_racing_ride_jobs_complete_the_run_once(racing_runtime: Runtime) -> None:
    runtime = racing_runtime
    user = await create_user(runtime)
    promotion = await f.started(runtime, user.id, target_rides=5)
    rides = [order(user.id, price_minor=20_000, currency="MXN") for _ in range(9)]
    await asyncio.gather(
        record_batch(runtime, rides[:5]),
        record_batch(runtime, rides[5:]),
        *(process_users(runtime, [user.id]) for _ in range(4)),
    )
    await process_users(runtime, [user.id])
    run = await f.run_of(runtime, user.id, promotion)
    assert (run.status, run.progress) == ("COMPLETED", 5)
    async with runtime.session_factory() as session:
        reasons = list(await session.scalars(select(PromotionRide.reason)))
    assert sorted(reasons) == ["COUNTED"] * 5 + ["TARGET_REACHED"] * (len(reasons) - 5)
