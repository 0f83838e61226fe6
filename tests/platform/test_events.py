"""After-commit domain events: sent when the unit of work commits, never after a rollback."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from starlette.requests import Request

from app.events import (
    discard_pending_events,
    publish_after_commit,
    publish_committed,
    take_committed_events,
    user_channel,
)
from app.runtime import Runtime
from schema.context import Context
from tests.platform.test_pubsub import subscribed

QUIET_SECONDS = 0.3


def test_user_channel() -> None:
    user_id = uuid.UUID("6f1c1ae4-8f5b-4b6f-9d0c-2c1f7f0d1a2b")
    assert user_channel(user_id) == "engage:user:6f1c1ae4-8f5b-4b6f-9d0c-2c1f7f0d1a2b"


async def test_events_wait_for_the_commit(runtime: Runtime) -> None:
    async with runtime.session_factory() as session:
        publish_after_commit(session, "c", {"n": 1})
        publish_after_commit(session, "c", {"n": 2})
        await session.commit()
    assert take_committed_events(session) == [("c", {"n": 1}), ("c", {"n": 2})]
    assert take_committed_events(session) == []


async def test_a_rolled_back_transaction_sends_nothing(runtime: Runtime) -> None:
    async with runtime.session_factory() as session:
        publish_after_commit(session, "c", {"n": 1})  # before the transaction began
        await session.execute(text("SELECT 1"))
        publish_after_commit(session, "c", {"n": 2})
        await session.rollback()
    assert take_committed_events(session) == []

    async with runtime.session_factory() as session:
        publish_after_commit(session, "c", {"n": 2})
        discard_pending_events(session)
        await session.commit()
    assert take_committed_events(session) == []


async def test_a_rolled_back_savepoint_takes_its_events_along(runtime: Runtime) -> None:
    async with runtime.session_factory() as session:
        await session.begin()
        publish_after_commit(session, "c", {"n": "before"})
        savepoint = await session.begin_nested()
        publish_after_commit(session, "c", {"n": "in the rolled-back savepoint"})
        await savepoint.rollback()
        async with session.begin_nested():
            publish_after_commit(session, "c", {"n": "in a released savepoint"})
        publish_after_commit(session, "c", {"n": "after"})
        await session.commit()
    assert [message["n"] for _, message in take_committed_events(session)] == [
        "before",
        "in a released savepoint",
        "after",
    ]


async def test_a_released_savepoint_of_a_rolled_back_transaction_sends_nothing(
    runtime: Runtime,
) -> None:
    async with runtime.session_factory() as session:
        await session.begin()
        async with session.begin_nested():
            publish_after_commit(session, "c", {"n": 1})
        await session.rollback()
        assert take_committed_events(session) == []
        # The next transaction of the same session commits only its own event: the released
        # savepoint's event went with the rollback and does not linger for a later commit.
        await session.begin()
        async with session.begin_nested():
            publish_after_commit(session, "c", {"n": 2})
        await session.commit()
    assert take_committed_events(session) == [("c", {"n": 2})]


async def test_an_unserialisable_message_fails_in_the_transaction(runtime: Runtime) -> None:
    async with runtime.session_factory() as session:
        with pytest.raises(TypeError):
            publish_after_commit(session, "c", {"when": object()})


def _context(runtime: Runtime) -> Context:
    request = Request({"type": "http", "method": "POST", "path": "/graphql", "headers": []})
    return Context(request=request, runtime=runtime, request_id="test")


@pytest.fixture
async def inbox(runtime: Runtime) -> AsyncIterator[tuple[str, AsyncIterator[dict[str, object]]]]:
    channel = user_channel(uuid.uuid4())
    async with runtime.pubsub.subscribe(channel) as messages:
        await subscribed(runtime.pubsub, channel)
        yield channel, messages
    await runtime.pubsub.close()


async def test_the_request_unit_of_work_publishes_after_commit_only(
    runtime: Runtime, inbox: tuple[str, AsyncIterator[dict[str, object]]]
) -> None:
    channel, messages = inbox
    rolled_back = _context(runtime)
    publish_after_commit(rolled_back.session, channel, {"n": "rolled back"})
    await rolled_back.finish(commit=False)

    committed = _context(runtime)
    publish_after_commit(committed.session, channel, {"n": "committed"})
    await committed.session.flush()
    with pytest.raises(asyncio.TimeoutError):  # not before the commit
        await asyncio.wait_for(anext(messages), QUIET_SECONDS)
    await committed.finish(commit=True)
    assert await asyncio.wait_for(anext(messages), 5) == {"n": "committed"}
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(anext(messages), QUIET_SECONDS)


async def test_publish_committed_sends_in_one_batch(
    runtime: Runtime, inbox: tuple[str, AsyncIterator[dict[str, object]]]
) -> None:
    channel, messages = inbox
    async with runtime.session_factory() as session:
        for n in range(3):
            publish_after_commit(session, channel, {"n": n})
        await session.commit()
    assert await publish_committed(runtime.pubsub, session) == 3
    assert [await asyncio.wait_for(anext(messages), 5) for _ in range(3)] == [
        {"n": 0},
        {"n": 1},
        {"n": 2},
    ]
