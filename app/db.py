"""Engine and session factory; the unit of work.

Services receive an `AsyncSession` and never commit: whoever opens the unit of work (the
GraphQL request, an actor, a CLI command) commits or rolls back through `transaction()`.
An async engine belongs to the event loop that created it, so every process or worker loop
builds its own with `create_engine()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.settings import Settings

SessionFactory = async_sessionmaker[AsyncSession]


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")  # first, so the pragmas below wait for locks too
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def create_engine(settings: Settings, **overrides: Any) -> AsyncEngine:
    url = make_url(settings.database_url)
    options: dict[str, Any] = {
        "echo": settings.database_echo,
        "pool_pre_ping": settings.database_pool_pre_ping,
    }
    if url.get_backend_name() == "postgresql":
        options |= {
            "pool_size": settings.database_pool_size,
            "max_overflow": 10,
            "pool_recycle": settings.database_pool_recycle_seconds,
        }
    options |= overrides
    engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
    return engine


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


@asynccontextmanager
async def transaction(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    async with factory() as session, session.begin():
        yield session
