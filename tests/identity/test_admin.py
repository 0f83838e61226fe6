"""Admin mutations: blocking users, managing groups; role checks; idempotency keys."""

from __future__ import annotations

import httpx
import pytest
from strawberry.relay import to_base64

from app.models.identity import Role
from app.runtime import Runtime
from tests.factories.identity import PASSWORD, access_token, create_user, service_token
from tests.helpers import error_codes, gql, row_counts

BLOCK = """
mutation Block($input: UserBlockInput!) {
  userBlock(input: $input) { user { id status } errors { code field message } }
}
"""
UNBLOCK = """
mutation Unblock($input: UserBlockInput!) {
  userUnblock(input: $input) { user { id status } errors { code field } }
}
"""
GROUP_CREATE = """
mutation GroupCreate($input: GroupCreateInput!) {
  groupCreate(input: $input) { group { id name memberCount } errors { code field message } }
}
"""
GROUP_MEMBERS_ADD = """
mutation Add($input: GroupMembersInput!) {
  groupMembersAdd(input: $input) { group { id memberCount } errors { code field } }
}
"""
GROUP_DELETE = """
mutation Del($input: GroupDeleteInput!) {
  groupDelete(input: $input) { deletedGroupId errors { code } }
}
"""
USERS = """
query Users($first: Int, $after: String, $search: String) {
  users(first: $first, after: $after, search: $search) {
    edges { cursor node { id email status groups { name } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
NODE = "query Node($id: ID!) { node(id: $id) { id ... on User { email } } }"
LOGIN = """
mutation Login($input: LoginInput!) { login(input: $input) { errors { code } } }
"""
VIEWER = "query { viewer { user { id } } }"


def gid(type_name: str, value: object) -> str:
    return to_base64(type_name, str(value))


@pytest.fixture
async def admin_token(runtime: Runtime) -> str:
    admin = await create_user(runtime, "root@example.com", roles=(Role.USER, Role.ADMIN))
    return await access_token(runtime, admin)


async def test_block_then_unblock(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str
) -> None:
    user = await create_user(runtime, "anna@example.com")
    user_token = await access_token(runtime, user)
    body = await gql(
        client,
        BLOCK,
        {"input": {"userId": gid("User", user.id), "reason": "fraud"}},
        token=admin_token,
    )
    assert body["data"]["userBlock"] == {
        "user": {"id": gid("User", user.id), "status": "BLOCKED"},
        "errors": [],
    }
    # The blocked user's live token stops working and sign-in is refused.
    viewer = await gql(client, VIEWER, token=user_token)
    assert viewer["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": "ACCOUNT_BLOCKED",
    }
    login = await gql(client, LOGIN, {"input": {"login": "anna@example.com", "password": PASSWORD}})
    assert login["data"]["login"]["errors"] == [{"code": "ACCOUNT_BLOCKED"}]

    await gql(client, UNBLOCK, {"input": {"userId": gid("User", user.id)}}, token=admin_token)
    assert (await gql(client, VIEWER, token=user_token))["data"]["viewer"]["user"]["id"]


async def test_block_unknown_user_and_bad_id(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str
) -> None:
    before = await row_counts(runtime)
    unknown = gid("User", "6f1d7a57-7bb5-4a53-a0a1-6b3c6a4e7c11")
    for user_id in (unknown, "garbage", gid("Group", "6f1d7a57-7bb5-4a53-a0a1-6b3c6a4e7c11")):
        body = await gql(client, BLOCK, {"input": {"userId": user_id}}, token=admin_token)
        assert [(e["code"], e["field"]) for e in body["data"]["userBlock"]["errors"]] == [
            ("NOT_FOUND", "userId")
        ]
    assert await row_counts(runtime) == before


@pytest.mark.parametrize("caller", ["user", "service", "anonymous"])
async def test_non_admins_cannot_call_admin_mutations(
    client: httpx.AsyncClient, runtime: Runtime, caller: str
) -> None:
    victim = await create_user(runtime, "victim@example.com")
    token = {
        "user": await access_token(runtime, await create_user(runtime)),
        "service": await service_token(runtime),
        "anonymous": None,
    }[caller]
    before = await row_counts(runtime)
    body = await gql(client, BLOCK, {"input": {"userId": gid("User", victim.id)}}, token=token)
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED" if caller == "anonymous" else "FORBIDDEN"]
    group = await gql(client, GROUP_CREATE, {"input": {"name": "x"}}, token=token)
    assert group["data"] is None
    users = await gql(client, USERS, token=token)
    assert users["data"] is None
    assert await row_counts(runtime) == before


async def test_groups_with_members_and_idempotent_create(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str
) -> None:
    users = [await create_user(runtime, f"u{i}@example.com") for i in range(3)]
    create = {"input": {"name": "Beta testers", "idempotencyKey": "k-1"}}
    first = (await gql(client, GROUP_CREATE, create, token=admin_token))["data"]["groupCreate"]
    assert first["errors"] == []
    counts = await row_counts(runtime)
    retry = (await gql(client, GROUP_CREATE, create, token=admin_token))["data"]["groupCreate"]
    assert retry == first
    assert await row_counts(runtime) == counts

    reused = await gql(
        client,
        GROUP_CREATE,
        {"input": {"name": "Other", "idempotencyKey": "k-1"}},
        token=admin_token,
    )
    assert reused["data"]["groupCreate"]["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    taken = await gql(client, GROUP_CREATE, {"input": {"name": "beta  TESTERS"}}, token=admin_token)
    assert taken["data"]["groupCreate"]["errors"][0]["code"] == "NAME_TAKEN"

    group_id = first["group"]["id"]
    member_ids = [gid("User", u.id) for u in users[:2]]
    added = await gql(
        client,
        GROUP_MEMBERS_ADD,
        {"input": {"groupId": group_id, "userIds": member_ids * 2}},
        token=admin_token,
    )
    assert added["data"]["groupMembersAdd"]["group"]["memberCount"] == 2
    again = await gql(
        client,
        GROUP_MEMBERS_ADD,
        {"input": {"groupId": group_id, "userIds": member_ids}},
        token=admin_token,
    )
    assert again["data"]["groupMembersAdd"]["group"]["memberCount"] == 2

    unknown = await gql(
        client,
        GROUP_MEMBERS_ADD,
        {
            "input": {
                "groupId": group_id,
                "userIds": [gid("User", "6f1d7a57-7bb5-4a53-a0a1-6b3c6a4e7c11")],
            }
        },
        token=admin_token,
    )
    assert unknown["data"]["groupMembersAdd"]["errors"][0]["code"] == "USER_NOT_FOUND"

    listing = await gql(client, USERS, {"search": "u0@"}, token=admin_token)
    edges = listing["data"]["users"]["edges"]
    assert [e["node"]["groups"] for e in edges] == [[{"name": "Beta testers"}]]

    deleted = await gql(client, GROUP_DELETE, {"input": {"groupId": group_id}}, token=admin_token)
    assert deleted["data"]["groupDelete"] == {"deletedGroupId": group_id, "errors": []}


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "bad\u0000name"])
async def test_group_name_validation(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str, name: str
) -> None:
    body = await gql(client, GROUP_CREATE, {"input": {"name": name}}, token=admin_token)
    assert [(e["code"], e["field"]) for e in body["data"]["groupCreate"]["errors"]] == [
        ("INVALID_NAME", "name")
    ]


async def test_users_connection_pages(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str
) -> None:
    for i in range(5):
        await create_user(runtime, f"page{i}@example.com")
    seen: list[str] = []
    after = None
    while True:
        body = await gql(
            client, USERS, {"first": 2, "after": after, "search": "page"}, token=admin_token
        )
        page = body["data"]["users"]
        seen += [e["node"]["email"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == [f"page{i}@example.com" for i in range(5)]
    too_big = await gql(client, USERS, {"first": 101}, token=admin_token)
    assert too_big["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    bad_cursor = await gql(client, USERS, {"after": "!!"}, token=admin_token)
    assert bad_cursor["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_node_scoped_to_self_unless_admin(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str
) -> None:
    anna = await create_user(runtime, "anna@example.com")
    boris = await create_user(runtime, "boris@example.com")
    anna_token = await access_token(runtime, anna)
    own = await gql(client, NODE, {"id": gid("User", anna.id)}, token=anna_token)
    assert own["data"]["node"]["email"] == "anna@example.com"
    other = await gql(client, NODE, {"id": gid("User", boris.id)}, token=anna_token)
    assert other["data"]["node"] is None
    as_admin = await gql(client, NODE, {"id": gid("User", boris.id)}, token=admin_token)
    assert as_admin["data"]["node"]["email"] == "boris@example.com"


@pytest.mark.parametrize("type_name", ["User", "Group"])
async def test_node_with_a_forged_inner_id_is_null_not_an_error(
    client: httpx.AsyncClient, admin_token: str, type_name: str
) -> None:
    body = await gql(client, NODE, {"id": gid(type_name, "not-a-uuid")}, token=admin_token)
    assert body == {"data": {"node": None}}


async def test_block_reason_over_the_limit(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str
) -> None:
    user = await create_user(runtime)
    body = await gql(
        client,
        BLOCK,
        {"input": {"userId": gid("User", user.id), "reason": "x" * 501}},
        token=admin_token,
    )
    assert [(e["code"], e["field"]) for e in body["data"]["userBlock"]["errors"]] == [
        ("REASON_TOO_LONG", "reason")
    ]
