"""Personal goals, client side over HTTP on both backends: `viewer.goals`, `launch`,
achievements and `achievementsMarkSeen`, the progress log, the wallet, `node(id:)` refetch,
and that a user only ever sees their own goals."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from strawberry.relay import to_base64

from app.models.base import utcnow
from app.models.goals import UserGoal, UserGoalStatus
from app.models.identity import Role, User
from app.runtime import Runtime
from app.services.goals.conditions import ProgressReason
from app.services.identity import users as user_service
from app.services.orders.facts import OrderStatus
from tests.factories.goals import (
    WALLET_300,
    assign,
    create_template,
    finish,
    goal,
    process,
    record_and_process,
)
from tests.factories.identity import PASSWORD, access_token, create_user, service_token
from tests.factories.orders import order, record
from tests.helpers import error_codes, gql

GOAL_FIELDS = """
  id goalId status title description details buttonText
  progress { current total } startsAt expiresAt doneAt
  conditions {
    rideClasses paymentMethods timeWindow { start end } minPrice { amountMinor currency }
    orderKinds periodDays
  }
  bonus { type definition grantedAt granted }
"""
VIEWER_GOALS = f"""
query ViewerGoals {{
  viewer {{
    goals {{
      active {{ {GOAL_FIELDS} }}
      next {{ {GOAL_FIELDS} }}
      recent {{ {GOAL_FIELDS} }}
    }}
  }}
}}
"""
LAUNCH = "query Launch { launch { personalGoals { hasUnseenAchievements } } }"
ACHIEVEMENTS = """
query Achievements($unseenOnly: Boolean!) {
  viewer {
    achievements(unseenOnly: $unseenOnly) {
      goalId title description progress { current total } buttonText createdAt seen
      goal { id status }
    }
  }
}
"""
MARK_SEEN = """
mutation MarkSeen($input: AchievementsMarkSeenInput!) {
  achievementsMarkSeen(input: $input) { marked hasUnseenAchievements errors { code field message } }
}
"""
PROGRESS_LOG = """
query ProgressLog($first: Int, $after: String) {
  viewer {
    goalProgressLog(first: $first, after: $after) {
      edges {
        cursor
        node {
          id orderId reason counted reversed goalId userGoalId orderKind orderStatus rideClass
          paymentMethod price { amountMinor currency } completedAt processedAt
        }
      }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""
WALLET = """
query Wallet($first: Int, $after: String) {
  viewer {
    wallet {
      balances { amountMinor currency }
      entries(first: $first, after: $after) {
        edges { node { id amount { amountMinor currency } kind orderId createdAt } }
        pageInfo { hasNextPage hasPreviousPage }
      }
    }
  }
}
"""
NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on UserGoal { goalId status title progress { current total } } }
}
"""
VIEWER_USER = "query Viewer { viewer { user { id } } }"

RICH_CONDITIONS = {
    "target": 3,
    "periodDays": 7,
    "rideClasses": ["comfort", "business"],
    "paymentMethods": ["card"],
    "timeWindow": {"start": "22:00", "end": "06:00"},
    "minPrice": {"amountMinor": 30_000, "currency": "RUB"},
}


def gid(type_name: str, value: object) -> str:
    return to_base64(type_name, str(value))


def at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def create_user_with_locale(runtime: Runtime, locale: str) -> User:
    """A user registered with `locale`, as the `register` mutation would create them."""
    async with runtime.session_factory() as session, session.begin():
        return await user_service.register(
            session,
            user_service.Registration(
                email=f"user-{uuid.uuid4().hex[:8]}@example.com",
                phone=None,
                password=PASSWORD,
                locale=locale,
            ),
            runtime.settings,
        )


@dataclass
class Journey:
    """A user who finished goal A (WALLET bonus granted), counts towards B, waits for C, D."""

    user: User
    token: str
    done: UserGoal  # A
    active: UserGoal  # B
    waiting: list[UserGoal]  # C, D
    started: datetime  # when A was assigned (and became ACTIVE)
    b_started: datetime  # when A was achieved, so B became ACTIVE
    b_order_at: datetime  # the order that counted towards B, 23:00 in Moscow


async def journey(runtime: Runtime, user: User) -> Journey:
    now = utcnow()
    started = now - timedelta(days=2)
    a = await create_template(runtime, conditions={"target": 1, "periodDays": 5})
    b = await create_template(
        runtime,
        conditions=RICH_CONDITIONS,
        title={"en": "Three night rides", "ru": "Три ночные поездки"},
    )
    c = await create_template(runtime, title={"en": "Ride C", "ru": "Поездка C"})
    d = await create_template(runtime, title={"en": "Ride D"})  # no Russian title
    done = await assign(runtime, user.id, a.id, now=started)
    active = await assign(runtime, user.id, b.id, now=started)
    waiting = [await assign(runtime, user.id, t.id, now=started) for t in (c, d)]

    b_started = started + timedelta(hours=1)
    closing = order(user.id, completed_at=b_started)
    assert (await record_and_process(runtime, closing, now=b_started)).closed
    assert await finish(runtime, done.id, now=b_started + timedelta(minutes=1))

    # 20:00 UTC of yesterday is 23:00 in Moscow, inside B's night window, and lies between
    # B's start (two days ago) and now.
    yesterday = (now - timedelta(days=1)).date()
    b_order_at = datetime(yesterday.year, yesterday.month, yesterday.day, 20, tzinfo=now.tzinfo)
    night = order(user.id, completed_at=b_order_at, price_minor=45_000)
    result = await record_and_process(runtime, night, now=b_order_at + timedelta(minutes=1))
    assert result.reason is ProgressReason.COUNTED
    return Journey(
        user,
        await access_token(runtime, user),
        done,
        active,
        waiting,
        started,
        b_started,
        b_order_at,
    )


async def viewer_goals(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    body = await gql(client, VIEWER_GOALS, token=token)
    assert "errors" not in body, body
    goals: dict[str, Any] = body["data"]["viewer"]["goals"]
    return goals


async def has_unseen(client: httpx.AsyncClient, token: str) -> bool:
    body = await gql(client, LAUNCH, token=token)
    assert "errors" not in body, body
    return bool(body["data"]["launch"]["personalGoals"]["hasUnseenAchievements"])


async def mark_seen(client: httpx.AsyncClient, token: str, ids: list[str]) -> dict[str, Any]:
    body = await gql(client, MARK_SEEN, {"input": {"goalIds": ids}}, token=token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["achievementsMarkSeen"]
    return payload


async def achievements(
    client: httpx.AsyncClient, token: str, *, unseen_only: bool = True
) -> list[dict[str, Any]]:
    body = await gql(client, ACHIEVEMENTS, {"unseenOnly": unseen_only}, token=token)
    assert "errors" not in body, body
    found: list[dict[str, Any]] = body["data"]["viewer"]["achievements"]
    return found


async def progress_log(
    client: httpx.AsyncClient, token: str, first: int | None = None, after: str | None = None
) -> dict[str, Any]:
    body = await gql(client, PROGRESS_LOG, {"first": first, "after": after}, token=token)
    assert "errors" not in body, body
    connection: dict[str, Any] = body["data"]["viewer"]["goalProgressLog"]
    return connection


@pytest.fixture
async def russian(runtime: Runtime) -> Journey:
    return await journey(runtime, await create_user_with_locale(runtime, "ru"))


# ---- viewer.goals -----------------------------------------------------------------------------


async def test_viewer_goals_show_the_active_the_next_and_the_recent_in_the_users_locale(
    client: httpx.AsyncClient, russian: Journey
) -> None:
    goals = await viewer_goals(client, russian.token)

    active = goals["active"]
    assert active["id"] == gid("UserGoal", russian.active.id)
    assert active["goalId"] == russian.active.goal_id
    assert active["status"] == "ACTIVE"
    assert active["title"] == "Три ночные поездки"
    assert active["description"] == "Rides in comfort count."  # no Russian text: the default
    assert active["details"] == ["Comfort class", "Any time"]
    assert active["buttonText"] == "Great"
    assert active["progress"] == {"current": 1, "total": 3}
    assert at(active["startsAt"]) == russian.b_started
    assert at(active["expiresAt"]) == russian.b_started + timedelta(days=7)
    assert active["doneAt"] is None
    assert active["conditions"] == {
        "rideClasses": ["business", "comfort"],
        "paymentMethods": ["card"],
        "timeWindow": {"start": "22:00", "end": "06:00"},
        "minPrice": {"amountMinor": 30_000, "currency": "RUB"},
        "orderKinds": ["RIDE"],
        "periodDays": 7,
    }
    assert active["bonus"] == {
        "type": "WALLET",
        "definition": WALLET_300,
        "grantedAt": None,
        "granted": None,
    }

    assert [g["id"] for g in goals["next"]] == [gid("UserGoal", g.id) for g in russian.waiting]
    assert [(g["status"], g["title"], g["progress"]) for g in goals["next"]] == [
        ("NEXT", "Поездка C", {"current": 0, "total": 3}),
        ("NEXT", "Ride D", {"current": 0, "total": 3}),  # the default locale's title
    ]
    assert [(g["startsAt"], g["expiresAt"]) for g in goals["next"]] == [(None, None)] * 2
    assert goals["next"][0]["conditions"]["rideClasses"] == ["comfort"]
    assert goals["next"][0]["conditions"]["timeWindow"] is None
    assert goals["next"][0]["conditions"]["minPrice"] is None
    assert goals["next"][0]["conditions"]["paymentMethods"] == []

    [recent] = goals["recent"]
    assert recent["id"] == gid("UserGoal", russian.done.id)
    assert (recent["status"], recent["title"]) == ("DONE", "Совершите 3 поездки")
    assert recent["progress"] == {"current": 1, "total": 1}
    assert at(recent["doneAt"]) == russian.b_started
    assert at(recent["bonus"]["grantedAt"]) == russian.b_started + timedelta(minutes=1)
    assert recent["bonus"]["granted"] == {
        "type": "WALLET",
        "amountMinor": 30_000,
        "currency": "RUB",
    }


async def test_an_english_speaker_reads_the_default_texts_and_a_region_falls_back_to_its_language(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    template = await create_template(runtime)
    english = await create_user(runtime)
    regional = await create_user_with_locale(runtime, "ru-RU")
    for user in (english, regional):
        await assign(runtime, user.id, template.id)

    mine = await viewer_goals(client, await access_token(runtime, english))
    assert mine["active"]["title"] == "Take 3 comfort rides"
    theirs = await viewer_goals(client, await access_token(runtime, regional))
    assert theirs["active"]["title"] == "Совершите 3 поездки"


async def test_a_user_without_goals_has_empty_lists_and_sees_no_one_elses(
    client: httpx.AsyncClient, runtime: Runtime, russian: Journey
) -> None:
    stranger = await create_user(runtime)
    assert await viewer_goals(client, await access_token(runtime, stranger)) == {
        "active": None,
        "next": [],
        "recent": [],
    }


async def test_an_overdue_active_goal_is_never_shown_as_active(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    late = await create_template(runtime, conditions={"target": 3, "periodDays": 1})
    queued = await create_template(runtime)
    overdue = await assign(runtime, user.id, late.id, now=utcnow() - timedelta(days=2))
    waiting = await assign(runtime, user.id, queued.id, now=utcnow() - timedelta(days=2))
    assert (await goal(runtime, overdue.id)).status is UserGoalStatus.ACTIVE  # not yet expired

    goals = await viewer_goals(client, await access_token(runtime, user))
    assert goals["active"] is None
    assert [(g["id"], g["status"]) for g in goals["recent"]] == [
        (gid("UserGoal", overdue.id), "MISSED")
    ]
    assert [g["id"] for g in goals["next"]] == [gid("UserGoal", waiting.id)]


async def test_anonymous_viewer_is_unauthenticated(client: httpx.AsyncClient) -> None:
    body = await gql(client, VIEWER_GOALS)
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED"]


# ---- launch and achievements ------------------------------------------------------------------


async def test_launch_tells_a_user_with_an_unseen_achievement(
    client: httpx.AsyncClient, runtime: Runtime, russian: Journey
) -> None:
    assert await has_unseen(client, russian.token) is True
    stranger = await create_user(runtime)
    assert await has_unseen(client, await access_token(runtime, stranger)) is False


async def test_launch_is_null_for_callers_that_are_not_users(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    anonymous = await gql(client, LAUNCH)
    assert anonymous == {"data": {"launch": {"personalGoals": None}}}
    service = await gql(client, LAUNCH, token=await service_token(runtime))
    assert service == {"data": {"launch": {"personalGoals": None}}}


async def test_achievements_list_the_reached_goal_and_mark_seen_is_idempotent(
    client: httpx.AsyncClient, runtime: Runtime, russian: Journey
) -> None:
    goal_id = gid("UserGoal", russian.done.id)
    [achievement] = await achievements(client, russian.token)
    assert achievement == {
        "goalId": goal_id,
        "title": "Совершите 3 поездки",
        "description": "Rides in comfort count.",
        "progress": {"current": 1, "total": 1},
        "buttonText": "Great",
        "createdAt": achievement["createdAt"],
        "seen": False,
        "goal": {"id": goal_id, "status": "DONE"},
    }
    assert at(achievement["createdAt"]) == russian.b_started + timedelta(minutes=1)

    first = await mark_seen(client, russian.token, [goal_id])
    assert first == {"marked": 1, "hasUnseenAchievements": False, "errors": []}
    assert await has_unseen(client, russian.token) is False
    assert await achievements(client, russian.token) == []
    [seen] = await achievements(client, russian.token, unseen_only=False)
    assert (seen["goalId"], seen["seen"]) == (goal_id, True)

    again = await mark_seen(client, russian.token, [goal_id])
    assert again == {"marked": 0, "hasUnseenAchievements": False, "errors": []}


async def test_mark_seen_ignores_other_users_goals_and_garbage(
    client: httpx.AsyncClient, runtime: Runtime, russian: Journey
) -> None:
    other = await journey(runtime, await create_user(runtime))
    theirs = gid("UserGoal", other.done.id)
    mine = gid("UserGoal", russian.done.id)

    foreign = await mark_seen(client, russian.token, [theirs])
    assert foreign == {"marked": 0, "hasUnseenAchievements": True, "errors": []}
    assert await has_unseen(client, other.token) is True
    assert [a["goalId"] for a in await achievements(client, other.token)] == [theirs]

    garbage = [
        "",
        "not an id",
        str(russian.done.id),  # a raw UUID is not a global id
        gid("Plan", russian.done.id),  # the right UUID under another type
        gid("UserGoal", "not-a-uuid"),
        gid("UserGoal", uuid.uuid4()),
        base64.b64encode(b"\xff\xfe").decode(),
    ]
    ignored = await mark_seen(client, russian.token, garbage)
    assert ignored == {"marked": 0, "hasUnseenAchievements": True, "errors": []}

    mixed = await mark_seen(client, russian.token, [*garbage, theirs, mine, mine])
    assert mixed == {"marked": 1, "hasUnseenAchievements": False, "errors": []}
    assert await has_unseen(client, other.token) is True


async def test_mark_seen_refuses_more_than_100_ids_and_marks_none(
    client: httpx.AsyncClient, runtime: Runtime, russian: Journey
) -> None:
    mine = gid("UserGoal", russian.done.id)
    payload = await mark_seen(client, russian.token, [mine] * 101)
    assert payload["marked"] == 0
    assert payload["hasUnseenAchievements"] is True
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("TOO_MANY_IDS", "goalIds")]
    assert await has_unseen(client, russian.token) is True

    hundred = await mark_seen(client, russian.token, [mine] * 100)
    assert (hundred["marked"], hundred["errors"]) == (1, [])


async def test_achievements_need_a_signed_in_user(client: httpx.AsyncClient) -> None:
    listed = await gql(client, ACHIEVEMENTS, {"unseenOnly": True})
    assert error_codes(listed) == ["UNAUTHENTICATED"]
    marked = await gql(client, MARK_SEEN, {"input": {"goalIds": []}})
    assert error_codes(marked) == ["UNAUTHENTICATED"]


# ---- the progress log -------------------------------------------------------------------------


async def test_the_progress_log_says_why_each_order_counted_or_not_newest_first(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    token = await access_token(runtime, user)
    start = utcnow() - timedelta(hours=5)
    lonely = order(user.id, order_id="o-lonely", completed_at=start - timedelta(hours=1))
    assert (await record_and_process(runtime, lonely, now=start)).reason is (
        ProgressReason.NO_ACTIVE_GOAL
    )
    template = await create_template(runtime)
    user_goal = await assign(runtime, user.id, template.id, now=start)
    comfort = order(user.id, order_id="o-comfort", completed_at=start + timedelta(hours=1))
    econom = order(
        user.id, order_id="o-econom", ride_class="econom", completed_at=start + timedelta(hours=2)
    )
    await record_and_process(runtime, comfort, now=start + timedelta(hours=1, minutes=1))
    await record_and_process(runtime, econom, now=start + timedelta(hours=2, minutes=1))

    log = await progress_log(client, token)
    nodes = [edge["node"] for edge in log["edges"]]
    assert [(n["orderId"], n["reason"], n["counted"]) for n in nodes] == [
        ("o-econom", "WRONG_RIDE_CLASS", False),
        ("o-comfort", "COUNTED", True),
        ("o-lonely", "NO_ACTIVE_GOAL", False),
    ]
    assert [n["goalId"] for n in nodes] == [template.id, template.id, None]
    assert [n["userGoalId"] for n in nodes] == [gid("UserGoal", user_goal.id)] * 2 + [None]
    assert nodes[0]["rideClass"] == "econom"
    assert nodes[1]["price"] == {"amountMinor": 50_000, "currency": "RUB"}
    assert (nodes[1]["orderKind"], nodes[1]["orderStatus"], nodes[1]["paymentMethod"]) == (
        "RIDE",
        "COMPLETE",
        "card",
    )
    assert at(nodes[1]["completedAt"]) == comfort.completed_at
    assert at(nodes[1]["processedAt"]) == start + timedelta(hours=1, minutes=1)
    assert not any(n["reversed"] for n in nodes)
    assert log["pageInfo"]["hasNextPage"] is False
    assert log["pageInfo"]["hasPreviousPage"] is False

    # A cancelled ride gives its count back and says so.
    await record(runtime, replace(comfort, status=OrderStatus.CANCELLED))
    await process(runtime, "o-comfort", user.id)
    after = [edge["node"] for edge in (await progress_log(client, token))["edges"]]
    assert [(n["orderId"], n["reversed"], n["orderStatus"]) for n in after][1] == (
        "o-comfort",
        True,
        "CANCELLED",
    )


async def test_the_progress_log_pages_without_gaps_or_duplicates(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    token = await access_token(runtime, user)
    base = utcnow() - timedelta(hours=3)
    # Seven orders; two pairs are processed at the same instant (the id breaks the tie).
    moments = [base, base + timedelta(minutes=1), base + timedelta(minutes=1)]
    moments += [base + timedelta(minutes=2), base + timedelta(minutes=3)] * 2
    for index, moment in enumerate(moments):
        ride = order(user.id, order_id=f"page-{index}", completed_at=base - timedelta(hours=1))
        await record_and_process(runtime, ride, now=moment)

    everything = await progress_log(client, token)
    all_ids = [edge["node"]["id"] for edge in everything["edges"]]
    assert len(all_ids) == len(set(all_ids)) == 7
    processed = [at(edge["node"]["processedAt"]) for edge in everything["edges"]]
    assert processed == sorted(processed, reverse=True)  # type: ignore[type-var]

    for size in (1, 2, 3, 7):
        paged: list[str] = []
        after: str | None = None
        pages = 0
        while True:
            page = await progress_log(client, token, first=size, after=after)
            pages += 1
            paged += [edge["node"]["id"] for edge in page["edges"]]
            assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
            assert after == page["edges"][-1]["cursor"]
        assert paged == all_ids, size
        assert pages == -(-7 // size), size

    empty = await progress_log(client, token, first=0)
    assert (empty["edges"], empty["pageInfo"]["hasNextPage"]) == ([], True)


def _keyset(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


BAD_CURSORS = {
    "not base64": "%%%",
    "not a cursor": "garbage",
    "an offset cursor of another connection": _keyset("o:3"),
    "not a time": _keyset(f"k:yesterday|{uuid.uuid4()}"),
    "not a uuid": _keyset("k:2026-01-01T00:00:00+00:00|not-a-uuid"),
    "a time without an offset": _keyset(f"k:2026-01-01T00:00:00|{uuid.uuid4()}"),
}


@pytest.mark.parametrize("cursor", BAD_CURSORS.values(), ids=BAD_CURSORS.keys())
async def test_a_bad_cursor_or_page_size_is_bad_user_input(
    client: httpx.AsyncClient, runtime: Runtime, cursor: str
) -> None:
    user = await create_user(runtime)
    token = await access_token(runtime, user)
    await record_and_process(runtime, order(user.id))
    body = await gql(client, PROGRESS_LOG, {"after": cursor}, token=token)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["argument"] == "after"
    for first in (-1, 101):
        body = await gql(client, PROGRESS_LOG, {"first": first}, token=token)
        assert error_codes(body) == ["BAD_USER_INPUT"], body


async def test_a_user_never_sees_another_users_log(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    alice = await create_user(runtime)
    bob = await create_user(runtime)
    for index in range(3):
        await record_and_process(runtime, order(alice.id, order_id=f"alice-{index}"))
    alice_log = await progress_log(client, await access_token(runtime, alice), first=1)
    assert len(alice_log["edges"]) == 1

    bob_token = await access_token(runtime, bob)
    assert (await progress_log(client, bob_token))["edges"] == []
    # Alice's cursor in Bob's hands pages through Bob's log only.
    resumed = await progress_log(client, bob_token, after=alice_log["pageInfo"]["endCursor"])
    assert resumed["edges"] == []


# ---- the wallet -------------------------------------------------------------------------------


async def test_the_wallet_shows_goal_bonuses(
    client: httpx.AsyncClient, runtime: Runtime, russian: Journey
) -> None:
    euros = await create_template(
        runtime,
        conditions={"target": 1, "periodDays": 5},
        bonus={"type": "WALLET", "amountMinor": 1_500, "currency": "EUR"},
    )
    other = await create_user(runtime)
    extra = await assign(runtime, other.id, euros.id)
    await record_and_process(runtime, order(other.id))
    assert await finish(runtime, extra.id)

    body = await gql(client, WALLET, token=russian.token)
    assert "errors" not in body, body
    wallet = body["data"]["viewer"]["wallet"]
    assert wallet["balances"] == [{"amountMinor": 30_000, "currency": "RUB"}]
    [entry] = [edge["node"] for edge in wallet["entries"]["edges"]]
    assert entry["amount"] == {"amountMinor": 30_000, "currency": "RUB"}
    assert (entry["kind"], entry["orderId"]) == ("GOAL_BONUS", None)
    assert at(entry["createdAt"]) == russian.b_started + timedelta(minutes=1)

    theirs = await gql(client, WALLET, token=await access_token(runtime, other))
    assert theirs["data"]["viewer"]["wallet"]["balances"] == [
        {"amountMinor": 1_500, "currency": "EUR"}
    ]

    stranger = await gql(
        client, WALLET, token=await access_token(runtime, await create_user(runtime))
    )
    assert stranger["data"]["viewer"]["wallet"] == {
        "balances": [],
        "entries": {"edges": [], "pageInfo": {"hasNextPage": False, "hasPreviousPage": False}},
    }


async def test_the_wallet_sums_per_currency_and_pages_entries(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await create_user(runtime)
    token = await access_token(runtime, user)
    bonuses = [(30_000, "RUB"), (1_500, "EUR"), (20_000, "RUB")]
    for amount, currency in bonuses:
        template = await create_template(
            runtime,
            conditions={"target": 1, "periodDays": 5},
            bonus={"type": "WALLET", "amountMinor": amount, "currency": currency},
        )
        user_goal = await assign(runtime, user.id, template.id)
        await record_and_process(runtime, order(user.id))
        assert await finish(runtime, user_goal.id)

    first = await gql(client, WALLET, {"first": 2}, token=token)
    wallet = first["data"]["viewer"]["wallet"]
    assert wallet["balances"] == [
        {"amountMinor": 1_500, "currency": "EUR"},
        {"amountMinor": 50_000, "currency": "RUB"},
    ]
    assert [e["node"]["amount"]["amountMinor"] for e in wallet["entries"]["edges"]] == [
        20_000,
        1_500,
    ]
    assert wallet["entries"]["pageInfo"]["hasNextPage"] is True


# ---- node refetch -----------------------------------------------------------------------------


async def test_a_user_goal_node_is_visible_to_its_owner_and_admins_only(
    client: httpx.AsyncClient, runtime: Runtime, russian: Journey
) -> None:
    goal_id = gid("UserGoal", russian.active.id)
    expected = {
        "id": goal_id,
        "goalId": russian.active.goal_id,
        "status": "ACTIVE",
        "title": "Три ночные поездки",
        "progress": {"current": 1, "total": 3},
    }
    mine = await gql(client, NODE, {"id": goal_id}, token=russian.token)
    assert mine == {"data": {"node": expected}}

    admin = await create_user(runtime, roles=(Role.USER, Role.ADMIN))
    as_admin = await gql(client, NODE, {"id": goal_id}, token=await access_token(runtime, admin))
    assert as_admin == {"data": {"node": {**expected, "title": "Three night rides"}}}

    stranger = await create_user(runtime)
    theirs = await gql(client, NODE, {"id": goal_id}, token=await access_token(runtime, stranger))
    assert theirs == {"data": {"node": None}}
    assert await gql(client, NODE, {"id": goal_id}) == {"data": {"node": None}}
    forged = await gql(client, NODE, {"id": gid("UserGoal", "not-a-uuid")}, token=russian.token)
    assert forged == {"data": {"node": None}}
