"""The user's promotion over the API (both backends): the landing and its split, starting,
the reward's terms, accepting it, the launch badge, and every refusal (typed, naming the
field, changing nothing)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from strawberry.relay import to_base64

from app.models.base import utcnow
from app.models.promotions import (
    ActivePreOffer,
    LoanApplication,
    OriginationSession,
    Promotion,
    PromotionSplit,
    PromotionUser,
)
from app.runtime import Runtime
from tests.factories import promotions as f
from tests.factories.identity import access_token, create_user
from tests.helpers import gql, row_counts

VIEWER = """
query {
  viewer {
    promotion {
      eligible ineligibleReason status canStart challengeEndsAt claimEndsAt
      progress { current total }
      promotion { key targetRides }
      rides { orderId counted reason }
    }
  }
}"""
LAUNCH = "query { launch { promotionBadge } }"
START = """
mutation Start($id: ID!) {
  promotionStart(input: {promotionId: $id}) {
    promotion { status progress { current total } challengeEndsAt canStart }
    errors { code field message }
  }
}"""
REWARD = """
mutation Reward($id: ID!) {
  promotionReward(input: {promotionId: $id}) {
    reward { productId amount { amountMinor currency } repaymentRate claimEndsAt }
    errors { code field message }
  }
}"""
ACCEPT = """
mutation Accept($id: ID!) {
  promotionRewardAccept(input: {promotionId: $id}) {
    application { id productId amount { amountMinor currency } repaymentRate }
    errors { code field message }
  }
}"""


def gid(promotion: Promotion) -> str:
    return to_base64("Promotion", str(promotion.id))


async def _viewer(client: httpx.AsyncClient, token: str) -> Any:
    body = await gql(client, VIEWER, token=token)
    assert "errors" not in body, body
    return body["data"]["viewer"]["promotion"]


async def _call(
    client: httpx.AsyncClient, document: str, promotion: Promotion | str, token: str
) -> dict[str, Any]:
    promotion_id = promotion if isinstance(promotion, str) else gid(promotion)
    body = await gql(client, document, {"id": promotion_id}, token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = next(iter(body["data"].values()))
    return payload


def _codes(payload: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def _count(runtime: Runtime, model: Any) -> int:
    async with runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _offered(runtime: Runtime, **fields: Any) -> tuple[Any, Promotion, str]:
    user = await create_user(runtime)
    promotion = await f.create_promotion(runtime, **fields)
    await f.set_region(runtime)
    await f.pre_offer(runtime, user.id, promotion)
    return user, promotion, await access_token(runtime, user)


# ---- the landing ---------------------------------------------------------------------------


async def test_without_a_pre_offer_there_is_no_promotion(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await f.create_promotion(runtime)
    token = await access_token(runtime, await create_user(runtime))
    assert await _viewer(client, token) is None
    assert (await gql(client, LAUNCH, token=token))["data"]["launch"] == {"promotionBadge": None}
    assert await _count(runtime, PromotionSplit) == 0


async def test_an_eligible_user_sees_it_and_gets_one_split(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _user, promotion, token = await _offered(runtime)
    first = await _viewer(client, token)
    assert first == {
        "eligible": True,
        "ineligibleReason": None,
        "status": None,
        "canStart": True,
        "challengeEndsAt": None,
        "claimEndsAt": None,
        "progress": {"current": 0, "total": 3},
        "promotion": {"key": promotion.key, "targetRides": 3},
        "rides": [],
    }
    assert await _viewer(client, token) == first  # a second read creates no second split
    assert await _count(runtime, PromotionSplit) == 1
    badge = await gql(client, LAUNCH, token=token)
    assert badge["data"]["launch"] == {"promotionBadge": "AVAILABLE"}


@pytest.mark.parametrize(
    ("flags", "region", "eligible"),
    [
        ({}, "MX", False),  # no row: off
        ({"MX": False}, "MX", False),
        ({"MX": True}, "MX-CMX", True),  # the country's flag covers its regions
        ({"MX": True, "MX-CMX": False}, "MX-CMX", False),  # the region's own flag wins
        ({"MX": False, "MX-CMX": True}, "MX-CMX", True),
    ],
)
async def test_the_geo_flag_decides_by_region_then_country(
    client: httpx.AsyncClient,
    runtime: Runtime,
    flags: dict[str, bool],
    region: str,
    eligible: bool,
) -> None:
    user = await create_user(runtime)
    promotion = await f.create_promotion(runtime)
    for name, enabled in flags.items():
        await f.set_region(runtime, name, enabled)
    await f.pre_offer(runtime, user.id, promotion, region=region)
    token = await access_token(runtime, user)
    shown = await _viewer(client, token)
    assert shown["eligible"] is eligible
    assert shown["ineligibleReason"] == (None if eligible else "PROMOTIONS_DISABLED")
    assert await _count(runtime, PromotionSplit) == (1 if eligible else 0)
    before = await row_counts(runtime)
    started = await _call(client, START, promotion, token)
    if eligible:
        assert started["errors"] == [] and started["promotion"]["status"] == "STARTED"
    else:
        assert _codes(started) == [("PROMOTIONS_DISABLED", "promotion")]
        assert await row_counts(runtime) == before


async def test_an_inactive_promotion_is_shown_but_not_startable(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _user, promotion, token = await _offered(runtime, active=False)
    shown = await _viewer(client, token)
    assert (shown["eligible"], shown["ineligibleReason"], shown["canStart"]) == (
        False,
        "PROMOTION_INACTIVE",
        False,
    )
    before = await row_counts(runtime)
    assert _codes(await _call(client, START, promotion, token)) == [
        ("PROMOTION_INACTIVE", "promotion")
    ]
    assert await row_counts(runtime) == before


# ---- starting --------------------------------------------------------------------------------


async def test_start_begins_the_challenge_with_the_promotions_terms(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, promotion, token = await _offered(runtime)
    before = utcnow()
    payload = await _call(client, START, promotion, token)
    assert payload["errors"] == []
    assert payload["promotion"]["status"] == "STARTED"
    assert payload["promotion"]["progress"] == {"current": 0, "total": 3}
    assert payload["promotion"]["canStart"] is False
    run = await f.run_of(runtime, user.id, promotion)
    assert before + timedelta(days=14) <= run.challenge_ends_at <= utcnow() + timedelta(days=14)
    assert run.reward == {
        "product_id": 80,
        "amount_minor": 100_000,
        "currency": "MXN",
        "repayment_rate": "15",
    }
    badge = await gql(client, LAUNCH, token=token)
    assert badge["data"]["launch"] == {"promotionBadge": "IN_PROGRESS"}


async def test_the_reward_takes_the_pre_offers_terms_over_the_template(runtime: Runtime) -> None:
    user = await create_user(runtime)
    promotion = await f.create_promotion(runtime)
    await f.set_region(runtime)
    await f.pre_offer(
        runtime, user.id, promotion, amount_minor=250_000, currency="USD", repayment_rate="12.5"
    )
    run = await f.start(runtime, user.id, promotion)
    assert run.reward == {
        "product_id": 80,
        "amount_minor": 250_000,
        "currency": "USD",
        "repayment_rate": "12.5",
    }


async def test_start_refusals_are_typed_and_change_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _user, promotion, token = await _offered(runtime)
    other = await f.create_promotion(runtime)  # no pre-offer for it
    await _viewer(client, token)
    before = await row_counts(runtime)
    assert _codes(await _call(client, START, other, token)) == [("NO_PRE_OFFER", "promotion")]
    assert _codes(await _call(client, START, "not-an-id", token)) == [("NOT_FOUND", "promotionId")]
    plan_id = to_base64("Plan", str(uuid.uuid4()))
    assert _codes(await _call(client, START, plan_id, token)) == [("NOT_FOUND", "promotionId")]
    assert await row_counts(runtime) == before

    assert (await _call(client, START, promotion, token))["errors"] == []
    after_start = await row_counts(runtime)
    again = await _call(client, START, promotion, token)
    assert _codes(again) == [("ALREADY_STARTED", "promotion")] and again["promotion"] is None
    assert await row_counts(runtime) == after_start


async def test_nobody_is_a_newcomer_twice(client: httpx.AsyncClient, runtime: Runtime) -> None:
    user = await create_user(runtime)
    first = await f.completed(runtime, user.id)
    await f.accept(runtime, user.id, first)
    second = await f.create_promotion(runtime)
    await f.pre_offer(runtime, user.id, second)
    token = await access_token(runtime, user)
    shown = await _viewer(client, token)
    assert (shown["promotion"]["key"], shown["eligible"], shown["ineligibleReason"]) == (
        second.key,
        False,
        "NOT_A_NEWCOMER",
    )
    before = await row_counts(runtime)
    assert _codes(await _call(client, START, second, token)) == [("NOT_A_NEWCOMER", "promotion")]
    assert await row_counts(runtime) == before


# ---- the reward ------------------------------------------------------------------------------


async def test_the_reward_is_refused_until_completed_and_given_once_completed(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user, promotion, token = await _offered(runtime)
    assert _codes(await _call(client, REWARD, promotion, token)) == [("NOT_STARTED", "promotion")]
    await f.start(runtime, user.id, promotion)
    assert _codes(await _call(client, REWARD, promotion, token)) == [("NOT_COMPLETED", "promotion")]
    for _ in range(3):
        await f.ride(runtime, user.id)
    payload = await _call(client, REWARD, promotion, token)
    assert payload["errors"] == []
    reward = payload["reward"]
    assert reward | {"claimEndsAt": None} == {
        "productId": 80,
        "amount": {"amountMinor": 100_000, "currency": "MXN"},
        "repaymentRate": "15",
        "claimEndsAt": None,
    }
    run = await f.run_of(runtime, user.id, promotion)
    assert run.claim_ends_at is not None and run.completed_at is not None
    assert run.claim_ends_at - run.completed_at == timedelta(days=7)
    badge = await gql(client, LAUNCH, token=token)
    assert badge["data"]["launch"] == {"promotionBadge": "REWARD_READY"}


async def _move(runtime: Runtime, user_id: uuid.UUID, promotion: Promotion, **values: Any) -> None:
    async with runtime.session_factory() as session, session.begin():
        await session.execute(
            update(PromotionUser)
            .where(PromotionUser.user_id == user_id, PromotionUser.promotion_id == promotion.id)
            .values(**values)
        )


async def test_an_expired_challenge_and_an_expired_reward_are_told_apart(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    late = await create_user(runtime)
    short = await f.started(runtime, late.id)
    await _move(runtime, late.id, short, challenge_ends_at=utcnow() - timedelta(seconds=1))
    late_token = await access_token(runtime, late)
    assert (await _viewer(client, late_token))["status"] == "EXPIRED"  # lazily, on read
    assert _codes(await _call(client, REWARD, short, late_token)) == [
        ("CHALLENGE_OVER", "promotion")
    ]

    slow = await create_user(runtime)
    done = await f.completed(runtime, slow.id)
    await _move(runtime, slow.id, done, claim_ends_at=utcnow() - timedelta(seconds=1))
    slow_token = await access_token(runtime, slow)
    assert (await _viewer(client, slow_token))["status"] == "REWARD_EXPIRED"
    before = await row_counts(runtime)
    assert _codes(await _call(client, REWARD, done, slow_token)) == [
        ("REWARD_EXPIRED", "promotion")
    ]
    assert _codes(await _call(client, ACCEPT, done, slow_token)) == [
        ("REWARD_EXPIRED", "promotion")
    ]
    assert await row_counts(runtime) == before


async def test_accepting_makes_the_six_effects_once_and_a_retry_returns_the_same(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    promotion = await f.completed(runtime, user.id)
    token = await access_token(runtime, user)
    await _viewer(client, token)  # the landing made the split
    first = await _call(client, ACCEPT, promotion, token)
    assert first["errors"] == []
    application = first["application"]
    assert application | {"id": None} == {
        "id": None,
        "productId": 80,
        "amount": {"amountMinor": 100_000, "currency": "MXN"},
        "repaymentRate": "15",
    }
    after = await row_counts(runtime)
    again = await _call(client, ACCEPT, promotion, token)
    assert again == first
    assert await row_counts(runtime) == after
    run = await f.run_of(runtime, user.id, promotion)
    assert run.status == "REWARDED" and run.rewarded_at is not None
    async with runtime.session_factory() as session:
        split = await session.scalar(select(PromotionSplit))
        active = await session.scalar(select(ActivePreOffer))
        loan = await session.scalar(select(LoanApplication))
        origination = await session.scalar(select(OriginationSession))
    assert split is not None and split.used_at is not None and not split.created_on_accept
    assert active is not None and (active.product_id, active.amount_minor) == (80, 100_000)
    assert loan is not None and str(loan.id) == application["id"]
    assert loan.active_pre_offer_id == active.id and loan.promotion_user_id == run.id
    assert origination is not None and origination.sequence_id == 8
    assert (origination.application_id, origination.split_id) == (loan.id, split.id)
    assert _codes(await _call(client, REWARD, promotion, token)) == [
        ("ALREADY_REWARDED", "promotion")
    ]
    badge = await gql(client, LAUNCH, token=token)
    assert badge["data"]["launch"] == {"promotionBadge": None}


async def test_accepting_without_a_split_creates_it(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    promotion = await f.completed(runtime, user.id)
    async with runtime.session_factory() as session, session.begin():
        await session.execute(PromotionSplit.__table__.delete())
    token = await access_token(runtime, user)
    assert (await _call(client, ACCEPT, promotion, token))["errors"] == []
    async with runtime.session_factory() as session:
        [split] = (await session.scalars(select(PromotionSplit))).all()
    assert split.created_on_accept and split.used_at is not None


async def test_accepting_before_completion_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    promotion = await f.started(runtime, user.id)
    token = await access_token(runtime, user)
    before = await row_counts(runtime)
    payload = await _call(client, ACCEPT, promotion, token)
    assert _codes(payload) == [("NOT_COMPLETED", "promotion")] and payload["application"] is None
    assert await row_counts(runtime) == before
