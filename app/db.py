"""Engine and session factory; the unit of work.

Services receive an `AsyncSession` and never commit: whoever opens the unit of work (the
GraphQL request, an actor, a CLI command) commits or rolls back through `transaction()`.
An async engine belongs to the event loop that created it, so every process or worker loop
builds its own with `create_engine()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.settings import Settings

T = TypeVar("T")


class SerializedSession(AsyncSession):
    """An AsyncSession whose operations wait their turn instead of failing.

    GraphQL resolves sibling fields concurrently (`plans` next to `viewer`, two fields of one
    object), and they share the request's session, which refuses concurrent operations
    ("This session is provisioning a new connection"). Each operation here holds an
    asyncio lock for its duration; the lock is re-entrant per task, because AsyncSession's
    own methods call each other (`scalars` awaits `execute`). DataLoaders still batch:
    they run one query for many sibling fields.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None

    async def _serialized(self, operation: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        task = asyncio.current_task()
        if task is not None and self._holder is task:
            return await operation(*args, **kw)
        async with self._turn:
            self._holder = task
            try:
                return await operation(*args, **kw)
            finally:
                self._holder = None

    async def execute(self, *args: Any, **kw: Any) -> Any:
        return await self._serialized(super().execute, *args, **kw)

    async def scalar(self, *args: Any, **kw: Any) -> Any:
        return await self._serialized(super().scalar, *args, **kw)

    async def scalars(self, *args: Any, **kw: Any) -> Any:
        return await self._serialized(super().scalars, *args, **kw)

    async def get(self, *args: Any, **kw: Any) -> Any:
        return await self._serialized(super().get, *args, **kw)

    async def flush(self, *args: Any, **kw: Any) -> None:
        await self._serialized(super().flush, *args, **kw)

    async def refresh(self, *args: Any, **kw: Any) -> None:
        await self._serialized(super().refresh, *args, **kw)

    async def delete(self, *args: Any, **kw: Any) -> None:
        await self._serialized(super().delete, *args, **kw)

    async def run_sync(self, *args: Any, **kw: Any) -> Any:
        return await self._serialized(super().run_sync, *args, **kw)


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
        "json_deserializer": orjson.loads,  # JSON columns are read on every goals read
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


def upsert_insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """`INSERT` for the session's database, with `on_conflict_do_nothing()` and friends:
    PostgreSQL in production, SQLite in the embedded default."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(
        engine, class_=SerializedSession, expire_on_commit=False, autoflush=True
    )


@asynccontextmanager
async def transaction(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    async with factory() as session, session.begin():
        yield session
