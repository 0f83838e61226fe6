"""The service's ride calls (both backends): checks, holds, charges, releases; frames in the
owner's timezone; the owner's notifications; every refusal typed and changing nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.models.family import FamilyCharge, FamilyHold, HoldStatus, LimitFrame
from app.models.identity import Role
from app.runtime import Runtime
from app.services.family import rides
from app.uow import unit_of_work
from tests.factories import family as f
from tests.factories.identity import access_token, create_user, service_token
from tests.family.test_client import gid
from tests.helpers import error_codes, gql, row_counts

CHECK = """
mutation($a: ID!, $u: ID!, $amount: MoneyInput!, $hold: FamilyRideHoldInput) {
  familyRideCheck(input: {accountId: $a, userId: $u, amount: $amount, hold: $hold}) {
    available reason
    limit { remaining { amountMinor } held { amountMinor } charged { amountMinor } resetsAt }
    hold { id orderId expiresAt }
    errors { code field message }
  }
}"""
CHARGE = """
mutation($a: ID!, $u: ID!, $order: String!, $amount: MoneyInput!) {
  familyRideCharge(input: {accountId: $a, userId: $u, orderId: $order, amount: $amount}) {
    duplicate limit { charged { amountMinor } remaining { amountMinor } } errors { code field }
  }
}"""
RELEASE = """
mutation($a: ID!, $order: String!) {
  familyRideRelease(input: {accountId: $a, orderId: $order}) { outcome errors { code field } }
}"""
NOTIFICATIONS = """
query { viewer { familyNotifications { id kind details seenAt } } }"""
MARK = """
mutation($ids: [ID!]!) {
  familyNotificationsMarkSeen(input: {ids: $ids}) { marked errors { code } }
}"""


def rub(amount: int, currency: str = "RUB") -> dict[str, Any]:
    return {"amountMinor": amount, "currency": currency}


async def _call(client: httpx.AsyncClient, doc: str, root: str, token: str, /, **v: Any) -> Any:
    body = await gql(client, doc, v, token=token)
    assert "errors" not in body, body
    return body["data"][root]


@pytest.fixture
async def svc(runtime: Runtime) -> str:
    return await service_token(runtime)


async def test_a_hold_reserves_the_limit_until_charged(
    client: httpx.AsyncClient, runtime: Runtime, svc: str
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000, LimitFrame.DAY))
    who = {"a": gid(family), "u": str(kid.id)}
    held = await _call(
        client, CHECK, "familyRideCheck", svc, **who, amount=rub(700), hold={"orderId": "o-1"}
    )
    assert held["available"] and held["hold"]["orderId"] == "o-1" and held["errors"] == []
    assert held["limit"]["remaining"] == {"amountMinor": 300}
    assert held["limit"]["held"] == {"amountMinor": 700}
    refused = await _call(
        client, CHECK, "familyRideCheck", svc, **who, amount=rub(400), hold={"orderId": "o-2"}
    )
    assert (refused["available"], refused["reason"], refused["hold"]) == (
        False,
        "LIMIT_EXCEEDED",
        None,
    )
    plain = await _call(client, CHECK, "familyRideCheck", svc, **who, amount=rub(300))
    assert plain["available"] and plain["hold"] is None
    charged = await _call(
        client, CHARGE, "familyRideCharge", svc, **who, order="o-1", amount=rub(650)
    )
    assert charged == {
        "duplicate": False,
        "limit": {"charged": {"amountMinor": 650}, "remaining": {"amountMinor": 350}},
        "errors": [],
    }
    again = await _call(
        client, CHARGE, "familyRideCharge", svc, **who, order="o-1", amount=rub(650)
    )
    assert again["duplicate"] is True
    async with runtime.session_factory() as session:
        assert (
            await session.scalar(select(FamilyHold.status).where(FamilyHold.order_id == "o-1"))
            is HoldStatus.CHARGED
        )
        assert await session.scalar(select(func.count()).select_from(FamilyCharge)) == 1


async def test_a_retried_hold_is_the_same_hold(
    client: httpx.AsyncClient, runtime: Runtime, svc: str
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000))
    who = {"a": gid(family), "u": str(kid.id)}
    first = await _call(
        client, CHECK, "familyRideCheck", svc, **who, amount=rub(600), hold={"orderId": "o-1"}
    )
    retry = await _call(
        client, CHECK, "familyRideCheck", svc, **who, amount=rub(600), hold={"orderId": "o-1"}
    )
    assert retry["available"] and retry["hold"] == first["hold"]
    reused = await _call(
        client, CHECK, "familyRideCheck", svc, **who, amount=rub(500), hold={"orderId": "o-1"}
    )
    assert [(e["code"], e["field"]) for e in reused["errors"]] == [
        ("ORDER_ID_REUSED", "hold.orderId")
    ]


async def test_release_ends_a_hold_once(
    client: httpx.AsyncClient, runtime: Runtime, svc: str
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000))
    who = {"a": gid(family), "u": str(kid.id)}
    await _call(
        client, CHECK, "familyRideCheck", svc, **who, amount=rub(900), hold={"orderId": "o-1"}
    )
    released = await _call(client, RELEASE, "familyRideRelease", svc, a=gid(family), order="o-1")
    assert released == {"outcome": "RELEASED", "errors": []}
    again = await _call(client, RELEASE, "familyRideRelease", svc, a=gid(family), order="o-1")
    assert again["outcome"] == "ALREADY_RELEASED"
    fits = await _call(client, CHECK, "familyRideCheck", svc, **who, amount=rub(1000))
    assert fits["available"]
    await _call(
        client, CHECK, "familyRideCheck", svc, **who, amount=rub(100), hold={"orderId": "o-2"}
    )
    await _call(client, CHARGE, "familyRideCharge", svc, **who, order="o-2", amount=rub(100))
    charged = await _call(client, RELEASE, "familyRideRelease", svc, a=gid(family), order="o-2")
    assert [e["code"] for e in charged["errors"]] == ["ALREADY_CHARGED"]
    unknown = await _call(client, RELEASE, "familyRideRelease", svc, a=gid(family), order="o-9")
    assert [(e["code"], e["field"]) for e in unknown["errors"]] == [("HOLD_NOT_FOUND", "orderId")]


async def test_an_expired_hold_counts_for_nothing(runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000))
    now = datetime.now(UTC)
    assert (
        await f.check(runtime, family, kid, 1000, order_id="o-1", ttl=timedelta(minutes=5), now=now)
    ).available
    assert not (await f.check(runtime, family, kid, 1, now=now + timedelta(minutes=4))).available
    later = await f.check(
        runtime, family, kid, 1000, order_id="o-2", now=now + timedelta(minutes=5)
    )
    assert later.available
    async with unit_of_work(runtime.session_factory) as session:
        assert await rides.expire_holds(session, now=now + timedelta(minutes=6)) == 1
    async with runtime.session_factory() as session:
        statuses = dict(
            (await session.execute(select(FamilyHold.order_id, FamilyHold.status))).all()
        )
    assert statuses == {"o-1": HoldStatus.EXPIRED, "o-2": HoldStatus.HELD}


@pytest.mark.parametrize(
    ("zone", "local_midnight_utc"),
    [
        ("Europe/Moscow", datetime(2026, 12, 1, 21, 0, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 12, 2, 5, 0, tzinfo=UTC)),
        ("Asia/Tokyo", datetime(2026, 12, 1, 15, 0, tzinfo=UTC)),
    ],
)
async def test_a_day_frame_resets_at_the_owners_midnight(
    runtime: Runtime, zone: str, local_midnight_utc: datetime
) -> None:
    family = await f.create_family(runtime, timezone=zone)
    kid = await f.add_member(
        runtime,
        family,
        await f.person(runtime, timezone="Pacific/Auckland"),
        spec=f.limit(1000, LimitFrame.DAY),
    )
    before = local_midnight_utc - timedelta(microseconds=1)
    await f.charge(runtime, family, kid, "late-ride", 1000, now=before - timedelta(minutes=1))
    still = await f.check(runtime, family, kid, 1, now=before)
    assert (
        not still.available
        and still.limit is not None
        and still.limit.frame.end == local_midnight_utc
    )
    fresh = await f.check(runtime, family, kid, 1000, now=local_midnight_utc)
    assert (
        fresh.available
        and fresh.limit is not None
        and fresh.limit.frame.start == local_midnight_utc
    )


async def test_a_dst_day_is_a_frame_of_23_hours(runtime: Runtime) -> None:
    family = await f.create_family(runtime, timezone="Europe/Berlin")
    kid = await f.add_member(runtime, family, spec=f.limit(100, LimitFrame.DAY))
    noon = datetime(2026, 3, 29, 11, 0, tzinfo=UTC)
    result = await f.check(runtime, family, kid, 1, now=noon)
    assert result.limit is not None
    assert result.limit.frame.end - result.limit.frame.start == timedelta(hours=23)


async def test_the_owner_hears_of_80_and_100_percent_and_of_refusals_once_per_frame(
    client: httpx.AsyncClient, runtime: Runtime, svc: str
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000, LimitFrame.MONTH))
    await f.charge(runtime, family, kid, "r-1", 500)
    await f.charge(runtime, family, kid, "r-2", 300)  # 80 %
    await f.charge(runtime, family, kid, "r-3", 100)  # 90 %: nothing new
    await f.charge(runtime, family, kid, "r-4", 100)  # 100 %
    for _ in range(3):
        assert not (await f.check(runtime, family, kid, 50)).available
    body = await gql(client, NOTIFICATIONS, token=family.owner_token)
    found = body["data"]["viewer"]["familyNotifications"]
    assert sorted(n["kind"] for n in found) == ["LIMIT_100", "LIMIT_80", "RIDE_REFUSED"]
    assert {n["details"]["userId"] for n in found} == {str(kid.id)}
    kid_body = await gql(client, NOTIFICATIONS, token=await access_token(runtime, kid))
    assert kid_body["data"]["viewer"]["familyNotifications"] == []
    marked = await _call(
        client,
        MARK,
        "familyNotificationsMarkSeen",
        family.owner_token,
        ids=[n["id"] for n in found],
    )
    assert marked == {"marked": 3, "errors": []}
    again = await _call(
        client,
        MARK,
        "familyNotificationsMarkSeen",
        family.owner_token,
        ids=[n["id"] for n in found],
    )
    assert again["marked"] == 0


async def test_users_and_strangers_get_no_ride_calls(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000))
    who = {"a": gid(family), "u": str(kid.id), "amount": rub(10), "hold": {"orderId": "o-1"}}
    admin = await access_token(runtime, await create_user(runtime, roles=(Role.ADMIN,)))
    before = await row_counts(runtime)
    for token, code in [
        (family.owner_token, "FORBIDDEN"),
        (await access_token(runtime, kid), "FORBIDDEN"),
        (admin, "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ]:
        body = await gql(client, CHECK, who, token=token)
        assert error_codes(body) == [code]
        body = await gql(
            client,
            CHARGE,
            {"a": gid(family), "u": str(kid.id), "order": "o-1", "amount": rub(10)},
            token=token,
        )
        assert error_codes(body) == [code]
    assert await row_counts(runtime) == before


async def test_bad_ride_calls_are_typed_and_change_nothing(
    client: httpx.AsyncClient, runtime: Runtime, svc: str
) -> None:
    family = await f.create_family(runtime)
    kid = await f.add_member(runtime, family, spec=f.limit(1000))
    stranger = await f.person(runtime)
    await f.charge(runtime, family, kid, "paid", 100)
    a, u = gid(family), str(kid.id)
    cases: list[tuple[str, str, dict[str, Any], tuple[str, str]]] = [
        (
            CHECK,
            "familyRideCheck",
            {"a": a, "u": u, "amount": rub(-5)},
            ("INVALID_AMOUNT", "amount.amountMinor"),
        ),
        (
            CHECK,
            "familyRideCheck",
            {"a": a, "u": u, "amount": rub(0)},
            ("INVALID_AMOUNT", "amount.amountMinor"),
        ),
        (
            CHECK,
            "familyRideCheck",
            {"a": a, "u": u, "amount": rub(2_000_000_001)},
            ("INVALID_AMOUNT", "amount.amountMinor"),
        ),
        (
            CHECK,
            "familyRideCheck",
            {"a": a, "u": u, "amount": rub(5, "ZZZ")},
            ("INVALID_CURRENCY", "amount.currency"),
        ),
        (
            CHECK,
            "familyRideCheck",
            {"a": a, "u": u, "amount": rub(5, "USD")},
            ("CURRENCY_MISMATCH", "amount.currency"),
        ),
        (
            CHECK,
            "familyRideCheck",
            {"a": a, "u": str(stranger.id), "amount": rub(5)},
            ("NOT_A_MEMBER", "userId"),
        ),
        (
            CHECK,
            "familyRideCheck",
            {"a": "nonsense", "u": u, "amount": rub(5)},
            ("NOT_FOUND", "accountId"),
        ),
        (
            CHECK,
            "familyRideCheck",
            {"a": str(stranger.id), "u": u, "amount": rub(5)},
            ("NOT_FOUND", "accountId"),
        ),
        (
            CHECK,
            "familyRideCheck",
            {"a": a, "u": u, "amount": rub(5), "hold": {"orderId": ""}},
            ("INVALID_ORDER_ID", "hold.orderId"),
        ),
        (
            CHECK,
            "familyRideCheck",
            {"a": a, "u": u, "amount": rub(5), "hold": {"orderId": "x" * 65}},
            ("INVALID_ORDER_ID", "hold.orderId"),
        ),
        (
            CHECK,
            "familyRideCheck",
            {"a": a, "u": u, "amount": rub(5), "hold": {"orderId": "o", "ttlSeconds": 5}},
            ("INVALID_TTL", "hold.ttlSeconds"),
        ),
        (
            CHARGE,
            "familyRideCharge",
            {"a": a, "u": u, "order": "paid", "amount": rub(101)},
            ("ORDER_ID_REUSED", "orderId"),
        ),
        (
            CHARGE,
            "familyRideCharge",
            {"a": a, "u": u, "order": "o-x", "amount": rub(-1)},
            ("INVALID_AMOUNT", "amount.amountMinor"),
        ),
        (
            CHARGE,
            "familyRideCharge",
            {"a": a, "u": str(stranger.id), "order": "o-y", "amount": rub(1)},
            ("NOT_A_MEMBER", "userId"),
        ),
        (RELEASE, "familyRideRelease", {"a": a, "order": "unknown"}, ("HOLD_NOT_FOUND", "orderId")),
    ]
    before = await row_counts(runtime)
    for doc, root, variables, expected in cases:
        payload = await _call(client, doc, root, svc, **variables)
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [expected], (
            variables,
            payload,
        )
    assert await row_counts(runtime) == before


async def test_owner_and_unlimited_members_always_fit(runtime: Runtime) -> None:
    family = await f.create_family(runtime)
    free = await f.add_member(runtime, family)
    for user in (family.owner, free):
        result = await f.check(runtime, family, user, 2_000_000_000, order_id=f"o-{user.id}")
        assert result.available and result.limit is None and result.hold is not None
