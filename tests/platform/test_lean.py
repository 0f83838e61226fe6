"""The lean data path (app/lean.py) on both backends: the values Core would return, the
session's transaction (even as the first statement of a unit of work), its turn-taking."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import bindparam, delete, func, insert, select, update

from app.lean import HotStatement
from app.models.base import utcnow
from app.models.identity import User, UserStatus
from app.models.outbox import OutboxMessage
from app.runtime import Runtime
from tests.factories.identity import create_user

USER = HotStatement(
    select(User.id, User.status, User.roles, User.locale, User.created_at, User.email).where(
        User.id == bindparam("user_id")
    )
)
ACTIVE_AMONG = HotStatement(
    select(func.count())
    .select_from(User)
    .where(User.status.in_([UserStatus.ACTIVE]), User.id == bindparam("user_id"))
)
JOB = HotStatement(
    insert(OutboxMessage)
    .values(
        id=bindparam("id"),
        actor="system.ping",
        queue="default",
        kwargs=bindparam("kwargs"),
        created_at=bindparam("now"),
        publish_attempts=0,
    )
    .returning(OutboxMessage.id, OutboxMessage.kwargs)
)
BLOCK = HotStatement(
    update(User).where(User.id == bindparam("user_id")).values(status=UserStatus.BLOCKED)
)


async def test_rows_carry_the_values_core_returns(runtime: Runtime) -> None:
    user = await create_user(runtime)
    async with runtime.session_factory() as session:
        lean = await USER.one_or_none(session, user_id=user.id)
        core = (await session.execute(USER.statement, {"user_id": user.id})).one()
    assert tuple(lean) == tuple(core)
    assert lean.status is UserStatus.ACTIVE and isinstance(lean.id, uuid.UUID)
    assert lean.roles == ["USER"] and lean.created_at.tzinfo is not None
    assert lean._fields == ("id", "status", "roles", "locale", "created_at", "email")


async def test_constant_in_lists_and_a_missing_row(runtime: Runtime) -> None:
    user = await create_user(runtime)
    async with runtime.session_factory() as session:
        assert await ACTIVE_AMONG.scalar(session, user_id=user.id) == 1
        assert await ACTIVE_AMONG.scalar(session, user_id=uuid.uuid4()) == 0
        assert await USER.one_or_none(session, user_id=uuid.uuid4()) is None


async def test_writes_return_their_rows_and_counts(runtime: Runtime) -> None:
    user = await create_user(runtime)
    async with runtime.session_factory() as session:
        written = await JOB.one_or_none(
            session, id=uuid.uuid4(), kwargs={"nested": [1, "two"]}, now=utcnow()
        )
        assert written.kwargs == {"nested": [1, "two"]} and isinstance(written.id, uuid.UUID)
        assert await BLOCK.execute(session, user_id=user.id) == 1
        assert await BLOCK.execute(session, user_id=uuid.uuid4()) == 0
        assert (await USER.one_or_none(session, user_id=user.id)).status is UserStatus.BLOCKED
        stored = await session.scalar(
            select(OutboxMessage.kwargs).where(OutboxMessage.id == written.id)
        )
    assert stored == {"nested": [1, "two"]}


async def test_a_first_statement_joins_the_unit_of_work_and_rolls_back_with_it(
    racing_runtime: Runtime,
) -> None:
    user = await create_user(racing_runtime)
    async with racing_runtime.session_factory() as session:
        assert await BLOCK.execute(session, user_id=user.id) == 1  # the first statement
        await session.rollback()
    async with racing_runtime.session_factory() as session:
        assert (await USER.one_or_none(session, user_id=user.id)).status is UserStatus.ACTIVE
        assert await BLOCK.execute(session, user_id=user.id) == 1
        await session.commit()
    async with racing_runtime.session_factory() as session:
        assert (await USER.one_or_none(session, user_id=user.id)).status is UserStatus.BLOCKED
        await session.execute(delete(User).where(User.id == user.id))
        await session.commit()


async def test_concurrent_fields_sharing_a_session_take_turns(runtime: Runtime) -> None:
    users = [await create_user(runtime) for _ in range(4)]
    async with runtime.session_factory() as session:
        found = await asyncio.gather(
            *(USER.one_or_none(session, user_id=u.id) for u in users),
            session.scalar(select(func.count()).select_from(User)),
        )
    assert [row.id for row in found[:4]] == [u.id for u in users]
    assert found[4] >= 4


def test_a_runtime_in_list_is_refused() -> None:
    ids = HotStatement(select(User.id).where(User.id.in_(bindparam("ids", expanding=True))))
    from sqlalchemy.dialects import postgresql

    with pytest.raises(ValueError, match="ANY"):
        ids.compiled(postgresql.asyncpg.dialect(), {"ids": [uuid.uuid4()]})  # type: ignore[attr-defined]


async def test_extra_parameters_named_like_columns_are_ignored_on_both_backends(
    runtime: Runtime,
) -> None:
    user = await create_user(runtime)
    async with runtime.session_factory() as session:
        assert await BLOCK.execute(session, user_id=user.id, locale="xx", email="x@y.z") == 1
        row = await USER.one_or_none(session, user_id=user.id)
    assert row.status is UserStatus.BLOCKED
    assert (row.locale, row.email) == (user.locale, user.email)
