"""How enqueued jobs reach the table (both backends): one multi-row INSERT as the unit of
work commits, nothing on rollback, nothing from a savepoint that rolled back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app import outbox
from app.models.outbox import OutboxMessage
from app.runtime import Runtime

ACTOR = "tests.outbox_writes"


@pytest.fixture(autouse=True)
def _actor() -> None:
    outbox.register_actor(ACTOR, "default")


@contextmanager
def _inserts(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX_MESSAGES"):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _stored(runtime: Runtime) -> set[str]:
    async with runtime.session_factory() as session:
        rows = await session.scalars(select(OutboxMessage).where(OutboxMessage.actor == ACTOR))
        return {row.kwargs["n"] for row in rows}


async def test_a_unit_of_work_writes_its_jobs_in_one_statement_at_commit(
    runtime: Runtime,
) -> None:
    with _inserts(runtime.engine) as inserts:
        async with runtime.session_factory() as session:
            ids = [outbox.enqueue(session, ACTOR, n=str(n)) for n in range(3)]
            assert inserts == []  # nothing written before the commit
            await session.commit()
        assert len(inserts) == 1
    assert [e.id for e in outbox.take_committed(session)] == ids
    assert await _stored(runtime) == {"0", "1", "2"}


async def test_a_rolled_back_unit_of_work_writes_and_relays_nothing(runtime: Runtime) -> None:
    async with runtime.session_factory() as session:
        outbox.enqueue(session, ACTOR, n="gone")
        await session.rollback()
    assert outbox.take_committed(session) == []
    assert await _stored(runtime) == set()


async def test_a_job_from_a_rolled_back_savepoint_is_dropped_with_it(runtime: Runtime) -> None:
    async with runtime.session_factory() as session:
        kept = outbox.enqueue(session, ACTOR, n="kept")
        try:
            async with session.begin_nested():
                outbox.enqueue(session, ACTOR, n="rolled back")
                raise RuntimeError("the savepoint's work fails")
        except RuntimeError:
            pass
        async with session.begin_nested():
            released = outbox.enqueue(session, ACTOR, n="released")
        await session.commit()
    assert [e.id for e in outbox.take_committed(session)] == [kept, released]
    assert await _stored(runtime) == {"kept", "released"}


async def test_a_session_without_jobs_writes_none(runtime: Runtime) -> None:
    with _inserts(runtime.engine) as inserts:
        async with runtime.session_factory() as session:
            await session.scalar(select(func.count()).select_from(OutboxMessage))
            await session.commit()
    assert inserts == []
    assert outbox.take_committed(session) == []
