"""In-app goal notifications of every kind (both backends): read and acknowledged by the
owner only."""

from __future__ import annotations

from datetime import timedelta

import httpx

from app.models.base import utcnow
from app.runtime import Runtime
from app.services.goals.assignment import Assignment, assign_goal
from app.services.goals.expiry import remind_due
from tests.factories.goals import create_template
from tests.factories.identity import access_token, create_user
from tests.helpers import gql

NOTIFICATIONS = """
query N($unseenOnly: Boolean!) {
  viewer { goalNotifications(unseenOnly: $unseenOnly) { id kind seen goal { goalId } } }
}"""
MARK = """
mutation M($ids: [ID!]!) {
  goalNotificationsMarkSeen(input: {ids: $ids}) { marked errors { code field } }
}"""


async def test_reminders_and_assignments_are_listed_and_acknowledged(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    user = await create_user(runtime)
    other = await create_user(runtime)
    template = await create_template(runtime, conditions={"target": 3, "periodDays": 1})
    async with runtime.session_factory() as session, session.begin():
        for owner in (user, other):
            await assign_goal(
                session, Assignment(owner.id, template.id), actor="test", now=utcnow(), notify=True
            )
    async with runtime.session_factory() as session, session.begin():
        assert (
            await remind_due(
                session, now=utcnow() + timedelta(hours=1), before=timedelta(days=1), batch_size=10
            )
            == 2
        )
    token = await access_token(runtime, user)
    other_token = await access_token(runtime, other)

    listed = (await gql(client, NOTIFICATIONS, {"unseenOnly": True}, token=token))["data"]
    items = listed["viewer"]["goalNotifications"]
    assert sorted(i["kind"] for i in items) == ["ASSIGNED", "REMINDER"]
    assert {i["goal"]["goalId"] for i in items} == {template.id}
    other_items = (await gql(client, NOTIFICATIONS, {"unseenOnly": True}, token=other_token))[
        "data"
    ]["viewer"]["goalNotifications"]

    # The other user's ids and garbage are ignored; the caller's own are marked once.
    ids = [i["id"] for i in items]
    foreign = [i["id"] for i in other_items]
    first = await gql(client, MARK, {"ids": [*ids, *foreign, "garbage"]}, token=token)
    again = await gql(client, MARK, {"ids": ids}, token=token)
    assert first["data"]["goalNotificationsMarkSeen"] == {"marked": 2, "errors": []}
    assert again["data"]["goalNotificationsMarkSeen"]["marked"] == 0
    unseen = await gql(client, NOTIFICATIONS, {"unseenOnly": True}, token=token)
    assert unseen["data"]["viewer"]["goalNotifications"] == []
    everything = await gql(client, NOTIFICATIONS, {"unseenOnly": False}, token=token)
    assert [i["seen"] for i in everything["data"]["viewer"]["goalNotifications"]] == [True, True]
    still = await gql(client, NOTIFICATIONS, {"unseenOnly": True}, token=other_token)
    assert len(still["data"]["viewer"]["goalNotifications"]) == 2


async def test_too_many_ids_are_refused(runtime: Runtime, client: httpx.AsyncClient) -> None:
    token = await access_token(runtime, await create_user(runtime))
    body = await gql(client, MARK, {"ids": [f"x{i}" for i in range(101)]}, token=token)
    assert body["data"]["goalNotificationsMarkSeen"]["errors"] == [
        {"code": "TOO_MANY_IDS", "field": "ids"}
    ]
