"""The embedded default's transactions (SQLite, `app.db`): units of work take turns from
their first statement; reads that opt out of the write lock, and `/readyz`, don't wait.

Ordering, not timing: a unit of work that should be waiting must still be waiting after a
later, lock-free read on another connection has completed.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from app.db import create_session_factory
from app.models.identity import User
from app.runtime import Runtime
from tests.conftest import make_client

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


async def _count_users(runtime: Runtime, *, read_only: bool = False) -> int:
    factory = create_session_factory(runtime.engine, read_only=read_only)
    async with factory() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_a_unit_of_work_waits_at_its_first_read_for_the_one_before(
    committing_sqlite_runtime: Runtime,
) -> None:
    runtime = committing_sqlite_runtime
    async with runtime.session_factory() as first:
        assert await first.scalar(select(func.count()).select_from(User)) == 0
        second = asyncio.ensure_future(_count_users(runtime))  # a unit of work: it must wait

        assert await _count_users(runtime, read_only=True) == 0  # a read that doesn't wait
        assert not second.done()

        first.add(User(email="first@example.com", roles=["USER"]))
        await first.commit()
    # The second began after the first ended, so its first read already sees the user.
    assert await second == 1


async def test_readyz_answers_while_a_unit_of_work_holds_the_write_lock(
    committing_sqlite_runtime: Runtime,
) -> None:
    runtime = committing_sqlite_runtime
    async with make_client(runtime) as client, runtime.session_factory() as holder:
        await holder.scalar(select(func.count()).select_from(User))
        ready = await client.get("/readyz")
        await holder.rollback()
    assert ready.status_code == 200, ready.text
