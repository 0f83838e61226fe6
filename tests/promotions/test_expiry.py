"""Expiry and reminders (both backends): the periodic job stores what the deadlines say after
the grace, a read stores it lazily, a late-processed ride in time still counts, and each
reminder is written once, only when due."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from app.models.base import utcnow
from app.models.promotions import PromotionNotification
from app.runtime import Runtime
from app.services.promotions import expiry, runs
from tests.factories import promotions as f
from tests.factories.goals import process_users
from tests.factories.identity import create_user
from tests.factories.orders import order, record

GRACE = timedelta(seconds=60)
BEFORE = timedelta(hours=48)


async def _expire(runtime: Runtime, now: datetime) -> int:
    async with runtime.session_factory() as session, session.begin():
        return await expiry.expire_due(session, now=now, grace=GRACE, batch_size=50)


async def _remind(runtime: Runtime, now: datetime) -> int:
    async with runtime.session_factory() as session, session.begin():
        return await expiry.remind_due(session, now=now, before=BEFORE, batch_size=50)


async def _notifications(runtime: Runtime, user_id: uuid.UUID) -> list[tuple[str, datetime]]:
    async with runtime.session_factory() as session:
        found = await session.scalars(
            select(PromotionNotification).where(PromotionNotification.user_id == user_id)
        )
        return sorted((n.kind.value, n.deadline) for n in found)


async def test_the_job_expires_runs_only_after_the_deadline_and_the_grace(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    promotion = await f.started(runtime, user.id)
    deadline = (await f.run_of(runtime, user.id, promotion)).challenge_ends_at
    assert await _expire(runtime, deadline) == 0
    assert await _expire(runtime, deadline + GRACE - timedelta(seconds=1)) == 0
    assert await _expire(runtime, deadline + GRACE) == 1
    run = await f.run_of(runtime, user.id, promotion)
    assert (run.status, run.expired_at) == ("EXPIRED", deadline + GRACE)
    assert await _expire(runtime, deadline + GRACE * 10) == 0  # once


async def test_an_unclaimed_reward_expires_and_a_claimed_one_stays(runtime: Runtime) -> None:
    unclaimed, claimed = await create_user(runtime), await create_user(runtime)
    lapsing = await f.completed(runtime, unclaimed.id)
    kept = await f.completed(runtime, claimed.id)
    await f.accept(runtime, claimed.id, kept)
    deadline = (await f.run_of(runtime, unclaimed.id, lapsing)).claim_ends_at
    assert deadline is not None
    assert await _expire(runtime, deadline + GRACE) == 1
    assert (await f.run_of(runtime, unclaimed.id, lapsing)).status == "REWARD_EXPIRED"
    assert (await f.run_of(runtime, claimed.id, kept)).status == "REWARDED"


async def test_a_ride_in_time_processed_within_the_grace_still_completes_the_run(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    promotion = await f.create_promotion(runtime, target_rides=1, challenge_days=1)
    await f.set_region(runtime)
    await f.pre_offer(runtime, user.id, promotion)
    started_at = utcnow() - timedelta(days=1, seconds=30)  # the deadline passed 30 s ago
    await f.start(runtime, user.id, promotion, now=started_at)
    assert await _expire(runtime, utcnow()) == 0  # within the grace
    async with runtime.session_factory() as session:
        shown = await runs.current(session, user.id, now=utcnow())
    assert shown is not None and shown.status == "EXPIRED"  # what a read shows meanwhile
    ride = order(user.id, price_minor=20_000, currency="MXN", completed_at=started_at)
    await record(runtime, ride)
    await process_users(runtime, [user.id])
    assert (await f.run_of(runtime, user.id, promotion)).status == "COMPLETED"


async def test_a_read_stores_the_expiry_lazily_once_the_grace_passed(runtime: Runtime) -> None:
    user = await create_user(runtime)
    promotion = await f.started(runtime, user.id)
    deadline = (await f.run_of(runtime, user.id, promotion)).challenge_ends_at
    for now, stored in ((deadline, "STARTED"), (deadline + GRACE, "EXPIRED")):
        async with runtime.session_factory() as session, session.begin():
            shown = await runs.open_landing(session, user.id, now=now, grace=GRACE)
        assert shown is not None and shown.status == "EXPIRED"
        assert (await f.run_of(runtime, user.id, promotion)).status == stored
    assert await _expire(runtime, deadline + GRACE * 2) == 0  # the read counted it already


async def test_reminders_are_written_once_when_due(runtime: Runtime) -> None:
    short, done, finished = [await create_user(runtime) for _ in range(3)]
    running = await f.started(runtime, short.id)
    claimable = await f.completed(runtime, done.id)
    complete_run = await f.completed(runtime, finished.id)
    await f.accept(runtime, finished.id, complete_run)  # claimed: no reminder
    challenge_end = (await f.run_of(runtime, short.id, running)).challenge_ends_at
    claim_end = (await f.run_of(runtime, done.id, claimable)).claim_ends_at
    assert claim_end is not None

    assert await _remind(runtime, challenge_end - BEFORE - timedelta(seconds=1)) == 0
    assert await _remind(runtime, challenge_end - BEFORE) == 1
    assert await _remind(runtime, challenge_end - timedelta(hours=1)) == 0  # once
    assert await _notifications(runtime, short.id) == [("CHALLENGE_ENDING", challenge_end)]

    assert await _remind(runtime, claim_end - timedelta(hours=1)) == 1
    assert await _notifications(runtime, done.id) == [("CLAIM_ENDING", claim_end)]
    assert await _notifications(runtime, finished.id) == []
    assert await _remind(runtime, claim_end + timedelta(seconds=1)) == 0  # past: too late


async def test_no_challenge_reminder_once_the_target_is_reached(runtime: Runtime) -> None:
    user = await create_user(runtime)
    promotion = await f.completed(runtime, user.id)
    run = await f.run_of(runtime, user.id, promotion)
    await _remind(runtime, run.challenge_ends_at - timedelta(hours=1))
    kinds = [kind for kind, _ in await _notifications(runtime, user.id)]
    assert "CHALLENGE_ENDING" not in kinds
