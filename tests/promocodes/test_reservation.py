"""`reservation.create_purchase`, the lean path's edges: the refusal order when the code's
read finds nothing, a key reused across plans and codes, a caller who isn't active, and the
idempotency record's race decided by its unique index (PostgreSQL, committing sessions)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select, update

from app.models.identity import IdempotencyRecord, User, UserStatus
from app.models.promocodes import (
    Plan,
    Promocode,
    PromocodeAttempt,
    Purchase,
    Rejection,
)
from app.runtime import Runtime
from app.services.errors import DomainError
from app.services.promocodes.attempts import Caller, PromocodeRejected, RejectionLimits
from app.services.promocodes.errors import PurchaseErrorCode
from app.services.promocodes.reservation import PurchaseView, create_purchase
from tests.factories.identity import create_user
from tests.factories.promocodes import create_plan, create_promocode

POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def _create(
    runtime: Runtime,
    user: User,
    plan_id: uuid.UUID,
    code: str | None,
    key: str | None = None,
) -> tuple[PurchaseView, bool]:
    async with runtime.session_factory() as session, session.begin():
        return await create_purchase(
            session,
            Caller(user),
            plan_id=plan_id,
            code=code,
            idempotency_key=key,
            settings=runtime.settings,
        )


async def _refusal(
    runtime: Runtime,
    user: User,
    plan_id: uuid.UUID,
    code: str | None,
    key: str | None = None,
    limits: RejectionLimits | None = None,
) -> DomainError:
    """The error `create_purchase` raises; the attempt log it wrote is committed."""
    async with runtime.session_factory() as session:
        with pytest.raises(DomainError) as raised:
            await create_purchase(
                session,
                Caller(user),
                plan_id=plan_id,
                code=code,
                idempotency_key=key,
                settings=runtime.settings,
                limits=limits,
            )
        await session.commit()
    return raised.value


async def _count(runtime: Runtime, model: type) -> int:
    async with runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def plan(runtime: Runtime) -> Plan:
    return await create_plan(runtime, "monthly", price_minor=1_000)


async def test_a_key_reused_for_another_plan_or_an_unknown_code_is_refused(
    runtime: Runtime, plan: Plan
) -> None:
    user = await create_user(runtime)
    await create_promocode(runtime, "SAVE", max_uses=5)
    first, replayed = await _create(runtime, user, plan.id, "save", "k1")
    assert not replayed and first.plan is not None and first.code == "SAVE"

    again, replayed = await _create(runtime, user, plan.id, "save", "k1")
    assert replayed and again.id == first.id
    assert (again.plan, again.code) == (None, None)  # read back: the API's loaders fill them
    for plan_id, code in (
        (plan.id, "no-such-code"),  # the code's read finds nothing, the record is there
        (uuid.uuid4(), "save"),  # neither is the plan
        (uuid.uuid4(), None),
        (plan.id, None),
    ):
        refused = await _refusal(runtime, user, plan_id, code, "k1")
        assert refused.code is PurchaseErrorCode.IDEMPOTENCY_KEY_REUSED, (plan_id, code)
    assert await _count(runtime, Purchase) == 1
    assert await _count(runtime, PromocodeAttempt) == 0


async def test_a_retired_plan_still_replays_and_refuses_new_purchases(
    runtime: Runtime, plan: Plan
) -> None:
    user = await create_user(runtime)
    await create_promocode(runtime, "SAVE", max_uses=5)
    with_code, _ = await _create(runtime, user, plan.id, "save", "with")
    plain, _ = await _create(runtime, user, plan.id, None, "plain")
    async with runtime.session_factory() as session, session.begin():
        await session.execute(update(Plan).where(Plan.id == plan.id).values(active=False))

    assert (await _create(runtime, user, plan.id, "save", "with"))[0].id == with_code.id
    assert (await _create(runtime, user, plan.id, None, "plain"))[0].id == plain.id
    for code in ("save", "no-such-code", None):
        refused = await _refusal(runtime, user, plan.id, code, uuid.uuid4().hex)
        assert refused.code is PurchaseErrorCode.UNKNOWN_PLAN, code
    assert await _count(runtime, PromocodeAttempt) == 0  # not a code's refusal


async def test_an_inactive_caller_is_refused_before_the_code_is_judged(
    runtime: Runtime, plan: Plan
) -> None:
    user = await create_user(runtime)
    await create_promocode(runtime, "SAVE", max_uses=5)
    async with runtime.session_factory() as session, session.begin():
        stored = await session.get(User, user.id)
        assert stored is not None
        stored.status = UserStatus.BLOCKED
    for code in ("save", "no-such-code", "\x00"):
        refused = await _refusal(runtime, stored, plan.id, code)
        assert isinstance(refused, PromocodeRejected)
        assert refused.reason is Rejection.USER_NOT_ACTIVE, code
        assert refused.promocode_id is None
    assert await _count(runtime, Purchase) == 0
    assert await _count(runtime, PromocodeAttempt) == 3


async def test_a_rate_limited_caller_hears_so_for_a_code_that_does_not_exist(
    runtime: Runtime, plan: Plan
) -> None:
    user = await create_user(runtime)
    settings = runtime.settings.model_copy(update={"promocode_max_rejections": 1})
    limits = RejectionLimits(runtime.limiter, settings)
    reasons = []
    for _ in range(2):
        refused = await _refusal(runtime, user, plan.id, "no-such-code", limits=limits)
        assert isinstance(refused, PromocodeRejected)
        reasons.append((refused.reason, bool(refused.retry_after)))
    assert reasons == [(Rejection.NOT_FOUND, False), (Rejection.RATE_LIMITED, True)]


async def test_an_unknown_plan_without_a_code_is_unknown_plan(runtime: Runtime) -> None:
    user = await create_user(runtime)
    for key in (None, "k"):
        refused = await _refusal(runtime, user, uuid.uuid4(), None, key)
        assert refused.code is PurchaseErrorCode.UNKNOWN_PLAN
    assert await _count(runtime, IdempotencyRecord) == 0


# ---- the record's race, made deterministic: the winner holds its transaction open ---------


async def _race(runtime: Runtime, plan: Plan, first: str | None, second: str | None) -> object:
    """Two first calls with one key: the first written and still uncommitted while the
    second runs; the second's outcome (its purchase, or its error)."""
    user = await create_user(runtime)
    async with runtime.session_factory() as winner:
        await create_purchase(
            winner,
            Caller(user),
            plan_id=plan.id,
            code=first,
            idempotency_key="raced",
            settings=runtime.settings,
        )

        async def loser() -> object:
            async with runtime.session_factory() as session:
                try:
                    purchase, replayed = await create_purchase(
                        session,
                        Caller(user),
                        plan_id=plan.id,
                        code=second,
                        idempotency_key="raced",
                        settings=runtime.settings,
                    )
                except DomainError as exc:
                    await session.commit()
                    return exc
                await session.commit()
                return purchase.id, replayed

        second_call = asyncio.create_task(loser())
        await asyncio.sleep(0.3)  # it waits on the record's unique index (or the code's lock)
        assert not second_call.done()
        await winner.commit()
        return await second_call


@POSTGRESQL_ONLY
async def test_a_second_code_with_the_same_key_waits_for_the_record_and_is_refused(
    committing_runtime: Runtime,
) -> None:
    runtime = committing_runtime
    plan = await create_plan(runtime, "monthly", price_minor=1_000)
    rush = await create_promocode(runtime, "RUSH", max_uses=5)
    dash = await create_promocode(runtime, "DASH", max_uses=5)

    outcome = await _race(runtime, plan, "RUSH", "DASH")

    assert isinstance(outcome, DomainError)
    assert outcome.code is PurchaseErrorCode.IDEMPOTENCY_KEY_REUSED
    async with runtime.session_factory() as session:
        uses = {
            code: await session.scalar(select(Promocode.uses).where(Promocode.id == code.id))
            for code in (rush, dash)
        }
    assert uses == {rush: 1, dash: 0}
    assert await _count(runtime, Purchase) == 1
    assert await _count(runtime, IdempotencyRecord) == 1


@POSTGRESQL_ONLY
@pytest.mark.parametrize(("first", "second"), [("RUSH", "RUSH"), (None, None)])
async def test_the_same_request_racing_replays_the_winner(
    committing_runtime: Runtime, first: str | None, second: str | None
) -> None:
    runtime = committing_runtime
    plan = await create_plan(runtime, "monthly", price_minor=1_000)
    await create_promocode(runtime, "RUSH", max_uses=5, max_uses_per_user=1)

    outcome = await _race(runtime, plan, first, second)

    assert isinstance(outcome, tuple) and outcome[1] is True, outcome
    async with runtime.session_factory() as session:
        assert await session.scalar(select(Purchase.id)) == outcome[0]
    assert await _count(runtime, Purchase) == 1
    assert await _count(runtime, IdempotencyRecord) == 1
