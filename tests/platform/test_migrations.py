"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL.

The PostgreSQL variant needs the server at 127.0.0.1:5432 (trust auth); when it is not
reachable the test fails rather than skips, so a green run always means both dialects.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from app.db import create_engine
from app.migrate import CONTEXT_OPTIONS, alembic_config, upgrade
from app.models import Base
from app.settings import Settings

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_ADMIN_USERS = ("postgres", "root")


def _settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, _env_file=None)


async def _pg_admin_connection() -> tuple[asyncpg.Connection, str]:
    errors: list[Exception] = []
    for user in PG_ADMIN_USERS:
        try:
            connection = await asyncpg.connect(
                host=PG_HOST, port=PG_PORT, user=user, database="postgres", timeout=5
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            errors.append(exc)
        else:
            return connection, user
    raise ConnectionError(f"PostgreSQL at {PG_HOST}:{PG_PORT} refused every user: {errors}")


@asynccontextmanager
async def _postgres_database() -> AsyncIterator[str]:
    """A fresh, uniquely named database, dropped afterwards; yields its SQLAlchemy URL."""
    admin, user = await _pg_admin_connection()
    name = f"engage_mig_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Settings]:
    if request.param == "sqlite":
        # A missing parent directory is part of the test: upgrade() must create it.
        yield _settings(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'engage.db'}")
        return
    async with _postgres_database() as url:
        yield _settings(url)


async def _run_sync(settings: Settings, fn: Any, *args: Any) -> Any:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn, *args)
    finally:
        await engine.dispose()


def _compare(connection: Connection, metadata: sa.MetaData) -> list[Any]:
    context = MigrationContext.configure(connection, opts=dict(CONTEXT_OPTIONS))
    return compare_metadata(context, metadata)


def _table_names(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _diff_kinds(diff: list[Any]) -> set[str]:
    """Operation names of a diff; column modifications come nested in lists."""

    def entries() -> Iterator[tuple[Any, ...]]:
        for item in diff:
            yield from item if isinstance(item, list) else [item]

    return {entry[0] for entry in entries()}


def _drifted_metadata() -> sa.MetaData:
    """The models plus an extra column, a changed type and a changed server default."""
    metadata = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    users = metadata.tables["users"]
    users.append_column(sa.Column("nickname", sa.String(50)))
    users.c.email.type = sa.String(300)
    users.c.locale.server_default = sa.DefaultClause("en")
    return metadata


async def test_migrations_match_models(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings)

    assert await _run_sync(settings, _compare, Base.metadata) == []


async def test_comparison_detects_drift(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings)

    diff = await _run_sync(settings, _compare, _drifted_metadata())

    assert _diff_kinds(diff) == {"add_column", "modify_type", "modify_default"}


async def test_downgrade_to_base_and_upgrade_again(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings)

    await asyncio.to_thread(command.downgrade, alembic_config(settings), "base")
    assert await _run_sync(settings, _table_names) == {"alembic_version"}

    await asyncio.to_thread(upgrade, settings)
    assert await _run_sync(settings, _compare, Base.metadata) == []


async def test_upgrade_refuses_a_running_event_loop(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="to_thread"):
        upgrade(_settings(f"sqlite+aiosqlite:///{tmp_path / 'engage.db'}"))
