"""Goal templates, admin API over HTTP: create, update, archive, list, find, audit and role checks
(both backends)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from strawberry.relay import to_base64

from app.models.base import utcnow
from app.models.goals import UserGoal
from app.models.identity import AuditLog, Role
from app.runtime import Runtime
from app.services.goals.codes import GoalErrorCode
from schema.schema import build_schema
from tests.conftest import test_settings as make_settings
from tests.factories.identity import access_token, create_user, service_token
from tests.helpers import error_codes, gql, row_counts

ERRORS = "errors { code field message }"
TEMPLATE_FIELDS = """
id slug status defaultLocale title description details buttonText conditions bonus target
bonusType createdBy updatedBy createdAt updatedAt
"""
CREATE = f"""
mutation Create($input: GoalTemplateCreateInput!) {{
  goalTemplateCreate(input: $input) {{ template {{ {TEMPLATE_FIELDS} }} {ERRORS} }}
}}
"""
UPDATE = f"""
mutation Update($input: GoalTemplateUpdateInput!) {{
  goalTemplateUpdate(input: $input) {{ template {{ {TEMPLATE_FIELDS} }} {ERRORS} }}
}}
"""
ARCHIVE = f"""
mutation Archive($input: GoalTemplateArchiveInput!) {{
  goalTemplateArchive(input: $input) {{ template {{ slug status updatedBy }} {ERRORS} }}
}}
"""
UNARCHIVE = f"""
mutation Unarchive($input: GoalTemplateArchiveInput!) {{
  goalTemplateUnarchive(input: $input) {{ template {{ slug status }} {ERRORS} }}
}}
"""
TEMPLATES = """
query Templates($status: GoalTemplateStatus, $first: Int, $after: String) {
  goalTemplates(status: $status, first: $first, after: $after) {
    edges { cursor node { slug status } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
TEMPLATE = f"""
query Template($id: String!) {{ goalTemplate(id: $id) {{ {TEMPLATE_FIELDS} }} }}
"""
NODE = """
query Node($id: ID!) { node(id: $id) { id ... on GoalTemplate { slug status } } }
"""

CONDITIONS = {"target": 5, "periodDays": 5, "rideClasses": ["comfort"]}
BONUS = {
    "type": "PROMOCODE",
    "kind": "AMOUNT",
    "value": 30000,
    "currency": "RUB",
    "validityDays": 30,
}
CANONICAL_CONDITIONS = {
    "rideClasses": ["comfort"],
    "target": 5,
    "periodDays": 5,
    "timeWindow": None,
    "paymentMethods": [],
    "minPrice": None,
    "orderKinds": ["RIDE"],
}


def template_input(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "comfort-5",
        "title": {"en": "Take 5 Comfort rides", "ru": "Совершите 5 поездок в Комфорте"},
        "conditions": CONDITIONS,
        "bonus": BONUS,
    } | overrides


class Admin:
    """An admin calling the API."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client, self.token = client, token

    async def call(self, document: str, field: str, data: dict[str, Any]) -> dict[str, Any]:
        body = await gql(self.client, document, {"input": data}, token=self.token)
        assert "errors" not in body, body
        payload: dict[str, Any] = body["data"][field]
        return payload

    async def ok(self, document: str, field: str, data: dict[str, Any]) -> dict[str, Any]:
        payload = await self.call(document, field, data)
        assert payload["errors"] == [], payload
        template: dict[str, Any] = payload["template"]
        return template

    async def create(self, **overrides: Any) -> dict[str, Any]:
        return await self.ok(CREATE, "goalTemplateCreate", template_input(**overrides))

    async def query(self, document: str, **variables: Any) -> dict[str, Any]:
        body = await gql(self.client, document, variables, token=self.token)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
async def admin(client: httpx.AsyncClient, runtime: Runtime) -> Admin:
    user = await create_user(runtime, roles=(Role.USER, Role.ADMIN))
    return Admin(client, await access_token(runtime, user))


async def audit_rows(runtime: Runtime) -> list[tuple[str, str, str]]:
    async with runtime.session_factory() as session:
        rows = await session.execute(
            select(AuditLog.action, AuditLog.target, AuditLog.reason)
            .where(AuditLog.action.like("goal_template.%"))
            .order_by(AuditLog.created_at)
        )
        return [(action, target, reason) for action, target, reason in rows.all()]


def test_the_api_error_codes_are_the_service_codes() -> None:
    api_enum = build_schema(make_settings()).as_str().split("enum GoalAdminErrorCode {")[1]
    api_codes = set(api_enum.split("}")[0].split())
    assert api_codes == {code.name for code in GoalErrorCode}


async def test_create(admin: Admin, runtime: Runtime) -> None:
    created = await admin.create(
        description={"en": "Five rides,\nfive days", "ru": "Пять поездок"},
        details={"en": ["Comfort only", "Any payment method"]},
        reason="spring campaign",
    )
    assert created["id"] == to_base64("GoalTemplate", "comfort-5")
    assert (created["slug"], created["status"], created["defaultLocale"]) == (
        "comfort-5",
        "ACTIVE",
        "en",
    )
    assert created["title"]["ru"] == "Совершите 5 поездок в Комфорте"
    assert created["description"]["en"] == "Five rides,\nfive days"
    assert created["details"] == {"en": ["Comfort only", "Any payment method"]}
    assert created["buttonText"] == {"en": "OK"}  # the default
    assert created["conditions"] == CANONICAL_CONDITIONS
    assert created["bonus"] == BONUS | {"rideClasses": []}
    assert (created["target"], created["bonusType"]) == (5, "PROMOCODE")
    assert created["createdBy"].startswith("user:") and created["updatedBy"] == created["createdBy"]

    minimal = await admin.create(
        id="night-3",
        defaultLocale="ru",
        title={"ru": "Три ночные поездки"},
        buttonText={"ru": "Понятно"},
        conditions={
            "target": 3,
            "startsAt": (utcnow() + timedelta(days=1)).isoformat(),
            "endsAt": (utcnow() + timedelta(days=8)).isoformat(),
            "timeWindow": {"start": "22:00", "end": "06:00"},
        },
        bonus={"type": "CASHBACK", "percent": 10, "days": 14},
    )
    assert (minimal["description"], minimal["details"]) == ({}, {})
    assert minimal["buttonText"] == {"ru": "Понятно"} and minimal["bonusType"] == "CASHBACK"
    assert minimal["conditions"]["timeWindow"] == {"start": "22:00", "end": "06:00"}
    assert await audit_rows(runtime) == [
        ("goal_template.create", "goal_template:comfort-5", "spring campaign"),
        ("goal_template.create", "goal_template:night-3", ""),
    ]


def _bad_inputs() -> list[tuple[dict[str, Any], str, str]]:
    later, sooner = utcnow() + timedelta(days=9), utcnow() + timedelta(days=2)
    past, long_ago = utcnow() - timedelta(days=1), utcnow() - timedelta(days=9)

    def conditions(**changes: Any) -> dict[str, Any]:
        return {"conditions": CONDITIONS | changes}

    def bonus(value: Any) -> dict[str, Any]:
        return {"bonus": value}

    cashback = {"type": "CASHBACK", "days": 7}
    return [
        ({"id": "Comfort-5"}, "INVALID_ID", "id"),
        ({"id": "-comfort"}, "INVALID_ID", "id"),
        ({"id": "comfort 5"}, "INVALID_ID", "id"),
        ({"id": ""}, "INVALID_ID", "id"),
        ({"id": "a" * 65}, "INVALID_ID", "id"),
        ({"id": "taken"}, "TEMPLATE_EXISTS", "id"),
        ({"title": {"ru": "Поездки"}}, "INVALID_TEXT", "title.en"),
        ({"defaultLocale": "de"}, "INVALID_TEXT", "title.de"),
        ({"defaultLocale": "english"}, "INVALID_TEXT", "defaultLocale"),
        ({"title": {"en": "x" * 121}}, "INVALID_TEXT", "title.en"),
        ({"title": {"en": "ok", "xx-y": "bad"}}, "INVALID_TEXT", "title.xx-y"),
        ({"description": {"ru": "Только по-русски"}}, "INVALID_TEXT", "description.en"),
        ({"details": {"en": ["line"] * 11}}, "INVALID_TEXT", "details.en"),
        ({"details": {"en": ["ok", "x" * 201]}}, "INVALID_TEXT", "details.en.1"),
        ({"buttonText": {"en": "x" * 41}}, "INVALID_TEXT", "buttonText.en"),
        ({"reason": "x" * 501}, "INVALID_REASON", "reason"),
        (
            conditions(periodDays=None, startsAt=later.isoformat(), endsAt=sooner.isoformat()),
            "INVALID_PERIOD",
            "conditions.endsAt",
        ),
        (
            conditions(periodDays=None, startsAt=long_ago.isoformat(), endsAt=past.isoformat()),
            "INVALID_PERIOD",
            "conditions.endsAt",  # over already
        ),
        (
            conditions(periodDays=None, startsAt=sooner.isoformat(), endsAt=later.isoformat()[:-6]),
            "INVALID_PERIOD",
            "conditions.endsAt",  # no offset
        ),
        (
            conditions(timeWindow={"start": "25:00", "end": "06:00"}),
            "INVALID_TIME_WINDOW",
            "conditions.timeWindow.start",
        ),
        (conditions(target=0), "INVALID_TARGET", "conditions.target"),
        (conditions(target=-3), "INVALID_TARGET", "conditions.target"),
        (conditions(rideClasses=["rocket"]), "UNKNOWN_RIDE_CLASS", "conditions.rideClasses"),
        (conditions(colour="red"), "INVALID_CONDITIONS", "conditions.colour"),
        ({"conditions": "five rides"}, "INVALID_CONDITIONS", "conditions"),
        (bonus({"type": "GIFT"}), "UNKNOWN_BONUS_TYPE", "bonus.type"),
        (bonus(cashback | {"percent": 0}), "INVALID_BONUS", "bonus.percent"),
        (bonus(cashback | {"percent": 101}), "INVALID_BONUS", "bonus.percent"),
        (bonus(BONUS | {"kind": "PERCENT", "value": 0}), "INVALID_BONUS", "bonus.value"),
        (
            bonus(BONUS | {"kind": "PERCENT", "value": 101, "currency": None}),
            "INVALID_BONUS",
            "bonus.value",
        ),
        (bonus([]), "INVALID_BONUS", "bonus"),
    ]


async def test_bad_input_is_refused_naming_the_field(admin: Admin, runtime: Runtime) -> None:
    await admin.create(id="taken")
    before = await row_counts(runtime)
    for overrides, code, field in _bad_inputs():
        payload = await admin.call(CREATE, "goalTemplateCreate", template_input(**overrides))
        assert payload["template"] is None, overrides
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)], overrides
        assert payload["errors"][0]["message"]
    assert await row_counts(runtime) == before


async def _assign(runtime: Runtime, template: dict[str, Any]) -> UserGoal:
    """A user goal as the assignment service makes it: conditions and bonus snapshotted."""
    user = await create_user(runtime)
    async with runtime.session_factory() as session, session.begin():
        goal = UserGoal(
            user_id=user.id,
            goal_id=template["slug"],
            position=1,
            conditions=template["conditions"],
            bonus=template["bonus"],
            target=template["target"],
            assigned_by="test",
        )
        session.add(goal)
    return goal


async def test_update(admin: Admin, runtime: Runtime) -> None:
    created = await admin.create()
    assigned = await _assign(runtime, created)
    change = {"id": "comfort-5", "reason": "more rides"}
    updated = await admin.ok(
        UPDATE,
        "goalTemplateUpdate",
        change
        | {
            "title": {"en": "Take 7 rides", "ru": "Совершите 7 поездок"},
            "conditions": {"target": 7, "periodDays": 10},
            "bonus": {"type": "WALLET", "amountMinor": 50000, "currency": "RUB"},
            "details": {"en": ["Any class"]},
        },
    )
    assert updated["title"] == {"en": "Take 7 rides", "ru": "Совершите 7 поездок"}
    assert (updated["target"], updated["bonusType"]) == (7, "WALLET")
    assert updated["conditions"]["rideClasses"] == [] and updated["details"] == {
        "en": ["Any class"]
    }
    assert (updated["buttonText"], updated["createdAt"]) == (
        created["buttonText"],
        created["createdAt"],
    )
    assert updated["updatedAt"] >= created["updatedAt"]
    async with runtime.session_factory() as session:  # the assigned goal keeps its promise
        goal = await session.get(UserGoal, assigned.id)
        assert goal is not None
        assert (goal.conditions, goal.bonus, goal.target) == (
            created["conditions"],
            BONUS | {"rideClasses": []},
            5,
        )

    # the default locale may change when every text has it; the global id is accepted too
    relocated = await admin.ok(
        UPDATE,
        "goalTemplateUpdate",
        {"id": created["id"], "defaultLocale": "ru", "buttonText": {"ru": "Ок"}, "details": {}},
    )
    assert (relocated["defaultLocale"], relocated["buttonText"]) == ("ru", {"ru": "Ок"})
    same = await admin.ok(UPDATE, "goalTemplateUpdate", {"id": "comfort-5", "title": None})
    assert same["updatedAt"] == relocated["updatedAt"]  # nothing changed: not audited
    assert [row[0] for row in await audit_rows(runtime)] == [
        "goal_template.create",
        "goal_template.update",
        "goal_template.update",
    ]


async def test_refused_updates_change_nothing(admin: Admin, runtime: Runtime) -> None:
    await admin.create()
    before = await row_counts(runtime)
    stored = (await admin.query(TEMPLATE, id="comfort-5"))["goalTemplate"]
    refusals = [
        ({"defaultLocale": "de"}, "INVALID_TEXT", "title.de"),
        ({"title": {"ru": "Только по-русски"}}, "INVALID_TEXT", "title.en"),
        ({"title": {}}, "INVALID_TEXT", "title.en"),
        ({"conditions": {"target": 0, "periodDays": 1}}, "INVALID_TARGET", "conditions.target"),
        (
            {"conditions": CONDITIONS | {"timeWindow": {"start": "25:00", "end": "01:00"}}},
            "INVALID_TIME_WINDOW",
            "conditions.timeWindow.start",
        ),
        (
            {"bonus": {"type": "CASHBACK", "percent": 101, "days": 3}},
            "INVALID_BONUS",
            "bonus.percent",
        ),
        ({"title": {"en": "New"}, "bonus": {"type": "GIFT"}}, "UNKNOWN_BONUS_TYPE", "bonus.type"),
        ({"id": "missing"}, "TEMPLATE_NOT_FOUND", "id"),
        ({"id": to_base64("Promocode", "comfort-5")}, "TEMPLATE_NOT_FOUND", "id"),
    ]
    for change, code, field in refusals:
        payload = await admin.call(UPDATE, "goalTemplateUpdate", {"id": "comfort-5"} | change)
        assert payload["template"] is None, change
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)], change
    assert await row_counts(runtime) == before
    assert (await admin.query(TEMPLATE, id="comfort-5"))["goalTemplate"] == stored


async def test_archive(admin: Admin, runtime: Runtime) -> None:
    await admin.create()
    await admin.create(id="other")
    for _ in range(2):  # idempotent: audited once
        archived = await admin.ok(ARCHIVE, "goalTemplateArchive", {"id": "comfort-5"})
        assert archived["status"] == "ARCHIVED"
    listed = await admin.query(TEMPLATES, status="ARCHIVED")
    assert [e["node"]["slug"] for e in listed["goalTemplates"]["edges"]] == ["comfort-5"]
    active = await admin.query(TEMPLATES, status="ACTIVE")
    assert [e["node"]["slug"] for e in active["goalTemplates"]["edges"]] == ["other"]
    everything = await admin.query(TEMPLATES)
    assert len(everything["goalTemplates"]["edges"]) == 2

    duplicate = await admin.call(CREATE, "goalTemplateCreate", template_input())
    assert [e["code"] for e in duplicate["errors"]] == ["TEMPLATE_EXISTS"]  # the id stays taken
    edited = await admin.ok(
        UPDATE, "goalTemplateUpdate", {"id": "comfort-5", "title": {"en": "Fixed"}}
    )
    assert edited["title"] == {"en": "Fixed"} and edited["status"] == "ARCHIVED"

    restored = await admin.ok(UNARCHIVE, "goalTemplateUnarchive", {"id": "comfort-5"})
    assert restored["status"] == "ACTIVE"
    missing = await admin.call(ARCHIVE, "goalTemplateArchive", {"id": "nope"})
    assert [(e["code"], e["field"]) for e in missing["errors"]] == [("TEMPLATE_NOT_FOUND", "id")]
    actions = [row[0] for row in await audit_rows(runtime)]
    assert actions.count("goal_template.archive") == 1
    assert actions.count("goal_template.unarchive") == 1


async def test_list_pages_by_slug(admin: Admin) -> None:
    slugs = ["a-1", "a-2", "b-1", "c-1", "c-2"]
    for slug in reversed(slugs):
        await admin.create(id=slug)
    seen: list[str] = []
    after = None
    for expected_next in (True, True, False):
        page = (await admin.query(TEMPLATES, first=2, after=after))["goalTemplates"]
        seen += [edge["node"]["slug"] for edge in page["edges"]]
        assert page["pageInfo"]["hasNextPage"] is expected_next
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]
    assert seen == slugs
    empty = (await admin.query(TEMPLATES, first=0))["goalTemplates"]
    assert empty["edges"] == [] and empty["pageInfo"]["hasNextPage"] is True
    for variables in ({"first": 101}, {"first": -1}, {"after": "not a cursor"}):
        body = await gql(admin.client, TEMPLATES, variables, token=admin.token)
        assert error_codes(body) == ["BAD_USER_INPUT"], variables


async def test_find_by_slug_or_global_id(admin: Admin) -> None:
    created = await admin.create()
    by_slug = (await admin.query(TEMPLATE, id="comfort-5"))["goalTemplate"]
    by_gid = (await admin.query(TEMPLATE, id=created["id"]))["goalTemplate"]
    assert by_slug == by_gid == created
    assert (await admin.query(TEMPLATE, id="missing"))["goalTemplate"] is None
    node = (await admin.query(NODE, id=created["id"]))["node"]
    assert node == {"id": created["id"], "slug": "comfort-5", "status": "ACTIVE"}
    ghost = await admin.query(NODE, id=to_base64("GoalTemplate", "missing"))
    assert ghost["node"] is None


async def test_only_admins(admin: Admin, client: httpx.AsyncClient, runtime: Runtime) -> None:
    created = await admin.create()
    user = await create_user(runtime)
    calls = [
        (CREATE, {"input": template_input(id="new-one")}),
        (UPDATE, {"input": {"id": "comfort-5", "title": {"en": "Hacked"}}}),
        (ARCHIVE, {"input": {"id": "comfort-5"}}),
        (UNARCHIVE, {"input": {"id": "comfort-5"}}),
        (TEMPLATES, {}),
        (TEMPLATE, {"id": "comfort-5"}),
    ]
    callers = [
        ("UNAUTHENTICATED", None),
        ("FORBIDDEN", await access_token(runtime, user)),
        ("FORBIDDEN", await service_token(runtime)),
    ]
    before = await row_counts(runtime)
    for expected, token in callers:
        for document, variables in calls:
            body = await gql(client, document, variables, token=token)
            assert error_codes(body) == [expected], (document, body)
            assert not any((body["data"] or {}).values()), body  # nothing leaks
        hidden = await gql(client, NODE, {"id": created["id"]}, token=token)
        assert hidden == {"data": {"node": None}}  # node(id:) hides, never refuses
    assert await row_counts(runtime) == before
    stored = (await admin.query(TEMPLATE, id="comfort-5"))["goalTemplate"]
    assert stored == created
