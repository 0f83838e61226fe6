"""The audit log, admin API: `auditLog` lists what admins and services did (filters, paging,
newest first), only to admins; every entry names its target as `<kind>:<id>`."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from strawberry.relay import from_base64, to_base64

from app.models.identity import AuditLog, Role, User
from app.runtime import Runtime
from tests.factories.identity import access_token, create_user, service_token
from tests.helpers import error_codes, gql
from tests.promocodes.test_admin import CREATE as PROMOCODE_CREATE
from tests.promocodes.test_admin import PLAN_CREATE

ENTRY_FIELDS = "id actor action target reason createdAt"
AUDIT_LOG = f"""
query Audit(
  $actor: String, $target: String, $action: String, $from: DateTime, $until: DateTime,
  $first: Int, $after: String
) {{
  auditLog(
    actor: $actor, target: $target, action: $action, from: $from, until: $until,
    first: $first, after: $after
  ) {{
    edges {{ cursor node {{ {ENTRY_FIELDS} }} }}
    pageInfo {{ hasNextPage hasPreviousPage endCursor }}
  }}
}}
"""
APPLY = """
mutation Apply($input: PromocodeApplyInput!) {
  promocodeApply(input: $input) { applied errors { code field } }
}
"""
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# What every audit target looks like: a kind, a colon, the object's key (a UUID; a goal
# template's key is its slug).
TARGET_FORM = re.compile(r"[a-z_]+:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def add_entries(runtime: Runtime, *entries: tuple[str, str, str, datetime]) -> list[AuditLog]:
    """Audit rows (actor, action, target, created_at), as the services write them."""
    rows = [
        AuditLog(id=uuid.uuid4(), actor=actor, action=action, target=target, created_at=at)
        for actor, action, target, at in entries
    ]
    async with runtime.session_factory() as session, session.begin():
        session.add_all(rows)
    return rows


def entry_id(node: dict[str, Any]) -> uuid.UUID:
    type_name, key = from_base64(node["id"])
    assert type_name == "AuditLogEntry"
    return uuid.UUID(key)


async def listed(client: httpx.AsyncClient, token: str | None, **variables: Any) -> list[uuid.UUID]:
    body = await gql(client, AUDIT_LOG, variables, token=token)
    assert "errors" not in body, body
    return [entry_id(edge["node"]) for edge in body["data"]["auditLog"]["edges"]]


@pytest.fixture
async def admin(runtime: Runtime) -> User:
    return await create_user(runtime, roles=(Role.USER, Role.ADMIN))


@pytest.fixture
async def admin_token(runtime: Runtime, admin: User) -> str:
    return await access_token(runtime, admin)


@pytest.fixture
async def entries(runtime: Runtime) -> list[AuditLog]:
    """Four entries an hour apart: two admins, two actions, two targets."""
    alice, bob = "user:00000000-0000-4000-8000-00000000000a", "service:ops"
    group = f"group:{uuid.uuid4()}"
    user = f"user:{uuid.uuid4()}"
    return await add_entries(
        runtime,
        (alice, "group.create", group, T0),
        (bob, "user.block", user, T0 + timedelta(hours=1)),
        (alice, "group.update", group, T0 + timedelta(hours=2)),
        (alice, "user.block", user, T0 + timedelta(hours=3)),
    )


async def test_admin_reads_the_log_newest_first(
    client: httpx.AsyncClient, admin_token: str, entries: list[AuditLog]
) -> None:
    body = await gql(client, AUDIT_LOG, {"from": T0.isoformat()}, token=admin_token)
    nodes = [edge["node"] for edge in body["data"]["auditLog"]["edges"]]
    assert [entry_id(node) for node in nodes] == [row.id for row in reversed(entries)]
    newest = entries[-1]
    assert nodes[0] == {
        "id": to_base64("AuditLogEntry", str(newest.id)),
        "actor": newest.actor,
        "action": "user.block",
        "target": newest.target,
        "reason": "",
        "createdAt": (T0 + timedelta(hours=3)).isoformat(),
    }


async def test_filters_by_actor_target_action_and_period(
    client: httpx.AsyncClient, admin_token: str, entries: list[AuditLog]
) -> None:
    first, second, third, fourth = (row.id for row in entries)
    alice, group, user = entries[0].actor, entries[0].target, entries[1].target
    assert await listed(client, admin_token, actor=alice) == [fourth, third, first]
    assert await listed(client, admin_token, actor="service:ops") == [second]
    assert await listed(client, admin_token, target=group) == [third, first]
    assert await listed(client, admin_token, action="user.block") == [fourth, second]
    assert await listed(client, admin_token, actor=alice, target=user) == [fourth]
    assert await listed(client, admin_token, actor="user:nobody") == []
    # `from` is inclusive, `until` exclusive: consecutive periods never share an entry.
    hour = timedelta(hours=1)
    period = {"from": (T0 + hour).isoformat(), "until": (T0 + 3 * hour).isoformat()}
    assert await listed(client, admin_token, **period) == [third, second]
    assert await listed(client, admin_token, until=(T0 + hour).isoformat()) == [first]
    assert await listed(client, admin_token, **{"from": (T0 + 3 * hour).isoformat()}) == [fourth]
    # Times in another offset are the same instants.
    moscow = (T0 + 3 * hour).astimezone(timezone(timedelta(hours=3))).isoformat()
    assert moscow.endswith("+03:00")
    assert await listed(client, admin_token, **{"from": moscow}) == [fourth]


async def test_the_log_pages(client: httpx.AsyncClient, runtime: Runtime, admin_token: str) -> None:
    rows = await add_entries(
        runtime,
        *((f"service:s{n}", "group.create", f"group:{uuid.uuid4()}", T0 + timedelta(minutes=n))
          for n in range(5)),
    )  # fmt: skip
    seen: list[uuid.UUID] = []
    after, pages = None, 0
    while True:
        body = await gql(client, AUDIT_LOG, {"first": 2, "after": after}, token=admin_token)
        page = body["data"]["auditLog"]
        seen += [entry_id(edge["node"]) for edge in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 3
    assert seen == [row.id for row in reversed(rows)]


BAD_ARGUMENTS: dict[str, tuple[dict[str, Any], str]] = {
    "a page over 100": ({"first": 101}, "first"),
    "a negative page": ({"first": -1}, "first"),
    "a cursor that is none": ({"after": "!!"}, "after"),
    "a time without an offset": ({"from": "2026-03-01T12:00:00"}, "from"),
    "an until without an offset": ({"until": "2026-03-01T12:00:00"}, "until"),
    "a period that ends before it starts": (
        {"from": T0.isoformat(), "until": (T0 - timedelta(seconds=1)).isoformat()},
        "until",
    ),
    "an actor over 100 characters": ({"actor": "u" * 101}, "actor"),
    "a target over 100 characters": ({"target": "t" * 101}, "target"),
    "an action over 64 characters": ({"action": "a" * 65}, "action"),
}


@pytest.mark.parametrize(("variables", "argument"), BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS)
async def test_bad_filters_are_bad_user_input(
    client: httpx.AsyncClient,
    admin_token: str,
    entries: list[AuditLog],
    variables: dict[str, Any],
    argument: str,
) -> None:
    body = await gql(client, AUDIT_LOG, variables, token=admin_token)
    assert body["data"] is None
    assert [error["extensions"] for error in body["errors"]] == [
        {"code": "BAD_USER_INPUT", "argument": argument}
    ]


async def test_only_admins_read_the_log(
    client: httpx.AsyncClient, runtime: Runtime, entries: list[AuditLog]
) -> None:
    user = await create_user(runtime)
    callers = {
        "anonymous": (None, "UNAUTHENTICATED"),
        "a user": (await access_token(runtime, user), "FORBIDDEN"),
        "a service": (await service_token(runtime), "FORBIDDEN"),
    }
    for caller, (token, code) in callers.items():
        response = await client.post(
            "/graphql",
            json={"query": AUDIT_LOG, "variables": {}},
            headers={"accept": "application/json"}
            | ({"authorization": f"Bearer {token}"} if token else {}),
        )
        body = response.json()
        assert body["data"] is None, caller
        assert error_codes(body) == [code], caller
        for row in entries:  # nothing of the log leaks, not even in a message
            assert row.target not in response.text and row.actor not in response.text, caller


async def test_an_applied_promocode_is_audited_by_its_id(
    client: httpx.AsyncClient, runtime: Runtime, admin: User, admin_token: str
) -> None:
    async def ok(document: str, field: str, data: dict[str, Any]) -> dict[str, Any]:
        body = await gql(client, document, {"input": data}, token=admin_token)
        payload: dict[str, Any] = body["data"][field]
        assert payload["errors"] == [], payload
        return payload

    plan = await ok(
        PLAN_CREATE,
        "planCreate",
        {"slug": "basic", "name": "Basic", "priceMinor": 29900, "currency": "RUB"}
        | {"durationDays": 30},
    )
    promocode = await ok(
        PROMOCODE_CREATE, "promocodeCreate", {"code": "SPRING", "kind": "PERCENT", "value": 10}
    )
    buyer = to_base64("User", str((await create_user(runtime)).id))
    apply = {"planId": plan["plan"]["id"], "userIds": [buyer], "reason": "support case"}
    assert (await ok(APPLY, "promocodeApply", apply | {"code": " spring "}))["applied"] == 1
    # A code that names no promocode applies nothing, and leaves no entry to name.
    await ok(APPLY, "promocodeApply", apply | {"code": "NO-SUCH-CODE"})

    body = await gql(client, AUDIT_LOG, {"action": "promocode.apply"}, token=admin_token)
    nodes = [edge["node"] for edge in body["data"]["auditLog"]["edges"]]
    promocode_id = from_base64(promocode["promocode"]["id"])[1]
    assert [(n["actor"], n["target"], n["reason"]) for n in nodes] == [
        (f"user:{admin.id}", f"promocode:{promocode_id}", "support case (1/1 applied)")
    ]
    everything = await gql(client, AUDIT_LOG, token=admin_token)
    targets = [edge["node"]["target"] for edge in everything["data"]["auditLog"]["edges"]]
    assert len(targets) >= 3  # the plan, the promocode, the application
    assert all(TARGET_FORM.fullmatch(target) for target in targets), targets
