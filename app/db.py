"""Engine and session factory; the unit of work.

Services receive an `AsyncSession` and never commit: whoever opens the unit of work (the
GraphQL request, an actor, a CLI command) commits or rolls back through `transaction()`.
An async engine belongs to the event loop that created it, so every process or worker loop
builds its own with `create_engine()`.

SQLite transactions (the embedded default), decided here for every caller:

- SQLAlchemy, not the sqlite3 driver, begins transactions (`isolation_level=None` on the
  connection, `BEGIN …` from the engine's "begin" event). The driver's legacy mode ran
  SELECTs outside any transaction and began one only at the first INSERT/UPDATE/DELETE, so a
  check and the act that followed it saw different databases.
- A unit of work (every session from `create_session_factory`) begins with `BEGIN
  IMMEDIATE`: it holds the database's one write lock from its first statement to its end.
  Units of work on one database therefore run one after another, which is what makes each
  check-then-act in the services correct on SQLite, where `SELECT … FOR UPDATE` is a no-op:
  the whole transaction is the lock. It also ends "database is locked": a deferred
  transaction that read and then wrote failed at once (SQLITE_BUSY_SNAPSHOT, no busy wait)
  when another writer had committed meanwhile; an IMMEDIATE one waits its turn at BEGIN.
- Writers wait for the lock up to `SQLITE_BUSY_TIMEOUT_MS` (PRAGMA busy_timeout, as long as
  PostgreSQL's pool checkout waits by default).
- Reads that may not pay for the write lock say so: `create_session_factory(engine,
  read_only=True)` and bare engine connections (`/readyz`) begin `BEGIN DEFERRED`, a read
  snapshot that never blocks writers and is never blocked by them (WAL). A deferred
  transaction that writes after reading can fail with "database is locked": only code that
  never writes may use one.
- PostgreSQL is untouched by all of this (READ COMMITTED, row locks where the services say).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
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
            # The operation runs in a task of its own, shielded: graphql-core cancels sibling
            # fields when one fails, and a statement cut off mid-flight leaves the connection
            # unusable (PendingRollbackError at the request's commit). A cancelled caller
            # waits for the statement to finish, then the cancellation goes on.
            inner = asyncio.ensure_future(operation(*args, **kw))
            self._holder = inner
            try:
                return await asyncio.shield(inner)
            except asyncio.CancelledError:
                if not inner.done():
                    await asyncio.wait([inner])
                raise
            finally:
                self._holder = None

    async def serialized(self, operation: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        """Run `operation` in this session's turn: work on the session's connection that
        bypasses the ORM (`app.lean`) must not interleave with its other operations."""
        return await self._serialized(operation, *args, **kw)

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


# How a SQLite transaction begins, an execution option: "IMMEDIATE" for units of work,
# "DEFERRED" for reads; None leaves the connection in autocommit (migrations/env.py, which
# sets pragmas outside any transaction and then begins its own).
SQLITE_BEGIN = "engage_sqlite_begin"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver begins nothing; see _begin_sqlite
    cursor = dbapi_connection.cursor()
    # First, so the pragmas below wait for locks too.
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    if mode is not None:
        connection.exec_driver_sql(f"BEGIN {mode}")


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
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
    return engine


def upsert_insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """`INSERT` for the session's database, with `on_conflict_do_nothing()` and friends:
    PostgreSQL in production, SQLite in the embedded default."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def serialize_on(session: AsyncSession, key: str) -> None:
    """Make units of work that name the same `key` take turns until this one ends: for a
    check-then-insert the database's indexes can't back (a name unique in any case, say).

    PostgreSQL: a transaction-level advisory lock on a 64-bit hash of the key. SQLite: a
    no-op, the unit of work holds the write lock already (see the module docstring).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


def create_session_factory(engine: AsyncEngine, *, read_only: bool = False) -> SessionFactory:
    """Sessions for units of work; `read_only=True` for reads that never write, which on
    SQLite then don't take the write lock (see the module docstring)."""
    bind = engine.execution_options(**{SQLITE_BEGIN: "DEFERRED" if read_only else "IMMEDIATE"})
    return async_sessionmaker(
        bind, class_=SerializedSession, expire_on_commit=False, autoflush=True
    )


@asynccontextmanager
async def read_aside(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A read that must not hold `session`'s connection, nor SQLite's write lock, through
    the slow work that follows it off the database (a password hash, say).

    Yields a short read-only session on `session`'s engine, closed (rolled back: it wrote
    nothing) when the block ends, so the unit of work begins only at its next statement.
    Yields `session` itself when its unit of work has begun already (what it wrote must be
    seen) or it is bound to a connection rather than an engine (the tests' transaction).
    The caller re-reads under the unit of work whatever its decision rests on.
    """
    bind = session.bind
    if session.in_transaction() or not isinstance(bind, AsyncEngine):
        yield session
        return
    reader = AsyncSession(bind.execution_options(**{SQLITE_BEGIN: "DEFERRED"}))
    async with reader:
        yield reader


@asynccontextmanager
async def transaction(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    async with factory() as session, session.begin():
        yield session
