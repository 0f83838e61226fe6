"""Promocodes, client and service API: plans, quotes, purchases, the payment result, the
viewer's codes and purchases, rejections (anti-enumeration, rate limits) and role checks."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.relay import from_base64, to_base64

from app.models.base import utcnow
from app.models.identity import Group, GroupMember, Role, User, UserStatus
from app.models.promocodes import (
    AttemptOperation,
    Audience,
    Plan,
    Promocode,
    PromocodeAttempt,
    PromocodeGrant,
    PromocodeKind,
    PromocodeUse,
    Purchase,
    PurchaseStatus,
    Rejection,
    ReleaseReason,
    SubscriberEligibility,
    UseStatus,
)
from app.runtime import Runtime
from app.services.promocodes import purchases as purchase_service
from app.services.promocodes.attempts import Caller, PromocodeRejected
from app.services.promocodes.errors import PurchaseErrorCode
from resolvers.promocodes.queries import purchase_errors
from tests.conftest import make_client
from tests.factories.identity import access_token, create_user, service_token
from tests.factories.promocodes import create_plan, create_promocode
from tests.helpers import error_codes, gql, row_counts

CLIENT_IP = "203.0.113.7"  # what tests.conftest.make_client's transport reports

PLAN_FIELDS = "id slug name price { amountMinor currency } durationDays active"
PURCHASE_FIELDS = f"""
id status listPrice {{ amountMinor currency }} finalPrice {{ amountMinor currency }}
trialDays discountedCycles promocode createdAt confirmedAt failedAt plan {{ {PLAN_FIELDS} }}
"""
ERRORS = "errors { code field message retryAfter }"
PLANS = f"query Plans {{ plans {{ {PLAN_FIELDS} }} }}"
QUOTE = f"""
mutation Quote($input: PromocodeQuoteInput!) {{
  promocodeQuote(input: $input) {{
    quote {{
      plan {{ slug }} listPrice {{ amountMinor currency }} finalPrice {{ amountMinor currency }}
      discount {{ amountMinor currency }} trialDays discountedCycles
    }}
    {ERRORS}
  }}
}}
"""
# PostgreSQL: BEGIN, the caller, the code locked with the plan and the idempotency record
# (`reservation._READ_CODE`), the reservation's one write (`_RESERVE_KEYED`: count, record,
# use, purchase, ledger row), COMMIT; the payload's plan and code came with the read. In the
# tests BEGIN/COMMIT are a savepoint. SQLite (BEGIN IMMEDIATE; its COMMIT is no statement):
# the write's twins are five plain statements. Issue 12 (3): 18 before.
PURCHASE_CREATE_STATEMENTS = {"postgresql": 5, "sqlite": 8}
# Without a code: the plan with the record (`_READ_PLAN`) and one write (`_BUY_KEYED`).
PURCHASE_WITHOUT_CODE_STATEMENTS = {"postgresql": 5, "sqlite": 6}

CREATE = f"""
mutation Create($input: PurchaseCreateInput!) {{
  purchaseCreate(input: $input) {{ purchase {{ {PURCHASE_FIELDS} }} {ERRORS} }}
}}
"""
CONFIRM = f"""
mutation Confirm($input: PurchaseConfirmInput!) {{
  purchaseConfirm(input: $input) {{ purchase {{ id status confirmedAt failedAt }} {ERRORS} }}
}}
"""
FAIL = f"""
mutation Fail($input: PurchaseFailInput!) {{
  purchaseFail(input: $input) {{ purchase {{ id status confirmedAt failedAt }} {ERRORS} }}
}}
"""
VIEWER_PROMOCODES = """
query ViewerPromocodes {
  viewer {
    promocodes {
      code kind percentOff amountOff { amountMinor currency } fixedPrice { amountMinor currency }
      trialDays discountedCycles validUntil description eligiblePlans { slug }
    }
  }
}
"""
VIEWER_PURCHASES = f"""
query ViewerPurchases($first: Int, $after: String) {{
  viewer {{
    purchases(first: $first, after: $after) {{
      edges {{ cursor node {{ {PURCHASE_FIELDS} }} }}
      pageInfo {{ hasNextPage hasPreviousPage endCursor }}
    }}
  }}
}}
"""
NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on Purchase { status plan { slug } } ... on Plan { slug } }
}
"""


# ---- factories --------------------------------------------------------------------------------


def gid(type_name: str, value: object) -> str:
    return to_base64(type_name, str(value))


def node_uuid(global_id: str) -> uuid.UUID:
    return uuid.UUID(from_base64(global_id)[1])


def money(amount_minor: int, currency: str = "RUB") -> dict[str, Any]:
    return {"amountMinor": amount_minor, "currency": currency}


async def add_group(runtime: Runtime, *members: User) -> Group:
    async with runtime.session_factory() as session, session.begin():
        group = Group(name=f"group-{uuid.uuid4().hex[:8]}")
        session.add(group)
        await session.flush()
        session.add_all(GroupMember(group_id=group.id, user_id=user.id) for user in members)
    return group


async def grant(
    runtime: Runtime, promocode: Promocode, *, user: User | None = None, group: Group | None = None
) -> None:
    async with runtime.session_factory() as session, session.begin():
        session.add(
            PromocodeGrant(
                promocode_id=promocode.id,
                user_id=user.id if user else None,
                group_id=group.id if group else None,
                granted_by="user:admin",
            )
        )


async def buy(runtime: Runtime, user: User, plan: Plan, code: str | None = None) -> Purchase:
    """A purchase made through the service, as another request would have made it."""
    async with runtime.session_factory() as session, session.begin():
        purchase, _ = await purchase_service.create_purchase(
            session,
            Caller(user),
            plan_id=plan.id,
            code=code,
            idempotency_key=None,
            settings=runtime.settings,
        )
    return purchase


async def confirm(runtime: Runtime, purchase: Purchase) -> None:
    async with runtime.session_factory() as session, session.begin():
        await purchase_service.confirm_purchase(session, purchase.id, actor="service:test")


async def uses_of(runtime: Runtime, promocode: Promocode) -> int:
    async with runtime.session_factory() as session:
        stored = await session.get(Promocode, promocode.id)
        assert stored is not None
        return stored.uses


async def ledger(runtime: Runtime, promocode: Promocode) -> list[tuple[Any, ...]]:
    async with runtime.session_factory() as session:
        rows = await session.execute(
            select(
                PromocodeUse.purchase_id,
                PromocodeUse.user_id,
                PromocodeUse.status,
                PromocodeUse.release_reason,
            )
            .where(PromocodeUse.promocode_id == promocode.id)
            .order_by(PromocodeUse.created_at)
        )
        return [tuple(row) for row in rows]


async def attempts(runtime: Runtime) -> list[tuple[Any, ...]]:
    async with runtime.session_factory() as session:
        rows = await session.execute(
            select(
                PromocodeAttempt.user_id,
                PromocodeAttempt.promocode_id,
                PromocodeAttempt.plan_id,
                PromocodeAttempt.code_entered,
                PromocodeAttempt.operation,
                PromocodeAttempt.reason,
                PromocodeAttempt.ip,
            ).order_by(PromocodeAttempt.created_at)
        )
        return [tuple(row) for row in rows]


async def load_purchase(runtime: Runtime, purchase_id: uuid.UUID) -> Purchase:
    async with runtime.session_factory() as session:
        purchase = await session.get(Purchase, purchase_id)
    assert purchase is not None
    return purchase


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {table: after[table] - before[table] for table in after if after[table] != before[table]}


def quote_input(plan: Plan, code: str) -> dict[str, Any]:
    return {"input": {"planId": gid("Plan", plan.id), "code": code}}


def create_input(plan: Plan, code: str | None, key: str | None = None) -> dict[str, Any]:
    return {
        "input": {
            "planId": gid("Plan", plan.id),
            "code": code,
            "idempotencyKey": uuid.uuid4().hex if key is None else key,
        }
    }


def errors_of(payload: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(error["code"], error["field"]) for error in payload["errors"]]


@contextmanager
def counting_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """Every SQL statement the engine sends while the block runs."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
async def user(runtime: Runtime) -> User:
    return await create_user(runtime, "buyer@example.com")


@pytest.fixture
async def token(runtime: Runtime, user: User) -> str:
    return await access_token(runtime, user)


@pytest.fixture
async def plan(runtime: Runtime) -> Plan:
    return await create_plan(runtime, "monthly")


# ---- plans ------------------------------------------------------------------------------------


async def test_plans_are_public_active_and_cheapest_first(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    yearly = await create_plan(runtime, "yearly", price_minor=9_900, duration_days=365)
    monthly = await create_plan(runtime, "monthly", price_minor=999)
    retired = await create_plan(runtime, "retired", price_minor=500, active=False)

    body = await gql(client, PLANS)  # anonymous
    assert body["data"]["plans"] == [
        {
            "id": gid("Plan", monthly.id),
            "slug": "monthly",
            "name": "Monthly",
            "price": money(999),
            "durationDays": 30,
            "active": True,
        },
        {
            "id": gid("Plan", yearly.id),
            "slug": "yearly",
            "name": "Yearly",
            "price": money(9_900),
            "durationDays": 365,
            "active": True,
        },
    ]
    # A retired plan is still refetchable by id (it is in people's purchase history).
    node = await gql(client, NODE, {"id": gid("Plan", retired.id)})
    assert node["data"]["node"] == {"id": gid("Plan", retired.id), "slug": "retired"}


# ---- quotes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "extra", "final", "trial_days", "cycles"),
    [
        (PromocodeKind.PERCENT, 33, {}, 670, 0, 1),  # 999 - 999*33//100 (rounded down)
        (PromocodeKind.PERCENT, 100, {}, 0, 0, 1),
        (PromocodeKind.AMOUNT, 300, {"currency": "RUB"}, 699, 0, 1),
        (PromocodeKind.AMOUNT, 5_000, {}, 0, 0, 1),  # never below zero
        (PromocodeKind.FIXED_PRICE, 100, {"discounted_cycles": 3}, 100, 0, 3),
        (PromocodeKind.FIXED_PRICE, 2_000, {}, 999, 0, 1),  # never above the list price
        (PromocodeKind.FREE, 0, {"trial_days": 14}, 0, 14, 1),
    ],
)
async def test_quote_gives_the_final_price_for_each_kind(
    client: httpx.AsyncClient,
    runtime: Runtime,
    token: str,
    plan: Plan,
    kind: PromocodeKind,
    value: int,
    extra: dict[str, Any],
    final: int,
    trial_days: int,
    cycles: int,
) -> None:
    await create_promocode(runtime, "offer", kind, value, **extra)
    before = await row_counts(runtime)

    body = await gql(client, QUOTE, quote_input(plan, " Offer "), token=token)
    payload = body["data"]["promocodeQuote"]
    assert payload["errors"] == []
    assert payload["quote"] == {
        "plan": {"slug": "monthly"},
        "listPrice": money(999),
        "finalPrice": money(final),
        "discount": money(999 - final),
        "trialDays": trial_days,
        "discountedCycles": cycles,
    }
    assert await row_counts(runtime) == before  # a dry run: nothing reserved or logged


# ---- purchases --------------------------------------------------------------------------------


async def test_purchase_create_reserves_one_use_and_a_retry_replays_it(
    client: httpx.AsyncClient, runtime: Runtime, user: User, token: str, plan: Plan
) -> None:
    code = await create_promocode(runtime, "half", PromocodeKind.PERCENT, 50, max_uses=10)
    before = await row_counts(runtime)

    body = await gql(client, CREATE, create_input(plan, "half", "key-1"), token=token)
    payload = body["data"]["purchaseCreate"]
    assert payload["errors"] == []
    purchase = payload["purchase"]
    purchase_id = node_uuid(purchase["id"])
    assert purchase == {
        "id": gid("Purchase", purchase_id),
        "status": "PENDING",
        "listPrice": money(999),
        "finalPrice": money(500),
        "trialDays": 0,
        "discountedCycles": 1,
        "promocode": "HALF",
        "createdAt": purchase["createdAt"],
        "confirmedAt": None,
        "failedAt": None,
        "plan": {
            "id": gid("Plan", plan.id),
            "slug": "monthly",
            "name": "Monthly",
            "price": money(999),
            "durationDays": 30,
            "active": True,
        },
    }
    assert purchase["createdAt"].endswith("+00:00")
    assert await uses_of(runtime, code) == 1
    assert await ledger(runtime, code) == [(purchase_id, user.id, UseStatus.RESERVED, None)]
    assert changed(before, await row_counts(runtime)) == {
        "purchases": 1,
        "promocode_uses": 1,
        "idempotency_records": 1,
    }

    # The same key again: the same purchase, nothing more reserved.
    await create_promocode(runtime, "other", PromocodeKind.AMOUNT, 100)
    after_first = await row_counts(runtime)
    again = await gql(client, CREATE, create_input(plan, "half", "key-1"), token=token)
    assert again["data"]["purchaseCreate"] == {"purchase": purchase, "errors": []}
    assert await uses_of(runtime, code) == 1
    assert await row_counts(runtime) == after_first

    # The same key with another request is refused.
    reused = await gql(client, CREATE, create_input(plan, "other", "key-1"), token=token)
    assert reused["data"]["purchaseCreate"]["purchase"] is None
    assert errors_of(reused["data"]["purchaseCreate"]) == [
        ("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")
    ]
    assert await row_counts(runtime) == after_first


async def test_purchase_without_a_code_pays_the_list_price(
    client: httpx.AsyncClient, runtime: Runtime, token: str, plan: Plan
) -> None:
    body = await gql(client, CREATE, create_input(plan, None), token=token)
    purchase = body["data"]["purchaseCreate"]["purchase"]
    assert (purchase["finalPrice"], purchase["promocode"], purchase["discountedCycles"]) == (
        money(999),
        None,
        0,
    )
    for key in ("", "k" * 101, "bad\x00key"):
        refused = await gql(client, CREATE, create_input(plan, None, key), token=token)
        assert errors_of(refused["data"]["purchaseCreate"]) == [
            ("INVALID_IDEMPOTENCY_KEY", "idempotencyKey")
        ]


async def test_a_code_granted_to_others_looks_like_no_code(
    client: httpx.AsyncClient, runtime: Runtime, user: User, token: str, plan: Plan
) -> None:
    alice = await create_user(runtime, "alice@example.com")
    carol = await create_user(runtime, "carol@example.com")
    code = await create_promocode(
        runtime, "vip", PromocodeKind.AMOUNT, 200, audience=Audience.GRANTED
    )
    await grant(runtime, code, user=alice)
    await grant(runtime, code, group=await add_group(runtime, carol))
    before = await row_counts(runtime)

    quoted = await gql(client, QUOTE, quote_input(plan, "vip"), token=token)
    created = await gql(client, CREATE, create_input(plan, "vip"), token=token)
    for payload in (quoted["data"]["promocodeQuote"], created["data"]["purchaseCreate"]):
        assert errors_of(payload) == [("NOT_FOUND", "code")]
        assert payload["errors"][0]["message"] == "No such promocode."
    # The same answer as for a code that doesn't exist at all.
    unknown = await gql(client, QUOTE, quote_input(plan, "nope"), token=token)
    assert unknown["data"]["promocodeQuote"]["errors"] == quoted["data"]["promocodeQuote"]["errors"]

    assert await uses_of(runtime, code) == 0
    assert changed(before, await row_counts(runtime)) == {"promocode_attempts": 3}
    assert await attempts(runtime) == [
        (
            user.id,
            code.id,
            plan.id,
            "vip",
            AttemptOperation.QUOTE,
            Rejection.NOT_ASSIGNED_TO_USER,
            CLIENT_IP,
        ),
        (
            user.id,
            code.id,
            plan.id,
            "vip",
            AttemptOperation.PURCHASE,
            Rejection.NOT_ASSIGNED_TO_USER,
            CLIENT_IP,
        ),
        (user.id, None, plan.id, "nope", AttemptOperation.QUOTE, Rejection.NOT_FOUND, CLIENT_IP),
    ]

    # The grantees, personally and through a group, may use it.
    for grantee in (alice, carol):
        grantee_token = await access_token(runtime, grantee)
        ok = await gql(client, CREATE, create_input(plan, "vip"), token=grantee_token)
        assert ok["data"]["purchaseCreate"]["errors"] == []
        assert ok["data"]["purchaseCreate"]["purchase"]["finalPrice"] == money(799)
    assert await uses_of(runtime, code) == 2


Scenario = Callable[[Runtime, User, Plan], Awaitable[Promocode]]


async def _expired(runtime: Runtime, user: User, plan: Plan) -> Promocode:
    return await create_promocode(runtime, "code", valid_until=utcnow() - timedelta(minutes=1))


async def _not_started(runtime: Runtime, user: User, plan: Plan) -> Promocode:
    return await create_promocode(runtime, "code", valid_from=utcnow() + timedelta(days=1))


async def _inactive(runtime: Runtime, user: User, plan: Plan) -> Promocode:
    return await create_promocode(runtime, "code", active=False)


async def _used_up_by_someone_else(runtime: Runtime, user: User, plan: Plan) -> Promocode:
    code = await create_promocode(runtime, "code", max_uses=1)
    await buy(runtime, await create_user(runtime), plan, "code")
    return code


async def _per_user_limit_reached(runtime: Runtime, user: User, plan: Plan) -> Promocode:
    code = await create_promocode(runtime, "code", max_uses_per_user=1)
    await buy(runtime, user, plan, "code")
    return code


async def _for_another_plan(runtime: Runtime, user: User, plan: Plan) -> Promocode:
    return await create_promocode(
        runtime, "code", plans=(await create_plan(runtime, "yearly", price_minor=9_900),)
    )


async def _in_another_currency(runtime: Runtime, user: User, plan: Plan) -> Promocode:
    return await create_promocode(runtime, "code", PromocodeKind.AMOUNT, 100, currency="USD")


async def _for_newcomers_only(runtime: Runtime, user: User, plan: Plan) -> Promocode:
    code = await create_promocode(
        runtime, "code", eligibility=SubscriberEligibility.NEVER_SUBSCRIBED
    )
    await confirm(runtime, await buy(runtime, user, plan))
    return code


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (_expired, "EXPIRED"),
        (_not_started, "NOT_STARTED"),
        (_inactive, "INACTIVE"),
        (_used_up_by_someone_else, "EXHAUSTED"),
        (_per_user_limit_reached, "ALREADY_USED_BY_USER"),
        (_for_another_plan, "PLAN_NOT_ELIGIBLE"),
        (_in_another_currency, "PLAN_NOT_ELIGIBLE"),
        (_for_newcomers_only, "SUBSCRIBER_NOT_ELIGIBLE"),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else value,
)
async def test_a_refused_code_reserves_nothing_and_is_logged(
    client: httpx.AsyncClient,
    runtime: Runtime,
    user: User,
    token: str,
    plan: Plan,
    scenario: Scenario,
    expected: str,
) -> None:
    code = await scenario(runtime, user, plan)
    uses, before = await uses_of(runtime, code), await row_counts(runtime)

    quoted = await gql(client, QUOTE, quote_input(plan, "code"), token=token)
    created = await gql(client, CREATE, create_input(plan, "code"), token=token)
    assert quoted["data"]["promocodeQuote"]["quote"] is None
    assert created["data"]["purchaseCreate"]["purchase"] is None
    for payload in (quoted["data"]["promocodeQuote"], created["data"]["purchaseCreate"]):
        assert errors_of(payload) == [(expected, "code")]
    assert await uses_of(runtime, code) == uses
    assert changed(before, await row_counts(runtime)) == {"promocode_attempts": 2}
    logged = [(row[1], row[4], row[5]) for row in await attempts(runtime)]
    assert logged == [
        (code.id, AttemptOperation.QUOTE, Rejection(expected)),
        (code.id, AttemptOperation.PURCHASE, Rejection(expected)),
    ]


async def test_malformed_codes_are_not_found_and_reserve_nothing(
    client: httpx.AsyncClient, runtime: Runtime, user: User, token: str, plan: Plan
) -> None:
    code = await create_promocode(runtime, "A" * 64, max_uses=5)
    before = await row_counts(runtime)
    for entered in ("", "   ", "A" * 65, "A" * 63 + "\x07", "SAVE\tTEN", "ЁЛКА"):
        quoted = await gql(client, QUOTE, quote_input(plan, entered), token=token)
        assert errors_of(quoted["data"]["promocodeQuote"]) == [("NOT_FOUND", "code")], entered
    created = await gql(client, CREATE, create_input(plan, "A" * 65), token=token)
    assert errors_of(created["data"]["purchaseCreate"]) == [("NOT_FOUND", "code")]
    assert await uses_of(runtime, code) == 0
    assert changed(before, await row_counts(runtime)) == {"promocode_attempts": 7}
    assert {row[5] for row in await attempts(runtime)} == {Rejection.NOT_FOUND}
    # The exact 64 characters do work.
    ok = await gql(client, QUOTE, quote_input(plan, "a" * 64), token=token)
    assert ok["data"]["promocodeQuote"]["errors"] == []


async def test_a_nul_character_in_a_code_is_not_found(
    client: httpx.AsyncClient, runtime: Runtime, token: str, plan: Plan
) -> None:
    """PostgreSQL text can't hold NUL: the attempt log must still take the entry."""
    await create_promocode(runtime, "save")
    quoted = await gql(client, QUOTE, quote_input(plan, "SAVE\x00"), token=token)
    created = await gql(client, CREATE, create_input(plan, "SAVE\x00"), token=token)
    for payload in (quoted["data"]["promocodeQuote"], created["data"]["purchaseCreate"]):
        assert errors_of(payload) == [("NOT_FOUND", "code")]
    logged = [(row[3], row[5]) for row in await attempts(runtime)]
    assert logged == [("SAVE\ufffd", Rejection.NOT_FOUND)] * 2


async def test_unknown_or_malformed_plan_ids_are_unknown_plan(
    client: httpx.AsyncClient, runtime: Runtime, user: User, token: str, plan: Plan
) -> None:
    await create_promocode(runtime, "save")
    retired = await create_plan(runtime, "retired", active=False)
    before = await row_counts(runtime)
    for plan_id in (
        gid("Plan", uuid.uuid4()),
        gid("Plan", retired.id),
        gid("Purchase", plan.id),  # the right uuid in another type's id
        gid("Plan", "not-a-uuid"),
        "garbage",
    ):
        quoted = await gql(
            client, QUOTE, {"input": {"planId": plan_id, "code": "save"}}, token=token
        )
        create = {"planId": plan_id, "code": "save", "idempotencyKey": uuid.uuid4().hex}
        created = await gql(client, CREATE, {"input": create}, token=token)
        for payload in (quoted["data"]["promocodeQuote"], created["data"]["purchaseCreate"]):
            assert errors_of(payload) == [("UNKNOWN_PLAN", "planId")], plan_id
    assert await row_counts(runtime) == before  # not a code rejection: nothing logged


async def test_repeated_rejections_are_rate_limited(runtime: Runtime, plan: Plan) -> None:
    code = await create_promocode(runtime, "good", max_uses=5)
    guesser = await create_user(runtime, "guesser@example.com")
    other = await create_user(runtime, "other@example.com")
    guesser_token = await access_token(runtime, guesser)
    async with make_client(runtime, promocode_max_rejections=3) as http:
        for guess in ("AAAA", "BBBB", "CCCC"):
            body = await gql(http, QUOTE, quote_input(plan, guess), token=guesser_token)
            assert errors_of(body["data"]["promocodeQuote"]) == [("NOT_FOUND", "code")]

        quoted = await gql(http, QUOTE, quote_input(plan, "good"), token=guesser_token)
        created = await gql(http, CREATE, create_input(plan, "good"), token=guesser_token)
        for payload in (quoted["data"]["promocodeQuote"], created["data"]["purchaseCreate"]):
            assert errors_of(payload) == [("RATE_LIMITED", "code")]
            assert payload["errors"][0]["message"].startswith("Too many rejected promocodes")
            assert 0 < payload["errors"][0]["retryAfter"] <= 600
        assert await uses_of(runtime, code) == 0

        # The limit is the guesser's: another user (same IP, under its own limit) goes on.
        other_token = await access_token(runtime, other)
        ok = await gql(http, CREATE, create_input(plan, "good"), token=other_token)
        assert ok["data"]["purchaseCreate"]["errors"] == []
    assert await uses_of(runtime, code) == 1
    assert [(row[0], row[5]) for row in await attempts(runtime)] == [
        (guesser.id, Rejection.NOT_FOUND),
        (guesser.id, Rejection.NOT_FOUND),
        (guesser.id, Rejection.NOT_FOUND),
        (guesser.id, Rejection.RATE_LIMITED),
        (guesser.id, Rejection.RATE_LIMITED),
    ]


async def test_a_blocked_user_cannot_reach_promocodes(
    client: httpx.AsyncClient, runtime: Runtime, user: User, token: str, plan: Plan
) -> None:
    """Blocked accounts are refused at authentication, so USER_NOT_ACTIVE is the service's
    second line of defence; the API maps it like any rejection."""
    await create_promocode(runtime, "save")
    async with runtime.session_factory() as session, session.begin():
        stored = await session.get(User, user.id)
        assert stored is not None
        stored.status = UserStatus.BLOCKED

    for document, variables in (
        (QUOTE, quote_input(plan, "save")),
        (CREATE, create_input(plan, "save")),
        (VIEWER_PROMOCODES, {}),
    ):
        body = await gql(client, document, variables, token=token)
        assert body["data"] is None
        assert body["errors"][0]["extensions"] == {
            "code": "UNAUTHENTICATED",
            "reason": "ACCOUNT_BLOCKED",
        }
    assert await attempts(runtime) == []

    async with runtime.session_factory() as session:
        blocked = await session.get(User, user.id)
        assert blocked is not None
        with pytest.raises(PromocodeRejected) as rejected:
            await purchase_service.quote(session, Caller(blocked), plan_id=plan.id, code="save")
    assert rejected.value.reason is Rejection.USER_NOT_ACTIVE
    assert [(e.code, e.field) for e in purchase_errors(rejected.value)] == [
        (PurchaseErrorCode.USER_NOT_ACTIVE, "code")
    ]


# ---- the payment result (service) -------------------------------------------------------------


async def test_fail_releases_the_use_and_is_idempotent(
    client: httpx.AsyncClient, runtime: Runtime, user: User, token: str, plan: Plan
) -> None:
    code = await create_promocode(runtime, "once", max_uses=1)
    created = await gql(client, CREATE, create_input(plan, "once"), token=token)
    purchase_id = created["data"]["purchaseCreate"]["purchase"]["id"]
    assert await uses_of(runtime, code) == 1
    service = await service_token(runtime, "payments")

    failed = await gql(
        client,
        FAIL,
        {"input": {"purchaseId": purchase_id, "reason": "card declined"}},
        token=service,
    )
    payload = failed["data"]["purchaseFail"]
    assert payload["errors"] == []
    assert (payload["purchase"]["status"], payload["purchase"]["confirmedAt"]) == ("FAILED", None)
    assert payload["purchase"]["failedAt"] is not None
    assert await uses_of(runtime, code) == 0
    uid = node_uuid(purchase_id)
    released = [(uid, user.id, UseStatus.RELEASED, ReleaseReason.PAYMENT_FAILED)]
    assert await ledger(runtime, code) == released
    stored = await load_purchase(runtime, uid)
    assert (stored.status, stored.failure_reason) == (PurchaseStatus.FAILED, "card declined")

    # Again: the same answer, nothing released twice.
    before = await row_counts(runtime)
    again = await gql(client, FAIL, {"input": {"purchaseId": purchase_id}}, token=service)
    assert again["data"]["purchaseFail"] == payload
    assert await uses_of(runtime, code) == 0
    assert await ledger(runtime, code) == released
    assert await row_counts(runtime) == before

    # A failed purchase can't be confirmed.
    confirmed = await gql(client, CONFIRM, {"input": {"purchaseId": purchase_id}}, token=service)
    assert confirmed["data"]["purchaseConfirm"]["purchase"] is None
    assert errors_of(confirmed["data"]["purchaseConfirm"]) == [("INVALID_STATE", "purchaseId")]
    assert (await load_purchase(runtime, uid)).status is PurchaseStatus.FAILED

    # The released one-time code can be bought again.
    retry = await gql(client, CREATE, create_input(plan, "once"), token=token)
    assert retry["data"]["purchaseCreate"]["errors"] == []
    assert await uses_of(runtime, code) == 1


async def test_confirm_is_idempotent_and_a_confirmed_purchase_cannot_fail(
    client: httpx.AsyncClient, runtime: Runtime, user: User, token: str, plan: Plan
) -> None:
    code = await create_promocode(runtime, "once", max_uses=1)
    created = await gql(client, CREATE, create_input(plan, "once"), token=token)
    purchase_id = created["data"]["purchaseCreate"]["purchase"]["id"]
    service = await service_token(runtime, "payments")

    confirmed = await gql(client, CONFIRM, {"input": {"purchaseId": purchase_id}}, token=service)
    payload = confirmed["data"]["purchaseConfirm"]
    assert payload["errors"] == []
    assert (payload["purchase"]["status"], payload["purchase"]["failedAt"]) == ("CONFIRMED", None)
    assert payload["purchase"]["confirmedAt"] is not None
    again = await gql(client, CONFIRM, {"input": {"purchaseId": purchase_id}}, token=service)
    assert again["data"]["purchaseConfirm"] == payload

    failed = await gql(client, FAIL, {"input": {"purchaseId": purchase_id}}, token=service)
    assert failed["data"]["purchaseFail"]["purchase"] is None
    assert errors_of(failed["data"]["purchaseFail"]) == [("INVALID_STATE", "purchaseId")]
    assert await uses_of(runtime, code) == 1
    uid = node_uuid(purchase_id)
    assert await ledger(runtime, code) == [(uid, user.id, UseStatus.CONFIRMED, None)]
    assert (await load_purchase(runtime, uid)).status is PurchaseStatus.CONFIRMED


async def test_payment_result_input_errors(
    client: httpx.AsyncClient, runtime: Runtime, token: str, plan: Plan
) -> None:
    created = await gql(client, CREATE, create_input(plan, None), token=token)
    purchase_id = created["data"]["purchaseCreate"]["purchase"]["id"]
    service = await service_token(runtime)
    before = await row_counts(runtime)
    for bad_id in (gid("Purchase", uuid.uuid4()), gid("Plan", plan.id), "garbage"):
        for document, name in ((CONFIRM, "purchaseConfirm"), (FAIL, "purchaseFail")):
            body = await gql(client, document, {"input": {"purchaseId": bad_id}}, token=service)
            assert errors_of(body["data"][name]) == [("NOT_FOUND", "purchaseId")], bad_id
    for reason in ("x" * 201, "line\nbreak"):
        body = await gql(
            client, FAIL, {"input": {"purchaseId": purchase_id, "reason": reason}}, token=service
        )
        assert errors_of(body["data"]["purchaseFail"]) == [("INVALID_REASON", "reason")]
    assert await row_counts(runtime) == before


async def test_roles_are_enforced(
    client: httpx.AsyncClient, runtime: Runtime, token: str, plan: Plan
) -> None:
    await create_promocode(runtime, "save")
    created = await gql(client, CREATE, create_input(plan, "save"), token=token)
    purchase_id = created["data"]["purchaseCreate"]["purchase"]["id"]
    service = await service_token(runtime)
    before = await row_counts(runtime)

    service_calls = (
        (CONFIRM, {"input": {"purchaseId": purchase_id}}),
        (FAIL, {"input": {"purchaseId": purchase_id}}),
    )
    user_calls = ((QUOTE, quote_input(plan, "save")), (CREATE, create_input(plan, "save")))
    for document, variables, caller, expected in (
        *((d, v, token, "FORBIDDEN") for d, v in service_calls),  # a user is not the payer
        *((d, v, None, "UNAUTHENTICATED") for d, v in service_calls),
        *((d, v, service, "FORBIDDEN") for d, v in user_calls),  # a service has no user
        *((d, v, None, "UNAUTHENTICATED") for d, v in user_calls),
    ):
        body = await gql(client, document, variables, token=caller)
        assert body["data"] is None
        assert error_codes(body) == [expected]
    assert await row_counts(runtime) == before
    assert (await load_purchase(runtime, node_uuid(purchase_id))).status is PurchaseStatus.PENDING

    # Viewer fields need a signed-in user.
    anonymous = await gql(client, VIEWER_PROMOCODES)
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]


# ---- the viewer's codes and purchases ---------------------------------------------------------


async def test_viewer_promocodes_lists_what_the_caller_may_use(
    client: httpx.AsyncClient, runtime: Runtime, user: User, token: str, plan: Plan
) -> None:
    other = await create_user(runtime, "other@example.com")
    yearly = await create_plan(runtime, "yearly", price_minor=9_900)
    retired = await create_plan(runtime, "retired", price_minor=100, active=False)
    soon = utcnow() + timedelta(days=3)
    await create_promocode(runtime, "public10", description="Ten off", valid_until=soon)
    await create_promocode(
        runtime,
        "mine",
        PromocodeKind.AMOUNT,
        300,
        currency="RUB",
        audience=Audience.GRANTED,
        plans=(yearly, retired),
    )
    await create_promocode(
        runtime,
        "team",
        PromocodeKind.FIXED_PRICE,
        100,
        currency="RUB",
        audience=Audience.GRANTED,
        trial_days=7,
        discounted_cycles=3,
    )
    await create_promocode(runtime, "trial", PromocodeKind.FREE, 0, trial_days=30)
    # Not for this user: granted to someone else, a generated batch code, inactive, expired,
    # not started, used up, or already used by them.
    await create_promocode(runtime, "theirs", audience=Audience.GRANTED)
    await create_promocode(runtime, "batch0001", batch_id=uuid.uuid4())
    await create_promocode(runtime, "off", active=False)
    await create_promocode(runtime, "old", valid_until=utcnow() - timedelta(days=1))
    await create_promocode(runtime, "later", valid_from=utcnow() + timedelta(days=1))
    await create_promocode(runtime, "gone", max_uses=1)
    await create_promocode(runtime, "usedup", max_uses_per_user=1)
    await buy(runtime, other, plan, "gone")
    await buy(runtime, user, plan, "usedup")
    async with runtime.session_factory() as session:
        codes = {c.code: c for c in await session.scalars(select(Promocode))}
    await grant(runtime, codes["MINE"], user=user)
    await grant(runtime, codes["TEAM"], group=await add_group(runtime, user))
    await grant(runtime, codes["THEIRS"], user=other)

    body = await gql(client, VIEWER_PROMOCODES, token=token)
    offers = body["data"]["viewer"]["promocodes"]
    by_code = {offer["code"]: offer for offer in offers}
    assert offers[0]["code"] == "PUBLIC10"  # the soonest to expire first
    assert set(by_code) == {"PUBLIC10", "MINE", "TEAM", "TRIAL"}
    assert by_code["PUBLIC10"] == {
        "code": "PUBLIC10",
        "kind": "PERCENT",
        "percentOff": 10,
        "amountOff": None,
        "fixedPrice": None,
        "trialDays": 0,
        "discountedCycles": 1,
        "validUntil": by_code["PUBLIC10"]["validUntil"],
        "description": "Ten off",
        "eligiblePlans": None,
    }
    assert by_code["PUBLIC10"]["validUntil"].endswith("+00:00")
    assert (by_code["MINE"]["amountOff"], by_code["MINE"]["percentOff"]) == (money(300), None)
    assert by_code["MINE"]["eligiblePlans"] == [{"slug": "yearly"}]  # retired plans hidden
    assert (by_code["TEAM"]["fixedPrice"], by_code["TEAM"]["trialDays"]) == (money(100), 7)
    assert by_code["TEAM"]["discountedCycles"] == 3
    trial = by_code["TRIAL"]
    assert (trial["kind"], trial["trialDays"], trial["percentOff"], trial["amountOff"]) == (
        "FREE",
        30,
        None,
        None,
    )

    # The other user sees their own grant, not this user's.
    theirs = await gql(client, VIEWER_PROMOCODES, token=await access_token(runtime, other))
    assert {o["code"] for o in theirs["data"]["viewer"]["promocodes"]} == {
        "PUBLIC10",
        "THEIRS",
        "TRIAL",
        "USEDUP",
    }


async def test_viewer_purchases_are_own_paged_and_batched(
    client: httpx.AsyncClient, runtime: Runtime, user: User, token: str, plan: Plan
) -> None:
    other = await create_user(runtime, "other@example.com")
    yearly = await create_plan(runtime, "yearly", price_minor=9_900)
    await create_promocode(runtime, "many", PromocodeKind.PERCENT, 20, max_uses_per_user=100)
    await create_promocode(runtime, "more", PromocodeKind.AMOUNT, 50, max_uses_per_user=100)
    theirs = await buy(runtime, other, plan, "many")
    mine = [await buy(runtime, user, plan, "many"), await buy(runtime, user, yearly)]

    with counting_statements(runtime.engine) as small:
        body = await gql(client, VIEWER_PURCHASES, {"first": 50}, token=token)
    page = body["data"]["viewer"]["purchases"]
    assert [node_uuid(e["node"]["id"]) for e in page["edges"]] == [p.id for p in reversed(mine)]

    for index in range(10):
        code = ("many", "more", None)[index % 3]
        mine.append(await buy(runtime, user, (plan, yearly)[index % 2], code))
    with counting_statements(runtime.engine) as large:
        body = await gql(client, VIEWER_PURCHASES, {"first": 50}, token=token)
    nodes = [edge["node"] for edge in body["data"]["viewer"]["purchases"]["edges"]]
    assert [node_uuid(n["id"]) for n in nodes] == [p.id for p in reversed(mine)]
    assert theirs.id not in {node_uuid(n["id"]) for n in nodes}
    assert {n["promocode"] for n in nodes} == {"MANY", "MORE", None}
    assert {n["plan"]["slug"] for n in nodes} == {"monthly", "yearly"}
    # Plans and codes are loaded in one batch each: the count does not grow with the list.
    assert len(large) == len(small), (small, large)

    def reading(table: str) -> int:
        return sum(1 for s in large if s.lstrip().startswith("SELECT") and f"FROM {table} " in s)

    assert (reading("purchases"), reading("plans"), reading("promocodes")) == (1, 1, 1), large

    # Pages.
    first = await gql(client, VIEWER_PURCHASES, {"first": 5}, token=token)
    first_page = first["data"]["viewer"]["purchases"]
    assert first_page["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        client, VIEWER_PURCHASES, {"after": first_page["pageInfo"]["endCursor"]}, token=token
    )
    rest_page = rest["data"]["viewer"]["purchases"]
    assert rest_page["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "endCursor": rest_page["edges"][-1]["cursor"],
    }
    paged = [e["node"]["id"] for e in first_page["edges"] + rest_page["edges"]]
    assert [node_uuid(i) for i in paged] == [p.id for p in reversed(mine)]
    too_big = await gql(client, VIEWER_PURCHASES, {"first": 101}, token=token)
    assert error_codes(too_big) == ["BAD_USER_INPUT"]


async def test_a_purchase_node_is_visible_to_its_owner_and_services_only(
    client: httpx.AsyncClient, runtime: Runtime, user: User, token: str, plan: Plan
) -> None:
    purchase = await buy(runtime, user, plan)
    purchase_id = gid("Purchase", purchase.id)
    expected = {"id": purchase_id, "status": "PENDING", "plan": {"slug": "monthly"}}

    mine = await gql(client, NODE, {"id": purchase_id}, token=token)
    assert mine["data"]["node"] == expected
    service = await gql(client, NODE, {"id": purchase_id}, token=await service_token(runtime))
    assert service["data"]["node"] == expected
    admin = await create_user(runtime, "root@example.com", roles=(Role.USER, Role.ADMIN))
    as_admin = await gql(
        client, NODE, {"id": purchase_id}, token=await access_token(runtime, admin)
    )
    assert as_admin["data"]["node"] == expected

    stranger = await create_user(runtime, "stranger@example.com")
    theirs = await gql(
        client, NODE, {"id": purchase_id}, token=await access_token(runtime, stranger)
    )
    assert theirs["data"]["node"] is None
    anonymous = await gql(client, NODE, {"id": purchase_id})
    assert anonymous == {"data": {"node": None}}  # node(id:) hides, never refuses


async def test_purchase_create_statement_budget(
    client: httpx.AsyncClient, runtime: Runtime, user: User, token: str, plan: Plan
) -> None:
    """Round trips are the cost of a reservation: this pins how many one takes."""
    await create_promocode(runtime, "budget", PromocodeKind.PERCENT, 50, max_uses=10)
    with counting_statements(runtime.engine) as statements:
        body = await gql(client, CREATE, create_input(plan, "budget", "key-budget"), token=token)
    assert body["data"]["purchaseCreate"]["errors"] == []
    assert len(statements) <= PURCHASE_CREATE_STATEMENTS[runtime.engine.dialect.name], statements
    assert body["data"]["purchaseCreate"]["purchase"]["plan"]["slug"] == "monthly"
    assert body["data"]["purchaseCreate"]["purchase"]["promocode"] == "BUDGET"

    with counting_statements(runtime.engine) as statements:
        body = await gql(client, CREATE, create_input(plan, None, "key-plain"), token=token)
    assert body["data"]["purchaseCreate"]["errors"] == []
    budget = PURCHASE_WITHOUT_CODE_STATEMENTS[runtime.engine.dialect.name]
    assert len(statements) <= budget, statements
