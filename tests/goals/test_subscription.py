"""`goalProgress` end to end: a real uvicorn server, a real WebSocket client speaking
graphql-transport-ws, events from the runtime's pub/sub (Redis on the PostgreSQL backend,
in memory on SQLite), from a committed unit of work and from a Dramatiq actor."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from dramatiq import Worker
from prometheus_client import REGISTRY
from strawberry.relay import to_base64
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.events import publish_after_commit, publish_committed, user_channel
from app.main import create_app
from app.models.identity import User
from app.runtime import Runtime
from jobs.broker import actor
from jobs.runtime import unit_of_work
from tests.e2e.conftest import free_port
from tests.factories.identity import access_token, create_user
from tests.platform.test_pubsub import eventually, subscribed

RECEIVE_TIMEOUT = 10.0
SUBSCRIPTION = """
subscription Goals {
  goalProgress { kind goalId templateId status current total at }
}
"""


def goal_message(user_goal_id: uuid.UUID, current: int, **changes: Any) -> dict[str, Any]:
    """A message in the contract of schema/goals/events.py."""
    message = {
        "type": "goal",
        "kind": "PROGRESS",
        "userGoalId": str(user_goal_id),
        "templateId": "comfort-5",
        "status": "ACTIVE",
        "current": current,
        "total": 5,
        "at": "2025-02-01T03:04:05+03:00",  # served in UTC
    }
    message.update(changes)
    return message


@actor("test.goal_event", max_retries=0)
async def emit_goal_event(user_id: str, user_goal_id: str, current: int) -> None:
    """Publishes a goal event after its unit of work commits, like the goal actors do."""
    async with unit_of_work() as session:
        message = goal_message(uuid.UUID(user_goal_id), current)
        publish_after_commit(session, user_channel(uuid.UUID(user_id)), message)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave pytest's signal handlers alone
        yield


@pytest.fixture
async def ws_url(runtime: Runtime) -> AsyncIterator[str]:
    """A real uvicorn server on a free port, serving create_app() on the test's runtime."""
    port = free_port()
    config = uvicorn.Config(
        create_app(runtime.settings, runtime=runtime),
        host="127.0.0.1",
        port=port,
        lifespan="off",  # the test owns the runtime
        log_config=None,
        access_log=False,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"ws://127.0.0.1:{port}/graphql"
    server.should_exit = True
    await task
    await runtime.pubsub.close()


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), RECEIVE_TIMEOUT))
    return message


@contextlib.asynccontextmanager
async def graphql_ws(
    url: str, payload: dict[str, Any] | None = None
) -> AsyncIterator[ClientConnection]:
    """An acknowledged graphql-transport-ws connection."""
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], proxy=None) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        await send(ws, {"type": "connection_init", "payload": payload or {}})
        assert await receive(ws) == {"type": "connection_ack"}
        yield ws


async def subscribe_goals(runtime: Runtime, ws: ClientConnection, user: User) -> None:
    await send(ws, {"id": "goals", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
    await subscribed(runtime.pubsub, user_channel(user.id))


def bearer(token: str) -> dict[str, Any]:
    return {"authorization": f"Bearer {token}"}


def expected_event(user_goal_id: uuid.UUID, current: int) -> dict[str, Any]:
    return {
        "id": "goals",
        "type": "next",
        "payload": {
            "data": {
                "goalProgress": {
                    "kind": "PROGRESS",
                    "goalId": to_base64("UserGoal", str(user_goal_id)),
                    "templateId": "comfort-5",
                    "status": "ACTIVE",
                    "current": current,
                    "total": 5,
                    "at": "2025-02-01T00:04:05+00:00",
                }
            }
        },
    }


def active_subscriptions() -> float:
    sample = REGISTRY.get_sample_value(
        "engage_subscriptions_active", {"subscription": "goalProgress"}
    )
    return sample or 0.0


async def _equals(value: float, expected: float) -> bool:
    return value == expected


async def test_a_user_receives_the_events_of_their_channel(runtime: Runtime, ws_url: str) -> None:
    user = await create_user(runtime)
    goal_id = uuid.uuid4()
    before = active_subscriptions()
    async with graphql_ws(ws_url, bearer(await access_token(runtime, user))) as ws:
        await subscribe_goals(runtime, ws, user)
        assert active_subscriptions() == before + 1
        if runtime.settings.is_sqlite:  # the stream holds no database connection
            assert runtime.engine.pool.checkedout() == 0  # type: ignore[attr-defined]

        channel = user_channel(user.id)
        await runtime.pubsub.publish(channel, {"type": "achievement-toast", "ignored": True})
        await runtime.pubsub.publish(channel, goal_message(goal_id, 1))
        assert await receive(ws) == expected_event(goal_id, 1)

        async with runtime.session_factory() as session:
            publish_after_commit(session, channel, goal_message(goal_id, 2))
            await session.commit()
        await publish_committed(runtime.pubsub, session)
        assert await receive(ws) == expected_event(goal_id, 2)

        await send(ws, {"id": "goals", "type": "complete"})
        await subscribed(runtime.pubsub, channel, present=False)
    assert active_subscriptions() == before


async def test_another_users_events_are_not_delivered(runtime: Runtime, ws_url: str) -> None:
    alice, bob = await create_user(runtime), await create_user(runtime)
    alice_goal, bob_goal = uuid.uuid4(), uuid.uuid4()
    before = active_subscriptions()
    async with (
        graphql_ws(ws_url, bearer(await access_token(runtime, alice))) as alice_ws,
        graphql_ws(ws_url, bearer(await access_token(runtime, bob))) as bob_ws,
    ):
        await subscribe_goals(runtime, alice_ws, alice)
        await subscribe_goals(runtime, bob_ws, bob)
        await runtime.pubsub.publish(user_channel(bob.id), goal_message(bob_goal, 4))
        await runtime.pubsub.publish(user_channel(alice.id), goal_message(alice_goal, 1))
        # Published in this order on one connection: had Bob's event reached Alice, it would
        # come first.
        assert await receive(alice_ws) == expected_event(alice_goal, 1)
        assert await receive(bob_ws) == expected_event(bob_goal, 4)
    # Closing the connections without `complete` ends their streams and unsubscribes too.
    await subscribed(runtime.pubsub, user_channel(alice.id), present=False)
    await subscribed(runtime.pubsub, user_channel(bob.id), present=False)
    await eventually(lambda: _equals(active_subscriptions(), before), "streams to end")


async def test_an_actor_publishes_after_its_commit(runtime: Runtime, ws_url: str) -> None:
    """Redis: the worker loop's own client. In memory: the API's MemoryPubSub, shared."""
    user = await create_user(runtime)
    goal_id = uuid.uuid4()
    worker = Worker(runtime.broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        async with graphql_ws(ws_url, bearer(await access_token(runtime, user))) as ws:
            await subscribe_goals(runtime, ws, user)
            message = emit_goal_event.message(
                user_id=str(user.id), user_goal_id=str(goal_id), current=3
            )
            runtime.broker.enqueue(message)
            assert await receive(ws) == expected_event(goal_id, 3)
    finally:
        await asyncio.to_thread(worker.stop, 5000)


@pytest.mark.parametrize("token", ["not-a-jwt", "eng_svc_unknown"])
async def test_a_refused_token_closes_the_connection_4403(
    runtime: Runtime, ws_url: str, token: str
) -> None:
    async with connect(
        ws_url, subprotocols=[Subprotocol("graphql-transport-ws")], proxy=None
    ) as ws:
        await send(ws, {"type": "connection_init", "payload": bearer(token)})
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_anonymous_connects_but_may_not_subscribe(runtime: Runtime, ws_url: str) -> None:
    async with graphql_ws(ws_url) as ws:
        await send(ws, {"id": "goals", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
        answer = await receive(ws)
    assert answer["type"] == "error" and answer["id"] == "goals"
    assert [error["extensions"]["code"] for error in answer["payload"]] == ["UNAUTHENTICATED"]


async def test_queries_are_refused_over_the_websocket(runtime: Runtime, ws_url: str) -> None:
    user = await create_user(runtime)
    async with graphql_ws(ws_url, bearer(await access_token(runtime, user))) as ws:
        await send(ws, {"id": "q", "type": "subscribe", "payload": {"query": "{ __typename }"}})
        answer = await receive(ws)
    assert answer["type"] == "error" and answer["id"] == "q"
    assert "Only subscriptions" in answer["payload"][0]["message"]


async def test_subscriptions_are_refused_over_http(runtime: Runtime, ws_url: str) -> None:
    http_url = ws_url.replace("ws://", "http://")
    async with httpx.AsyncClient() as client:
        response = await client.post(http_url, json={"query": SUBSCRIPTION})
    assert response.status_code == 200
    assert "WebSocket" in response.json()["errors"][0]["message"]
