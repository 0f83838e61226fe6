"""Promocode reservations under real concurrency (committing transactions): the service on
PostgreSQL, and `purchaseCreate` over HTTP on both backends (the embedded SQLite default
must queue its writers, never answer "database is locked")."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select
from strawberry.relay import to_base64

from app.models.identity import IdempotencyRecord, Role, User
from app.models.promocodes import (
    Audience,
    Plan,
    Promocode,
    PromocodeGrant,
    PromocodeKind,
    PromocodeUse,
    Purchase,
    PurchaseStatus,
    Rejection,
    UseStatus,
)
from app.runtime import Runtime
from app.services.promocodes.attempts import Caller, PromocodeRejected
from app.services.promocodes.purchases import create_purchase, fail_purchase
from tests.conftest import make_client
from tests.factories.identity import access_token, create_user, service_token
from tests.factories.promocodes import create_plan, create_promocode
from tests.helpers import gql

POSTGRESQL_ONLY = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

MAX_USES = 7
PER_USER = 2
USERS = 12
CALLS_PER_USER = 4  # each user tries more often than the per-user limit allows


async def _plan_and_code(runtime: Runtime) -> tuple[Plan, Promocode]:
    plan = await create_plan(runtime, "monthly", price_minor=49_900)
    code = await create_promocode(
        runtime, "RUSH", PromocodeKind.PERCENT, 50, max_uses=MAX_USES, max_uses_per_user=PER_USER
    )
    return plan, code


async def _buy(
    runtime: Runtime, user: User, plan: Plan, *, keyed: bool = True
) -> uuid.UUID | Rejection:
    async with runtime.session_factory() as session:
        try:
            purchase, _ = await create_purchase(
                session,
                Caller(user),
                plan_id=plan.id,
                code="rush",
                idempotency_key=uuid.uuid4().hex if keyed else None,
                settings=runtime.settings,
            )
        except PromocodeRejected as rejection:
            await session.commit()  # the attempt log is kept, as the API does
            return rejection.reason
        await session.commit()
        return purchase.id


async def _holding(runtime: Runtime) -> Counter[uuid.UUID]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(
            select(PromocodeUse.user_id).where(PromocodeUse.status != UseStatus.RELEASED)
        )
        return Counter(rows)


@POSTGRESQL_ONLY
@pytest.mark.parametrize("keyed", [True, False], ids=["with-keys", "without-keys"])
async def test_a_code_is_never_used_more_than_its_limits_under_concurrency(
    committing_runtime: Runtime, keyed: bool
) -> None:
    runtime = committing_runtime
    plan, code = await _plan_and_code(runtime)
    users = [await create_user(runtime) for _ in range(USERS)]
    calls = [
        _buy(runtime, user, plan, keyed=keyed) for user in users for _ in range(CALLS_PER_USER)
    ]
    outcomes = await asyncio.gather(*calls)

    reserved = [o for o in outcomes if isinstance(o, uuid.UUID)]
    rejected = Counter(o for o in outcomes if isinstance(o, Rejection))
    assert len(reserved) == MAX_USES
    assert set(rejected) <= {Rejection.EXHAUSTED, Rejection.ALREADY_USED_BY_USER}
    holding = await _holding(runtime)
    assert sum(holding.values()) == MAX_USES
    assert max(holding.values()) <= PER_USER
    async with runtime.session_factory() as session:
        stored = await session.get(Promocode, code.id)
        purchases = await session.scalar(select(func.count()).select_from(Purchase))
    assert stored is not None and stored.uses == MAX_USES
    assert purchases == MAX_USES  # a rejected reservation leaves no purchase behind

    # Failing three payments frees exactly three uses for later buyers.
    for purchase_id in reserved[:3]:
        async with runtime.session_factory() as session, session.begin():
            await fail_purchase(session, purchase_id, actor="service:payments", reason="declined")
    latecomers = [await create_user(runtime) for _ in range(6)]
    late = await asyncio.gather(*(_buy(runtime, user, plan) for user in latecomers))
    assert len([o for o in late if isinstance(o, uuid.UUID)]) == 3
    assert Counter(o for o in late if isinstance(o, Rejection)) == {Rejection.EXHAUSTED: 3}
    async with runtime.session_factory() as session:
        stored = await session.get(Promocode, code.id)
    assert stored is not None and stored.uses == MAX_USES
    assert sum((await _holding(runtime)).values()) == MAX_USES


# ---- purchaseCreate over HTTP, both backends ------------------------------------------------

CREATE = """mutation C($input: PurchaseCreateInput!) {
  purchaseCreate(input: $input) { purchase { id } errors { code } } }"""


def _create_input(plan: Plan, code: str) -> dict[str, object]:
    plan_id = to_base64("Plan", str(plan.id))
    return {"input": {"planId": plan_id, "code": code, "idempotencyKey": uuid.uuid4().hex}}


def _outcome(body: dict[str, Any]) -> str:
    """ "ok", the refusal's code, or the unexpected error (a locked database, say)."""
    if "errors" in body:
        return f"error: {body['errors'][0]['message']}"
    payload = body["data"]["purchaseCreate"]
    return payload["errors"][0]["code"] if payload["errors"] else "ok"


async def _http_buys(runtime: Runtime, plan: Plan, tokens: list[str]) -> Counter[str]:
    async with make_client(runtime) as client:
        bodies = await asyncio.gather(
            *(gql(client, CREATE, _create_input(plan, "rush"), token=t) for t in tokens)
        )
    return Counter(_outcome(body) for body in bodies)


async def test_one_user_racing_for_a_once_per_user_code_gets_it_once(
    racing_runtime: Runtime,
) -> None:
    runtime = racing_runtime
    plan = await create_plan(runtime, "monthly", price_minor=49_900)
    code = await create_promocode(runtime, "RUSH", max_uses_per_user=1)
    token = await access_token(runtime, await create_user(runtime))

    outcomes = await _http_buys(runtime, plan, [token] * 8)

    assert outcomes == {"ok": 1, "ALREADY_USED_BY_USER": 7}
    assert sum((await _holding(runtime)).values()) == 1
    assert await _uses(runtime, code) == 1


async def test_users_racing_for_a_two_use_code_get_two_uses(racing_runtime: Runtime) -> None:
    runtime = racing_runtime
    plan = await create_plan(runtime, "monthly", price_minor=49_900)
    code = await create_promocode(runtime, "RUSH", max_uses=2)
    tokens = [await access_token(runtime, await create_user(runtime)) for _ in range(6)]

    outcomes = await _http_buys(runtime, plan, tokens)

    assert outcomes == {"ok": 2, "EXHAUSTED": 4}
    assert sum((await _holding(runtime)).values()) == 2
    assert await _uses(runtime, code) == 2


async def _keyed_buys(
    runtime: Runtime, plan: Plan, token: str, codes: list[str | None], key: str
) -> list[dict[str, Any]]:
    plan_id = to_base64("Plan", str(plan.id))
    async with make_client(runtime) as client:
        bodies = await asyncio.gather(
            *(
                gql(
                    client,
                    CREATE,
                    {"input": {"planId": plan_id, "code": code, "idempotencyKey": key}},
                    token=token,
                )
                for code in codes
            )
        )
    assert all("errors" not in body for body in bodies), bodies
    return [body["data"]["purchaseCreate"] for body in bodies]


async def _count(runtime: Runtime, model: Any) -> int:
    async with runtime.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("code", ["RUSH", None], ids=["with-a-code", "without-a-code"])
async def test_concurrent_first_calls_with_one_key_make_one_purchase(
    racing_runtime: Runtime, code: str | None
) -> None:
    """The loser of the idempotency record's race replays the winner's purchase, even where
    the winner's use already exhausted the caller's per-user limit."""
    runtime = racing_runtime
    plan = await create_plan(runtime, "monthly", price_minor=49_900)
    promocode = await create_promocode(runtime, "RUSH", max_uses=5, max_uses_per_user=1)
    token = await access_token(runtime, await create_user(runtime))

    payloads = await _keyed_buys(runtime, plan, token, [code] * 6, "one-key")

    assert all(payload["errors"] == [] for payload in payloads), payloads
    assert len({payload["purchase"]["id"] for payload in payloads}) == 1
    assert await _count(runtime, Purchase) == 1
    assert await _uses(runtime, promocode) == (1 if code else 0)
    async with runtime.session_factory() as session:
        records = await session.scalar(select(func.count()).select_from(IdempotencyRecord))
    assert records == 1


async def test_one_key_racing_for_two_codes_buys_one_and_refuses_the_other(
    racing_runtime: Runtime,
) -> None:
    runtime = racing_runtime
    plan = await create_plan(runtime, "monthly", price_minor=49_900)
    first = await create_promocode(runtime, "RUSH", max_uses=5)
    second = await create_promocode(runtime, "DASH", max_uses=5)
    token = await access_token(runtime, await create_user(runtime))

    payloads = await _keyed_buys(runtime, plan, token, ["RUSH", "DASH"] * 3, "one-key")

    bought = {payload["purchase"]["id"] for payload in payloads if not payload["errors"]}
    refused = Counter(e["code"] for payload in payloads for e in payload["errors"])
    assert len(bought) == 1
    assert refused == {"IDEMPOTENCY_KEY_REUSED": 3}  # the other code's three calls
    assert await _count(runtime, Purchase) == 1
    assert await _uses(runtime, first) + await _uses(runtime, second) == 1


async def _uses(runtime: Runtime, code: Promocode) -> int:
    async with runtime.session_factory() as session:
        stored = await session.get(Promocode, code.id)
    assert stored is not None
    return stored.uses


# ---- admin creates and grants: concurrent duplicates answer as sequential ones ---------------

PROMOCODE_CREATE = """mutation C($input: PromocodeCreateInput!) {
  promocodeCreate(input: $input) { promocode { id } errors { code } } }"""
PROMOCODE_GRANT = """mutation G($input: PromocodeGrantInput!) {
  promocodeGrant(input: $input) { outcomes { status } errors { code } } }"""


async def _admin_calls(
    runtime: Runtime, document: str, inputs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    admin = await create_user(runtime, roles=(Role.USER, Role.ADMIN))
    token = await access_token(runtime, admin)
    async with make_client(runtime) as client:
        bodies = await asyncio.gather(
            *(gql(client, document, {"input": data}, token=token) for data in inputs)
        )
    assert all("errors" not in body for body in bodies), bodies
    return [next(iter(body["data"].values())) for body in bodies]


async def test_concurrent_creates_of_one_code_create_it_once(racing_runtime: Runtime) -> None:
    spellings = ["spring", "SPRING", " Spring "] * 3
    payloads = await _admin_calls(
        racing_runtime,
        PROMOCODE_CREATE,
        [{"code": code, "kind": "PERCENT", "value": 10} for code in spellings],
    )
    outcomes = Counter(p["errors"][0]["code"] if p["errors"] else "ok" for p in payloads)
    assert outcomes == {"ok": 1, "CODE_TAKEN": len(spellings) - 1}
    async with racing_runtime.session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Promocode)) == 1


async def test_concurrent_grants_of_one_code_grant_it_once(racing_runtime: Runtime) -> None:
    code = await create_promocode(racing_runtime, "VIP", audience=Audience.GRANTED)
    user = await create_user(racing_runtime)
    grant = {
        "promocodeId": to_base64("Promocode", str(code.id)),
        "userIds": [to_base64("User", str(user.id))],
    }
    payloads = await _admin_calls(racing_runtime, PROMOCODE_GRANT, [grant] * 6)
    assert all(p["errors"] == [] for p in payloads), payloads
    statuses = Counter(p["outcomes"][0]["status"] for p in payloads)
    assert statuses == {"GRANTED": 1, "ALREADY_GRANTED": 5}
    async with racing_runtime.session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(PromocodeGrant)) == 1


CONFIRM = """mutation C($input: PurchaseConfirmInput!) {
  purchaseConfirm(input: $input) { purchase { status } errors { code } } }"""
FAIL = """mutation F($input: PurchaseFailInput!) {
  purchaseFail(input: $input) { purchase { status } errors { code } } }"""


async def test_a_concurrent_confirm_and_fail_of_one_purchase_end_in_one_of_them(
    racing_runtime: Runtime,
) -> None:
    runtime = racing_runtime
    plan = await create_plan(runtime, "monthly", price_minor=49_900)
    code = await create_promocode(runtime, "RUSH", max_uses=10)
    service = await service_token(runtime, "payments")
    for _ in range(5):
        user = await create_user(runtime)
        async with runtime.session_factory() as session, session.begin():
            purchase, _ = await create_purchase(
                session,
                Caller(user),
                plan_id=plan.id,
                code=code.code,
                idempotency_key=None,
                settings=runtime.settings,
            )
        variables = {"input": {"purchaseId": to_base64("Purchase", str(purchase.id))}}
        async with make_client(runtime) as client:
            confirmed, failed = await asyncio.gather(
                gql(client, CONFIRM, variables, token=service),
                gql(client, FAIL, variables, token=service),
            )
        outcomes = {
            "confirm": confirmed["data"]["purchaseConfirm"],
            "fail": failed["data"]["purchaseFail"],
        }
        winners = [name for name, payload in outcomes.items() if not payload["errors"]]
        assert len(winners) == 1, outcomes
        loser = outcomes["fail" if winners == ["confirm"] else "confirm"]
        assert [e["code"] for e in loser["errors"]] == ["INVALID_STATE"]
        async with runtime.session_factory() as session:
            stored = await session.get(Purchase, purchase.id)
            use = await session.scalar(
                select(PromocodeUse).where(PromocodeUse.purchase_id == purchase.id)
            )
        assert stored is not None and use is not None
        if winners == ["confirm"]:
            assert (stored.status, use.status) == (PurchaseStatus.CONFIRMED, UseStatus.CONFIRMED)
        else:
            assert (stored.status, use.status) == (PurchaseStatus.FAILED, UseStatus.RELEASED)
    counted = await _uses(runtime, code)
    async with runtime.session_factory() as session:
        held = await session.scalar(
            select(func.count())
            .select_from(PromocodeUse)
            .where(PromocodeUse.status != UseStatus.RELEASED)
        )
    assert counted == held
