"""The jobs admin API: dead letters (list, filter, page, retry), the ping canary, role checks."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from strawberry.relay import from_base64, to_base64

from app.models.identity import AuditLog, Role, User
from app.models.operations import JobFailure, JobFailureStatus, JobPing
from app.models.outbox import OutboxMessage
from app.runtime import Runtime
from app.services.operations.jobs import PING_ACTOR, record_failure
from tests.factories.identity import access_token, create_user, service_token
from tests.helpers import error_codes, gql, row_counts

FAILURE_FIELDS = """
id messageId actor queue kwargs error traceback retries requestId status
failedAt retriedAt retriedBy retryMessageId
"""
FAILURES = f"""
query Failures($actor: String, $status: JobFailureStatus, $first: Int, $after: String) {{
  jobFailures(actor: $actor, status: $status, first: $first, after: $after) {{
    edges {{ cursor node {{ {FAILURE_FIELDS} }} }}
    pageInfo {{ hasNextPage hasPreviousPage endCursor }}
  }}
}}
"""
RETRY = f"""
mutation Retry($input: JobRetryInput!) {{
  jobRetry(input: $input) {{ failure {{ {FAILURE_FIELDS} }} errors {{ code field message }} }}
}}
"""
PING_FIELDS = "id note requestedBy messageId createdAt processedAt deliveries"
PING = f"""
mutation Ping($input: JobPingInput!) {{
  jobPing(input: $input) {{ ping {{ {PING_FIELDS} }} errors {{ code field message }} }}
}}
"""
PING_QUERY = f"query PingQuery($id: ID!) {{ jobPing(id: $id) {{ {PING_FIELDS} }} }}"
NODE = """
query Node($id: ID!) {
  node(id: $id) { id ... on JobFailure { actor status } ... on JobPing { note } }
}
"""


def gid(type_name: str, value: object) -> str:
    return to_base64(type_name, str(value))


def node_uuid(global_id: str) -> uuid.UUID:
    return uuid.UUID(from_base64(global_id)[1])


async def add_failure(
    runtime: Runtime,
    actor: str = PING_ACTOR,
    kwargs: dict[str, Any] | None = None,
    *,
    request_id: str | None = "req-1",
) -> JobFailure:
    """A dead letter, as the worker's DeadLetters middleware records it."""
    message_id = uuid.uuid4()
    async with runtime.session_factory() as session, session.begin():
        stored = await record_failure(
            session,
            message_id=message_id,
            actor=actor,
            queue="default",
            args=[],
            kwargs={"ping_id": str(uuid.uuid4())} if kwargs is None else kwargs,
            error="RuntimeError: boom",
            traceback="Traceback (most recent call last):\nRuntimeError: boom\n",
            retries=3,
            request_id=request_id,
        )
        assert stored
        failure = await session.scalar(
            select(JobFailure).where(JobFailure.message_id == message_id)
        )
    assert failure is not None
    return failure


async def load(runtime: Runtime, model: type[Any], key: uuid.UUID) -> Any:
    async with runtime.session_factory() as session:
        return await session.get(model, key)


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {table: after[table] - before[table] for table in after if after[table] != before[table]}


@pytest.fixture
async def admin(runtime: Runtime) -> User:
    return await create_user(runtime, "root@example.com", roles=(Role.USER, Role.ADMIN))


@pytest.fixture
async def admin_token(runtime: Runtime, admin: User) -> str:
    return await access_token(runtime, admin)


async def test_admin_lists_failures_and_filters_by_actor_and_status(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str
) -> None:
    first = await add_failure(runtime)
    second = await add_failure(runtime)
    other = await add_failure(runtime, "reports.build", {"report": 7}, request_id=None)

    body = await gql(client, FAILURES, token=admin_token)
    nodes = [edge["node"] for edge in body["data"]["jobFailures"]["edges"]]
    # Most recently failed first.
    assert [node_uuid(n["id"]) for n in nodes] == [other.id, second.id, first.id]
    assert nodes[0] == {
        "id": gid("JobFailure", other.id),
        "messageId": str(other.message_id),
        "actor": "reports.build",
        "queue": "default",
        "kwargs": {"report": 7},
        "error": "RuntimeError: boom",
        "traceback": "Traceback (most recent call last):\nRuntimeError: boom\n",
        "retries": 3,
        "requestId": None,
        "status": "DEAD",
        "failedAt": nodes[0]["failedAt"],
        "retriedAt": None,
        "retriedBy": None,
        "retryMessageId": None,
    }
    assert nodes[0]["failedAt"].endswith("+00:00")

    by_actor = await gql(client, FAILURES, {"actor": PING_ACTOR}, token=admin_token)
    ids = [node_uuid(e["node"]["id"]) for e in by_actor["data"]["jobFailures"]["edges"]]
    assert ids == [second.id, first.id]
    nobody = await gql(client, FAILURES, {"actor": "no.such.actor"}, token=admin_token)
    assert nobody["data"]["jobFailures"]["edges"] == []

    retried = await gql(
        client, RETRY, {"input": {"id": gid("JobFailure", first.id)}}, token=admin_token
    )
    assert retried["data"]["jobRetry"]["errors"] == []

    dead = await gql(client, FAILURES, {"status": "DEAD"}, token=admin_token)
    ids = [node_uuid(e["node"]["id"]) for e in dead["data"]["jobFailures"]["edges"]]
    assert ids == [other.id, second.id]
    done = await gql(
        client, FAILURES, {"status": "RETRIED", "actor": PING_ACTOR}, token=admin_token
    )
    edges = done["data"]["jobFailures"]["edges"]
    assert [(node_uuid(e["node"]["id"]), e["node"]["status"]) for e in edges] == [
        (first.id, "RETRIED")
    ]
    none = await gql(
        client, FAILURES, {"status": "RETRIED", "actor": "reports.build"}, token=admin_token
    )
    assert none["data"]["jobFailures"]["edges"] == []


async def test_failures_connection_pages(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str
) -> None:
    created = [(await add_failure(runtime)).id for _ in range(5)]
    seen: list[uuid.UUID] = []
    after = None
    pages = 0
    while True:
        body = await gql(client, FAILURES, {"first": 2, "after": after}, token=admin_token)
        page = body["data"]["jobFailures"]
        seen += [node_uuid(e["node"]["id"]) for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 3
    assert seen == list(reversed(created))

    too_big = await gql(client, FAILURES, {"first": 101}, token=admin_token)
    assert too_big["data"] is None
    assert too_big["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "argument": "first"}
    bad_cursor = await gql(client, FAILURES, {"after": "!!"}, token=admin_token)
    assert bad_cursor["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "argument": "after"}


async def test_retry_replays_the_job_through_the_outbox_once(
    client: httpx.AsyncClient, runtime: Runtime, admin: User, admin_token: str
) -> None:
    failure = await add_failure(runtime, kwargs={"ping_id": "6f1d7a57-7bb5-4a53-a0a1-6b3c6a4e7c11"})
    failure_id = gid("JobFailure", failure.id)
    before = await row_counts(runtime)

    body = await gql(client, RETRY, {"input": {"id": failure_id}}, token=admin_token)
    payload = body["data"]["jobRetry"]
    assert payload["errors"] == []
    retried = payload["failure"]
    assert retried["id"] == failure_id
    assert retried["status"] == "RETRIED"
    assert retried["retriedBy"] == f"user:{admin.id}"
    assert retried["retriedAt"] is not None
    assert changed(before, await row_counts(runtime)) == {"outbox_messages": 1, "audit_log": 1}

    stored = await load(runtime, JobFailure, failure.id)
    assert stored.status is JobFailureStatus.RETRIED
    assert stored.retried_by == f"user:{admin.id}"
    assert str(stored.retry_message_id) == retried["retryMessageId"]
    message = await load(runtime, OutboxMessage, uuid.UUID(retried["retryMessageId"]))
    assert message is not None
    assert (message.actor, message.kwargs) == (failure.actor, failure.kwargs)
    assert message.id != failure.message_id
    async with runtime.session_factory() as session:
        audit = (
            await session.scalars(select(AuditLog).where(AuditLog.action == "job.retry"))
        ).all()
    assert [(a.actor, a.target) for a in audit] == [
        (f"user:{admin.id}", f"job_failure:{failure.id}")
    ]

    # A second retry is refused and writes nothing.
    after_first = await row_counts(runtime)
    again = await gql(client, RETRY, {"input": {"id": failure_id}}, token=admin_token)
    assert again["data"]["jobRetry"]["failure"] is None
    assert [(e["code"], e["field"]) for e in again["data"]["jobRetry"]["errors"]] == [
        ("ALREADY_RETRIED", "id")
    ]
    assert await row_counts(runtime) == after_first
    unchanged = await load(runtime, JobFailure, failure.id)
    assert (unchanged.retried_at, unchanged.retry_message_id) == (
        stored.retried_at,
        stored.retry_message_id,
    )


async def test_retry_unknown_or_malformed_id_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str
) -> None:
    failure = await add_failure(runtime)
    before = await row_counts(runtime)
    unknown = "6f1d7a57-7bb5-4a53-a0a1-6b3c6a4e7c11"
    for bad_id in (
        gid("JobFailure", unknown),
        gid("JobPing", failure.id),  # an id of the wrong type
        gid("JobFailure", "not-a-uuid"),
        "garbage",
    ):
        body = await gql(client, RETRY, {"input": {"id": bad_id}}, token=admin_token)
        payload = body["data"]["jobRetry"]
        assert payload["failure"] is None
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [("NOT_FOUND", "id")]
    assert await row_counts(runtime) == before
    assert (await load(runtime, JobFailure, failure.id)).status is JobFailureStatus.DEAD


async def test_retry_of_a_removed_actor_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str
) -> None:
    failure = await add_failure(runtime, "gone.actor", {"x": 1})
    before = await row_counts(runtime)
    body = await gql(
        client, RETRY, {"input": {"id": gid("JobFailure", failure.id)}}, token=admin_token
    )
    assert [(e["code"], e["field"]) for e in body["data"]["jobRetry"]["errors"]] == [
        ("UNKNOWN_ACTOR", "id")
    ]
    assert await row_counts(runtime) == before


@pytest.mark.parametrize("caller", ["user", "service", "anonymous"])
async def test_non_admins_get_no_jobs_data(
    client: httpx.AsyncClient, runtime: Runtime, caller: str
) -> None:
    failure = await add_failure(runtime)
    async with runtime.session_factory() as session, session.begin():
        ping = JobPing(note="secret", requested_by="user:someone")
        session.add(ping)
    token = {
        "user": await access_token(runtime, await create_user(runtime)),
        "service": await service_token(runtime),
        "anonymous": None,
    }[caller]
    expected = ["UNAUTHENTICATED" if caller == "anonymous" else "FORBIDDEN"]
    before = await row_counts(runtime)

    failures = await gql(client, FAILURES, token=token)
    assert failures["data"] is None
    assert error_codes(failures) == expected
    ping_query = await gql(client, PING_QUERY, {"id": gid("JobPing", ping.id)}, token=token)
    assert ping_query["data"] == {"jobPing": None}
    assert error_codes(ping_query) == expected
    for node_id in (gid("JobFailure", failure.id), gid("JobPing", ping.id)):
        node = await gql(client, NODE, {"id": node_id}, token=token)
        assert node == {"data": {"node": None}}  # node(id:) hides, never refuses

    retry = await gql(client, RETRY, {"input": {"id": gid("JobFailure", failure.id)}}, token=token)
    assert retry["data"] is None
    assert error_codes(retry) == expected
    ping_mutation = await gql(client, PING, {"input": {"note": "hi"}}, token=token)
    assert ping_mutation["data"] is None
    assert error_codes(ping_mutation) == expected

    assert await row_counts(runtime) == before
    assert (await load(runtime, JobFailure, failure.id)).status is JobFailureStatus.DEAD


async def test_ping_enqueues_the_canary_and_can_be_read_back(
    client: httpx.AsyncClient, runtime: Runtime, admin: User, admin_token: str
) -> None:
    before = await row_counts(runtime)
    body = await gql(client, PING, {"input": {"note": "  deploy 42  "}}, token=admin_token)
    payload = body["data"]["jobPing"]
    assert payload["errors"] == []
    ping = payload["ping"]
    assert ping["note"] == "deploy 42"
    assert ping["requestedBy"] == f"user:{admin.id}"
    assert ping["deliveries"] == 0
    assert ping["processedAt"] is None
    assert ping["createdAt"].endswith("+00:00")
    assert changed(before, await row_counts(runtime)) == {"job_pings": 1, "outbox_messages": 1}

    ping_id = node_uuid(ping["id"])
    stored = await load(runtime, JobPing, ping_id)
    assert (stored.note, str(stored.message_id)) == ("deploy 42", ping["messageId"])
    message = await load(runtime, OutboxMessage, uuid.UUID(ping["messageId"]))
    assert (message.actor, message.kwargs) == (PING_ACTOR, {"ping_id": str(ping_id)})

    read = await gql(client, PING_QUERY, {"id": ping["id"]}, token=admin_token)
    assert read["data"]["jobPing"] == ping
    node = await gql(client, NODE, {"id": ping["id"]}, token=admin_token)
    assert node["data"]["node"] == {"id": ping["id"], "note": "deploy 42"}

    # No note, or a null one, is an empty note; 200 characters is the limit, not over it.
    for data, note in (({}, ""), ({"note": None}, ""), ({"note": "x" * 200}, "x" * 200)):
        other = await gql(client, PING, {"input": data}, token=admin_token)
        assert other["data"]["jobPing"]["errors"] == []
        assert other["data"]["jobPing"]["ping"]["note"] == note


async def test_ping_query_unknown_and_malformed_ids(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str
) -> None:
    failure = await add_failure(runtime)
    unknown = await gql(
        client,
        PING_QUERY,
        {"id": gid("JobPing", "6f1d7a57-7bb5-4a53-a0a1-6b3c6a4e7c11")},
        token=admin_token,
    )
    assert unknown == {"data": {"jobPing": None}}
    for bad_id in ("garbage", gid("JobFailure", failure.id), gid("JobPing", "nope")):
        body = await gql(client, PING_QUERY, {"id": bad_id}, token=admin_token)
        assert body["data"] == {"jobPing": None}
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "argument": "id"}
    node = await gql(client, NODE, {"id": gid("JobFailure", failure.id)}, token=admin_token)
    assert node["data"]["node"] == {
        "id": gid("JobFailure", failure.id),
        "actor": PING_ACTOR,
        "status": "DEAD",
    }
    missing = await gql(client, NODE, {"id": gid("JobFailure", "nope")}, token=admin_token)
    assert missing == {"data": {"node": None}}


@pytest.mark.parametrize("note", ["x" * 201, "null\u0000byte", "two\nlines", "bell\x07"])
async def test_ping_note_validation(
    client: httpx.AsyncClient, runtime: Runtime, admin_token: str, note: str
) -> None:
    before = await row_counts(runtime)
    body = await gql(client, PING, {"input": {"note": note}}, token=admin_token)
    payload = body["data"]["jobPing"]
    assert payload["ping"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("INVALID_NOTE", "note")]
    assert await row_counts(runtime) == before
