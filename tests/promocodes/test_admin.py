"""Promocodes, admin API over HTTP: plans, create/update/deactivate, bulk generation, grants,
admin-apply, stats, the attempt log and role checks (both backends)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from strawberry.relay import from_base64, to_base64

from app.models.base import utcnow
from app.models.identity import AuditLog, Role, User, UserStatus
from app.models.promocodes import Promocode, promocode_plans
from app.runtime import Runtime
from app.services.identity import groups as group_service
from app.services.promocodes import purchases as purchase_service
from app.services.promocodes.attempts import Caller, PromocodeRejected
from app.services.promocodes.errors import PurchaseErrorCode
from tests.factories.identity import access_token, create_user, service_token
from tests.helpers import error_codes, gql, row_counts

ERRORS = "errors { code field message }"
CODE_FIELDS = """
id code kind value currency amount { amountMinor currency } description validFrom validUntil
maxUses maxUsesPerUser uses audience eligibility trialDays discountedCycles active batchId
createdBy plans { slug }
"""
PLAN_CREATE = f"""
mutation PlanCreate($input: PlanCreateInput!) {{
  planCreate(input: $input) {{ plan {{ id slug price {{ amountMinor currency }} }} {ERRORS} }}
}}
"""
CREATE = f"""
mutation Create($input: PromocodeCreateInput!) {{
  promocodeCreate(input: $input) {{ promocode {{ {CODE_FIELDS} }} {ERRORS} }}
}}
"""
UPDATE = f"""
mutation Update($input: PromocodeUpdateInput!) {{
  promocodeUpdate(input: $input) {{ promocode {{ {CODE_FIELDS} }} {ERRORS} }}
}}
"""
DEACTIVATE = f"""
mutation Deactivate($input: PromocodeDeactivateInput!) {{
  promocodeDeactivate(input: $input) {{ promocode {{ id active }} {ERRORS} }}
}}
"""
GENERATE = f"""
mutation Generate($input: PromocodeGenerateInput!) {{
  promocodeGenerate(input: $input) {{ batchId count sample {ERRORS} }}
}}
"""
GRANT = f"""
mutation Grant($input: PromocodeGrantInput!) {{
  promocodeGrant(input: $input) {{
    promocode {{ code }} outcomes {{ grantee id status }} granted {ERRORS}
  }}
}}
"""
REVOKE = f"""
mutation Revoke($input: PromocodeGrantInput!) {{
  promocodeRevokeGrant(input: $input) {{ promocode {{ code }} revoked {ERRORS} }}
}}
"""
APPLY = f"""
mutation Apply($input: PromocodeApplyInput!) {{
  promocodeApply(input: $input) {{
    outcomes {{ userId status rejection purchase {{ id status finalPrice {{ amountMinor }} }} }}
    applied {ERRORS}
  }}
}}
"""
PROMOCODE = """
query Promocode($id: ID!) {
  promocode(id: $id) {
    code uses
    stats {
      uses maxUses remaining reserved confirmed released userGrants groupGrants
      releasedByReason { reason count } rejections { reason count }
    }
    grants { edges { node { id grantedBy user { id } group { id name } } } }
    purchases { edges { node { id status plan { slug } promocode } } }
  }
}
"""
PROMOCODES = """
query Promocodes($active: Boolean, $search: String, $batchId: String, $first: Int, $after: String) {
  promocodes(active: $active, search: $search, batchId: $batchId, first: $first, after: $after) {
    edges { node { code active } } pageInfo { hasNextPage endCursor }
  }
}
"""
ATTEMPTS = """
query Attempts($userId: ID, $promocodeId: ID, $reason: PromocodeRejection) {
  promocodeAttempts(userId: $userId, promocodeId: $promocodeId, reason: $reason) {
    edges { node {
      id user { id } codeEntered promocode { code } plan { slug } operation reason ip createdAt
    } }
  }
}
"""
NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on Promocode { code } ... on PromocodeAttempt { reason } }
}
"""


def gid(type_name: str, value: object) -> str:
    return to_base64(type_name, str(value))


def node_uuid(global_id: str) -> uuid.UUID:
    return uuid.UUID(from_base64(global_id)[1])


class Admin:
    """An admin calling the API, with two RUB plans: basic (299.00) and premium (599.00)."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client, self.token = client, token
        self.plans: dict[str, str] = {}

    async def call(self, document: str, field: str, data: dict[str, Any]) -> dict[str, Any]:
        body = await gql(self.client, document, {"input": data}, token=self.token)
        assert "errors" not in body, body
        payload: dict[str, Any] = body["data"][field]
        return payload

    async def ok(self, document: str, field: str, data: dict[str, Any]) -> dict[str, Any]:
        payload = await self.call(document, field, data)
        assert payload["errors"] == [], payload
        return payload

    async def create(self, **data: Any) -> dict[str, Any]:
        payload = await self.ok(CREATE, "promocodeCreate", {"kind": "PERCENT", "value": 10} | data)
        promocode: dict[str, Any] = payload["promocode"]
        return promocode

    async def query(self, document: str, **variables: Any) -> dict[str, Any]:
        body = await gql(self.client, document, variables, token=self.token)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
async def admin(client: httpx.AsyncClient, runtime: Runtime) -> Admin:
    user = await create_user(runtime, roles=(Role.USER, Role.ADMIN))
    api = Admin(client, await access_token(runtime, user))
    for slug, price in (("basic", 29900), ("premium", 59900)):
        data = {"slug": slug, "name": slug.title(), "priceMinor": price, "currency": "rub"}
        payload = await api.ok(PLAN_CREATE, "planCreate", data | {"durationDays": 30})
        assert payload["plan"]["price"] == {"amountMinor": price, "currency": "RUB"}
        api.plans[slug] = payload["plan"]["id"]
    return api


async def audit_actions(runtime: Runtime) -> list[str]:
    async with runtime.session_factory() as session:
        return list(await session.scalars(select(AuditLog.action).order_by(AuditLog.created_at)))


async def test_create_each_kind(admin: Admin, runtime: Runtime) -> None:
    start, end = utcnow() + timedelta(days=1), utcnow() + timedelta(days=30)
    fixed = await admin.create(
        code="  fixed-99 ",
        kind="FIXED_PRICE",
        value=9900,
        currency="RUB",
        validFrom=start.isoformat(),
        validUntil=end.isoformat(),
        maxUses=100,
        maxUsesPerUser=2,
        planIds=[admin.plans["basic"]],
        audience="GRANTED",
        eligibility="NEVER_SUBSCRIBED",
        trialDays=7,
        discountedCycles=3,
        description="Launch offer",
        reason="marketing",
    )
    assert fixed["code"] == "FIXED-99"
    assert fixed["amount"] == {"amountMinor": 9900, "currency": "RUB"}
    assert (fixed["maxUses"], fixed["maxUsesPerUser"], fixed["trialDays"]) == (100, 2, 7)
    assert (fixed["audience"], fixed["eligibility"]) == ("GRANTED", "NEVER_SUBSCRIBED")
    assert fixed["plans"] == [{"slug": "basic"}] and fixed["createdBy"].startswith("user:")
    free = await admin.create(code="TRIAL", kind="FREE", value=0, trialDays=14)
    percent = await admin.create(code="P20", kind="PERCENT", value=20)
    amount = await admin.create(code="A50", kind="AMOUNT", value=5000, currency="RUB")
    assert (free["kind"], free["currency"], free["plans"]) == ("FREE", None, None)
    assert (percent["value"], percent["amount"], percent["maxUses"]) == (20, None, None)
    assert amount["amount"] == {"amountMinor": 5000, "currency": "RUB"}
    assert (await audit_actions(runtime)).count("promocode.create") == 4


async def test_bad_input_is_refused_naming_the_field(admin: Admin, runtime: Runtime) -> None:
    await admin.create(code="TAKEN")
    soon, later = utcnow() + timedelta(days=2), utcnow() + timedelta(days=1)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"kind": "PERCENT", "value": 0}, "INVALID_VALUE", "value"),
        ({"kind": "PERCENT", "value": 101}, "INVALID_VALUE", "value"),
        ({"kind": "AMOUNT", "value": -100, "currency": "RUB"}, "INVALID_VALUE", "value"),
        (
            {"kind": "FIXED_PRICE", "value": 30000, "currency": "RUB"},
            "INVALID_VALUE",
            "value",
        ),
        ({"kind": "PERCENT", "value": 5, "currency": "RUB"}, "INVALID_CURRENCY", "currency"),
        (
            {"validFrom": soon.isoformat(), "validUntil": later.isoformat()},
            "INVALID_PERIOD",
            "validUntil",
        ),
        ({"maxUses": 0}, "INVALID_LIMIT", "maxUses"),
        ({"planIds": [gid("Plan", uuid.uuid4())]}, "UNKNOWN_PLAN", "planIds"),
        ({"planIds": ["not-a-global-id"]}, "UNKNOWN_PLAN", "planIds"),
        ({"code": ""}, "INVALID_CODE", "code"),
        ({"code": "A" * 65}, "INVALID_CODE", "code"),
        ({"code": "BAD\x00CODE"}, "INVALID_CODE", "code"),
        ({"code": "taken"}, "CODE_TAKEN", "code"),
        ({"reason": "x" * 501}, "INVALID_REASON", "reason"),
    ]
    before = await row_counts(runtime)
    for overrides, code, field in cases:
        data = {"code": "NEWCODE", "kind": "PERCENT", "value": 10} | overrides
        payload = await admin.call(CREATE, "promocodeCreate", data)
        assert payload["promocode"] is None
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)], overrides
    assert await row_counts(runtime) == before


async def test_update_and_deactivate_are_audited(admin: Admin, runtime: Runtime) -> None:
    created = await admin.create(
        code="EDIT", maxUses=5, validUntil=(utcnow() + timedelta(days=9)).isoformat()
    )
    change = {"promocodeId": created["id"], "reason": "extend"}
    payload = await admin.ok(
        UPDATE,
        "promocodeUpdate",
        change
        | {
            "maxUses": None,
            "validUntil": None,
            "description": "More",
            "planIds": [admin.plans["premium"]],
        },
    )
    updated = payload["promocode"]
    assert (updated["maxUses"], updated["validUntil"], updated["description"]) == (
        None,
        None,
        "More",
    )
    assert updated["plans"] == [{"slug": "premium"}] and updated["value"] == 10

    before = await row_counts(runtime)
    refused = await admin.call(UPDATE, "promocodeUpdate", change | {"maxUsesPerUser": 0})
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [
        ("INVALID_LIMIT", "maxUsesPerUser")
    ]
    missing = await admin.call(
        UPDATE, "promocodeUpdate", {"promocodeId": gid("Promocode", uuid.uuid4())}
    )
    assert [e["code"] for e in missing["errors"]] == ["NOT_FOUND"]
    assert await row_counts(runtime) == before

    for _ in range(2):  # idempotent: audited once
        done = await admin.ok(DEACTIVATE, "promocodeDeactivate", change)
        assert done["promocode"]["active"] is False
    actions = await audit_actions(runtime)
    assert actions.count("promocode.update") == 1 and actions.count("promocode.deactivate") == 1
    listed = await admin.query(PROMOCODES, active=False)
    assert [edge["node"]["code"] for edge in listed["promocodes"]["edges"]] == ["EDIT"]


async def test_generate_codes_in_bulk(admin: Admin, runtime: Runtime) -> None:
    data = {"count": 500, "length": 8, "prefix": "spring-", "kind": "PERCENT", "value": 15}
    payload = await admin.ok(
        GENERATE, "promocodeGenerate", data | {"planIds": [admin.plans["basic"]]}
    )
    assert payload["count"] == 500 and len(payload["sample"]) == 100
    assert all(code.startswith("SPRING-") and len(code) == 15 for code in payload["sample"])
    batch = uuid.UUID(payload["batchId"])
    async with runtime.session_factory() as session:
        stored = list(await session.scalars(select(Promocode).where(Promocode.batch_id == batch)))
        plan_rows = await session.scalar(select(func.count()).select_from(promocode_plans))
    assert len({p.code for p in stored}) == 500 and set(payload["sample"]) <= {
        p.code for p in stored
    }
    assert all(p.max_uses == 1 and p.value == 15 for p in stored) and plan_rows == 500
    page = await admin.query(PROMOCODES, batchId=payload["batchId"], first=100)
    assert len(page["promocodes"]["edges"]) == 100 and page["promocodes"]["pageInfo"]["hasNextPage"]
    assert "promocode.generate" in await audit_actions(runtime)

    before = await row_counts(runtime)
    refusals = [
        ({"length": 2}, "INVALID_GENERATE_REQUEST", "count"),  # 31^2 = 961 codes: too few
        ({"count": 0}, "INVALID_GENERATE_REQUEST", "count"),
        ({"count": 100_001}, "INVALID_GENERATE_REQUEST", "count"),
        ({"length": 0}, "INVALID_GENERATE_REQUEST", "length"),
        ({"prefix": "BAD PREFIX"}, "INVALID_GENERATE_REQUEST", "prefix"),
        ({"prefix": "P" * 60}, "INVALID_GENERATE_REQUEST", "prefix"),
        ({"value": 0}, "INVALID_VALUE", "value"),
    ]
    for overrides, code, field in refusals:
        refused = await admin.call(GENERATE, "promocodeGenerate", data | overrides)
        assert (refused["batchId"], refused["count"], refused["sample"]) == (None, 0, [])
        assert [(e["code"], e["field"]) for e in refused["errors"]] == [(code, field)], overrides
    assert await row_counts(runtime) == before


async def test_grant_to_users_and_groups(admin: Admin, runtime: Runtime) -> None:
    promocode = await admin.create(code="VIP", audience="GRANTED")
    alice, bob, blocked = [await create_user(runtime) for _ in range(3)]
    async with runtime.session_factory() as session, session.begin():
        group = await group_service.create_group(session, "test", "vips", "")
        (await session.get(User, blocked.id)).status = UserStatus.BLOCKED  # type: ignore[union-attr]
    ghost = uuid.uuid4()
    users = [gid("User", u) for u in (alice.id, bob.id, blocked.id, ghost)]
    grant = {"promocodeId": promocode["id"], "userIds": users, "groupIds": [gid("Group", group.id)]}
    payload = await admin.ok(GRANT, "promocodeGrant", grant | {"reason": "vip list"})
    assert [(o["grantee"], o["id"], o["status"]) for o in payload["outcomes"]] == [
        ("USER", users[0], "GRANTED"),
        ("USER", users[1], "GRANTED"),
        ("USER", users[2], "USER_NOT_ACTIVE"),
        ("USER", users[3], "UNKNOWN_USER"),
        ("GROUP", gid("Group", group.id), "GRANTED"),
    ]
    assert payload["granted"] == 3
    again = await admin.ok(
        GRANT, "promocodeGrant", {"promocodeId": promocode["id"], "userIds": users[:1]}
    )
    assert [o["status"] for o in again["outcomes"]] == ["ALREADY_GRANTED"]

    public = await admin.create(code="OPEN")
    refused = await admin.call(
        GRANT, "promocodeGrant", {"promocodeId": public["id"], "userIds": users[:1]}
    )
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [
        ("NOT_GRANTABLE", "promocodeId")
    ]
    empty = await admin.call(GRANT, "promocodeGrant", {"promocodeId": promocode["id"]})
    assert [e["code"] for e in empty["errors"]] == ["INVALID_GRANTEES"]

    revoked = await admin.ok(
        REVOKE, "promocodeRevokeGrant", {"promocodeId": promocode["id"], "userIds": users[:1]}
    )
    assert revoked["revoked"] == 1
    found = (await admin.query(PROMOCODE, id=promocode["id"]))["promocode"]
    assert (found["stats"]["userGrants"], found["stats"]["groupGrants"]) == (1, 1)
    grantees = [e["node"]["user"] or e["node"]["group"] for e in found["grants"]["edges"]]
    assert {g["id"] for g in grantees} == {users[1], gid("Group", group.id)}
    actions = await audit_actions(runtime)
    assert actions.count("promocode.grant") == 1 and actions.count("promocode.revoke_grant") == 1


async def test_apply_reports_partial_success_and_stats(admin: Admin, runtime: Runtime) -> None:
    promocode = await admin.create(code="TWICE", kind="PERCENT", value=50, maxUses=2)
    people = [await create_user(runtime) for _ in range(3)]
    users = [gid("User", u.id) for u in people]
    apply = {"code": "twice", "planId": admin.plans["basic"], "reason": "support case"}

    before = await row_counts(runtime)
    bad_plan = await admin.call(
        APPLY, "promocodeApply", apply | {"userIds": users, "planId": gid("Plan", uuid.uuid4())}
    )
    assert [(e["code"], e["field"]) for e in bad_plan["errors"]] == [("UNKNOWN_PLAN", "planId")]
    no_users = await admin.call(APPLY, "promocodeApply", apply | {"userIds": []})
    assert [(e["code"], e["field"]) for e in no_users["errors"]] == [("NO_USERS", "userIds")]
    assert await row_counts(runtime) == before

    ghost = gid("User", uuid.uuid4())
    payload = await admin.ok(APPLY, "promocodeApply", apply | {"userIds": [*users, ghost]})
    outcomes = payload["outcomes"]
    assert [(o["userId"], o["status"], o["rejection"]) for o in outcomes] == [
        (users[0], "APPLIED", None),
        (users[1], "APPLIED", None),
        (users[2], "REJECTED", "EXHAUSTED"),
        (ghost, "UNKNOWN_USER", None),
    ]
    assert payload["applied"] == 2
    assert outcomes[0]["purchase"]["status"] == "PENDING"
    assert outcomes[0]["purchase"]["finalPrice"] == {"amountMinor": 14950}
    assert outcomes[2]["purchase"] is None

    found = (await admin.query(PROMOCODE, id=promocode["id"]))["promocode"]
    stats = found["stats"]
    assert (stats["uses"], stats["maxUses"], stats["remaining"]) == (2, 2, 0)
    assert (stats["reserved"], stats["confirmed"], stats["released"]) == (2, 0, 0)
    assert {r["reason"]: r["count"] for r in stats["releasedByReason"]}["TIMEOUT"] == 0
    rejections = {r["reason"]: r["count"] for r in stats["rejections"]}
    assert rejections["EXHAUSTED"] == 1 and sum(rejections.values()) == 1
    purchases = [e["node"] for e in found["purchases"]["edges"]]
    assert {p["id"] for p in purchases} == {o["purchase"]["id"] for o in outcomes[:2]}
    assert all(p["promocode"] == "TWICE" and p["plan"]["slug"] == "basic" for p in purchases)
    assert "promocode.apply" in await audit_actions(runtime)


async def test_attempts_show_the_true_reason(admin: Admin, runtime: Runtime) -> None:
    promocode = await admin.create(code="SECRET", audience="GRANTED")
    user = await create_user(runtime)
    async with runtime.session_factory() as session, session.begin():
        caller = Caller(await session.get(User, user.id), "198.51.100.9")  # type: ignore[arg-type]
        with pytest.raises(PromocodeRejected) as rejected:
            await purchase_service.quote(
                session, caller, plan_id=node_uuid(admin.plans["basic"]), code="secret"
            )
    assert rejected.value.code is PurchaseErrorCode.NOT_FOUND  # what the user was told

    variables = {"userId": gid("User", user.id), "promocodeId": promocode["id"]}
    data = await admin.query(ATTEMPTS, **variables, reason="NOT_ASSIGNED_TO_USER")
    [edge] = data["promocodeAttempts"]["edges"]
    node = edge["node"]
    assert node["reason"] == "NOT_ASSIGNED_TO_USER" and node["operation"] == "QUOTE"
    assert (node["codeEntered"], node["promocode"], node["plan"]) == (
        "secret",
        {"code": "SECRET"},
        {"slug": "basic"},
    )
    assert (node["user"]["id"], node["ip"]) == (variables["userId"], "198.51.100.9")
    other = await admin.query(ATTEMPTS, **variables, reason="EXPIRED")
    assert other["promocodeAttempts"]["edges"] == []
    refetched = await admin.query(NODE, id=node["id"])
    assert refetched["node"]["reason"] == "NOT_ASSIGNED_TO_USER"
    bad = await gql(admin.client, ATTEMPTS, {"userId": "nope"}, token=admin.token)
    assert error_codes(bad) == ["BAD_USER_INPUT"]


async def test_list_search_and_page(admin: Admin) -> None:
    for code in ("ALPHA_1", "ALPHA-2", "BETA"):
        await admin.create(code=code)
    found = await admin.query(PROMOCODES, search="alpha_")
    assert [edge["node"]["code"] for edge in found["promocodes"]["edges"]] == ["ALPHA_1"]
    first = (await admin.query(PROMOCODES, first=2))["promocodes"]
    rest = (await admin.query(PROMOCODES, first=2, after=first["pageInfo"]["endCursor"]))[
        "promocodes"
    ]
    codes = [e["node"]["code"] for e in first["edges"] + rest["edges"]]
    assert sorted(codes) == ["ALPHA-2", "ALPHA_1", "BETA"] and not rest["pageInfo"]["hasNextPage"]


async def test_only_admins(admin: Admin, client: httpx.AsyncClient, runtime: Runtime) -> None:
    promocode = await admin.create(code="GUARDED", audience="GRANTED", maxUses=3)
    user = await create_user(runtime)
    user_id, code_id = gid("User", user.id), promocode["id"]
    calls = [
        (
            PLAN_CREATE,
            {"slug": "x", "name": "X", "priceMinor": 1, "currency": "RUB", "durationDays": 1},
        ),
        (CREATE, {"code": "NEW", "kind": "PERCENT", "value": 5}),
        (UPDATE, {"promocodeId": code_id, "maxUses": 1}),
        (DEACTIVATE, {"promocodeId": code_id}),
        (GENERATE, {"count": 5, "length": 8, "kind": "PERCENT", "value": 5}),
        (GRANT, {"promocodeId": code_id, "userIds": [user_id]}),
        (REVOKE, {"promocodeId": code_id, "userIds": [user_id]}),
        (APPLY, {"code": "GUARDED", "planId": admin.plans["basic"], "userIds": [user_id]}),
    ]
    queries = [(PROMOCODES, {}), (PROMOCODE, {"id": code_id}), (ATTEMPTS, {})]
    callers = [
        ("UNAUTHENTICATED", None),
        ("FORBIDDEN", await access_token(runtime, user)),
        ("FORBIDDEN", await service_token(runtime)),
    ]
    before = await row_counts(runtime)
    for expected, token in callers:
        for document, variables in [(d, {"input": v}) for d, v in calls] + queries:
            body = await gql(client, document, variables, token=token)
            assert error_codes(body) == [expected], (document, body)
        hidden = await gql(client, NODE, {"id": code_id}, token=token)
        assert hidden == {"data": {"node": None}}  # node(id:) hides, never refuses
    assert await row_counts(runtime) == before
