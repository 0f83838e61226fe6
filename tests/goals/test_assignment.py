"""Admin assignment (both backends): one user, CSV upload with a dry run, order lookup."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app.models.base import utcnow
from app.models.goals import GoalNotification, GoalTemplate, TemplateStatus, UserGoal
from app.models.identity import Role
from app.runtime import Runtime
from app.services.goals.codes import AssignErrorCode
from schema.schema import build_schema
from tests.conftest import test_settings as make_settings
from tests.factories.goals import create_template, record_and_process
from tests.factories.identity import access_token, create_user
from tests.factories.orders import order
from tests.helpers import error_codes, gql, row_counts

ASSIGN = """
mutation Assign($input: GoalAssignInput!) {
  goalAssign(input: $input) {
    userGoal { id goalId status progress { current total } expiresAt }
    errors { code field message }
  }
}"""

UPLOAD = """
mutation Upload($file: Upload!, $dryRun: Boolean!, $notify: Boolean!) {
  goalAssignmentUpload(input: {file: $file, dryRun: $dryRun, notify: $notify}) {
    dryRun batchId
    summary { rows valid assigned alreadyAssigned errors }
    rows { line status userId goalId errorCode message userGoalId }
    errors { code field message }
  }
}"""

ORDER_LOOKUP = """
query Order($orderId: String!) {
  goalOrder(orderId: $orderId) {
    orderId status rideClass
    outcome { reason counted goalId }
  }
}"""

USER_GOALS = """
query Goals($userId: ID!) { userGoals(userId: $userId) { goalId status } }"""

PREFLIGHT = {"GraphQL-Require-Preflight": "1", "accept": "application/json"}


async def _admin(runtime: Runtime) -> str:
    admin = await create_user(runtime, roles=(Role.ADMIN,))
    return await access_token(runtime, admin)


async def _upload(
    client: httpx.AsyncClient,
    token: str,
    content: bytes,
    *,
    dry_run: bool,
    notify: bool = False,
) -> dict[str, Any]:
    operations = {
        "query": UPLOAD,
        "variables": {"file": None, "dryRun": dry_run, "notify": notify},
    }
    response = await client.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": ("goals.csv", content, "text/csv")},
        headers={**PREFLIGHT, "authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_assigning_one_user_activates_the_goal(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    token = await _admin(runtime)
    user = await create_user(runtime)
    template = await create_template(runtime)

    body = await gql(
        client, ASSIGN, {"input": {"userId": str(user.id), "goalId": template.id}}, token=token
    )

    payload = body["data"]["goalAssign"]
    assert payload["errors"] == []
    assert payload["userGoal"]["status"] == "ACTIVE"
    assert payload["userGoal"]["progress"] == {"current": 0, "total": 3}


async def test_assignment_errors_name_the_field_and_change_nothing(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    token = await _admin(runtime)
    user = await create_user(runtime)
    template = await create_template(runtime)
    other = await create_template(runtime)
    archived = await create_template(runtime)
    async with runtime.session_factory() as session, session.begin():
        row = await session.get(GoalTemplate, archived.id)
        assert row is not None
        row.status = TemplateStatus.ARCHIVED
    await gql(
        client, ASSIGN, {"input": {"userId": str(user.id), "goalId": template.id}}, token=token
    )
    now = utcnow()
    cases = [
        ({"userId": str(uuid.uuid4()), "goalId": template.id}, "UNKNOWN_USER", "userId"),
        ({"userId": "not-an-id", "goalId": template.id}, "UNKNOWN_USER", "userId"),
        ({"userId": str(user.id), "goalId": "no-such-goal"}, "UNKNOWN_GOAL", "goalId"),
        ({"userId": str(user.id), "goalId": archived.id}, "GOAL_ARCHIVED", "goalId"),
        ({"userId": str(user.id), "goalId": template.id}, "ALREADY_ASSIGNED", "goalId"),
        (
            {
                "userId": str(user.id),
                "goalId": other.id,
                "startsAt": (now + timedelta(days=2)).isoformat(),
                "endsAt": (now + timedelta(days=1)).isoformat(),
            },
            "INVALID_PERIOD",
            "endsAt",
        ),
    ]
    before = await row_counts(runtime)
    for data, code, field in cases:
        body = await gql(client, ASSIGN, {"input": data}, token=token)
        errors = body["data"]["goalAssign"]["errors"]
        assert [(e["code"], e["field"]) for e in errors] == [(code, field)], data
    assert await row_counts(runtime) == before


async def test_only_admins_assign(runtime: Runtime, client: httpx.AsyncClient) -> None:
    user = await create_user(runtime)
    template = await create_template(runtime)
    variables = {"input": {"userId": str(user.id), "goalId": template.id}}
    before = await row_counts(runtime)
    as_user = await gql(client, ASSIGN, variables, token=await access_token(runtime, user))
    anonymous = await gql(client, ASSIGN, variables)
    assert error_codes(as_user) == ["FORBIDDEN"]
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]
    assert await row_counts(runtime) == before


async def test_a_csv_upload_previews_then_commits_then_is_idempotent(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    token = await _admin(runtime)
    users = [await create_user(runtime) for _ in range(2)]
    first = await create_template(runtime)
    second = await create_template(runtime)
    stranger = uuid.uuid4()
    content = (
        "user_id,goal_id,ends_at\n"
        f"{users[0].id},{first.id},\n"
        f"{users[0].id},{second.id},\n"
        f"{users[1].id},{first.id},2020-01-01\n"
        f"{stranger},{first.id},\n"
        f"{users[1].id},no-such-goal,\n"
        f"{users[0].id},{first.id},\n"
        "not-a-uuid,x,\n"
    ).encode()
    before = await row_counts(runtime)

    preview = (await _upload(client, token, content, dry_run=True))["data"]["goalAssignmentUpload"]

    assert await row_counts(runtime) == before  # a dry run writes nothing
    assert preview["dryRun"] and preview["batchId"] is None
    assert [(r["line"], r["status"], r["errorCode"]) for r in preview["rows"]] == [
        (2, "VALID", None),
        (3, "VALID", None),
        (4, "ERROR", "INVALID_PERIOD"),
        (5, "ERROR", "UNKNOWN_USER"),
        (6, "ERROR", "UNKNOWN_GOAL"),
        (7, "ERROR", "DUPLICATE_ROW"),
        (8, "ERROR", "INVALID_USER_ID"),
    ]
    assert preview["summary"] == {
        "rows": 7,
        "valid": 2,
        "assigned": 0,
        "alreadyAssigned": 0,
        "errors": 5,
    }

    committed = (await _upload(client, token, content, dry_run=False, notify=True))["data"][
        "goalAssignmentUpload"
    ]
    assert committed["summary"]["assigned"] == 2
    assert [r["status"] for r in committed["rows"][:2]] == ["ASSIGNED", "ASSIGNED"]
    assert all(r["userGoalId"] for r in committed["rows"][:2])

    again = (await _upload(client, token, content, dry_run=False))["data"]["goalAssignmentUpload"]
    assert again["batchId"] == committed["batchId"]
    assert again["summary"]["assigned"] == 0
    assert again["summary"]["alreadyAssigned"] == 2

    async with runtime.session_factory() as session:
        goals = list(await session.scalars(select(UserGoal).where(UserGoal.user_id == users[0].id)))
        notified = list(await session.scalars(select(GoalNotification)))
    assert sorted(g.goal_id for g in goals) == sorted([first.id, second.id])
    assert len(notified) == 2


async def test_a_file_that_is_not_a_csv_is_refused_whole(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    token = await _admin(runtime)
    before = await row_counts(runtime)
    cases = [
        (b"", "EMPTY_FILE"),
        (b"user_id\n" + str(uuid.uuid4()).encode() + b"\n", "MISSING_COLUMN"),
        (b"user_id,goal_id,colour\n", "UNKNOWN_COLUMN"),
        (b'user_id,goal_id\n"unterminated,x\n', "MALFORMED_CSV"),
        (b"\xff\xfe\x00garbage", "MALFORMED_CSV"),
    ]
    for content, code in cases:
        body = (await _upload(client, token, content, dry_run=False))["data"]
        errors = body["goalAssignmentUpload"]["errors"]
        assert [(e["code"], e["field"]) for e in errors] == [(code, "file")], content
    assert await row_counts(runtime) == before


async def test_a_file_over_the_size_limit_is_refused(runtime: Runtime) -> None:
    from tests.conftest import make_client

    token = await _admin(runtime)
    async with make_client(runtime, max_upload_bytes=2048) as small:
        content = b"user_id,goal_id\n" + b"".join(
            f"{uuid.uuid4()},goal-x\n".encode() for _ in range(100)
        )
        operations = {"query": UPLOAD, "variables": {"file": None, "dryRun": True, "notify": False}}
        response = await small.post(
            "/graphql",
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.file"]}),
            },
            files={"0": ("big.csv", content, "text/csv")},
            headers={**PREFLIGHT, "authorization": f"Bearer {token}"},
        )
    assert response.status_code == 413


async def test_admins_look_up_an_order_and_a_users_goals(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    token = await _admin(runtime)
    user = await create_user(runtime)
    template = await create_template(runtime)
    await gql(
        client, ASSIGN, {"input": {"userId": str(user.id), "goalId": template.id}}, token=token
    )
    econom = order(user.id, ride_class="econom")
    await record_and_process(runtime, econom)

    found = await gql(client, ORDER_LOOKUP, {"orderId": econom.order_id}, token=token)
    missing = await gql(client, ORDER_LOOKUP, {"orderId": "nope"}, token=token)
    goals = await gql(client, USER_GOALS, {"userId": str(user.id)}, token=token)
    as_user = await gql(
        client, ORDER_LOOKUP, {"orderId": econom.order_id}, token=await access_token(runtime, user)
    )

    assert found["data"]["goalOrder"]["outcome"] == {
        "reason": "WRONG_RIDE_CLASS",
        "counted": False,
        "goalId": template.id,
    }
    assert missing["data"]["goalOrder"] is None
    assert goals["data"]["userGoals"] == [{"goalId": template.id, "status": "ACTIVE"}]
    assert error_codes(as_user) == ["FORBIDDEN"]


def test_the_api_error_codes_are_the_service_codes() -> None:
    """goalAssign, the upload and its rows report AssignErrorCode itself, in its order."""
    api_enum = build_schema(make_settings()).as_str().split("enum GoalAssignErrorCode {")[1]
    assert api_enum.split("}")[0].split() == [code.name for code in AssignErrorCode]
