"""Test fixtures: real PostgreSQL and Redis, and the embedded SQLite mode.

Every API test runs once per backend:
- `postgresql`: a fresh database per run on the configured server, migrated once, each test in
  a transaction that is rolled back (the app's commits become savepoints); Redis for rate
  limits (a dedicated logical database, flushed per test). This is the production shape.
- `sqlite`: the embedded default: each test gets a copy of a migrated SQLite file, no Redis.

The servers must be reachable: an unreachable PostgreSQL or Redis fails the run instead of
skipping it. Choose backends with ENGAGE_TEST_BACKENDS=postgresql,sqlite.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from app.auth import AccessTokenCodec
from app.db import SerializedSession, create_engine
from app.main import create_app
from app.migrate import upgrade
from app.models import Base
from app.ratelimit import RedisRateLimiter
from app.runtime import Runtime
from app.settings import Settings

PG_SERVER_URL = os.environ.get(
    "ENGAGE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("ENGAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = os.environ.get("ENGAGE_TEST_BACKENDS", "postgresql,sqlite").replace(" ", "").split(",")
TEST_JWT_SECRET = "test-secret-0123456789abcdef0123456789abcdef"


def test_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ENGAGE_ENV": "test",
        "JWT_SECRET": TEST_JWT_SECRET,
        "LOG_JSON": True,
        "LOG_LEVEL": "WARNING",
        # Mark outbox rows sent inline: a background marker would share the test's connection.
        "OUTBOX_MARK_SENT_WINDOW_MS": 0,
    }
    values.update(overrides)
    return Settings(**values)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _create_pg_database() -> str:
    name = f"engage_test_{uuid.uuid4().hex[:12]}"
    try:
        connection = await asyncpg.connect(_asyncpg_dsn(PG_SERVER_URL), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_SERVER_URL}: {exc}")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)


async def _drop_pg_database(url: str) -> None:
    name = make_url(url).database
    connection = await asyncpg.connect(_asyncpg_dsn(PG_SERVER_URL), timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@dataclass
class Backend:
    """What a backend's tests share for the whole run."""

    name: str
    database_url: str
    engine: AsyncEngine | None = None  # PostgreSQL: one engine, a transaction per test
    redis: Redis | None = None
    sqlite_template: Path | None = None


@pytest.fixture(scope="session", params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    if request.param == "postgresql":
        url = await _create_pg_database()
        redis = Redis.from_url(REDIS_URL)
        try:
            await redis.ping()
        except (OSError, RedisError) as exc:
            pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
        try:
            await asyncio.to_thread(upgrade, test_settings(DATABASE_URL=url))
            engine = create_engine(test_settings(DATABASE_URL=url))
            yield Backend("postgresql", url, engine=engine, redis=redis)
            await engine.dispose()
        finally:
            await redis.aclose()
            await _drop_pg_database(url)
        return
    template = tmp_path_factory.mktemp("sqlite") / "template.db"
    url = f"sqlite+aiosqlite:///{template}"
    await asyncio.to_thread(upgrade, test_settings(DATABASE_URL=url))
    yield Backend("sqlite", url, sqlite_template=template)


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    if backend.sqlite_template is None:
        return test_settings(DATABASE_URL=backend.database_url, REDIS_URL=REDIS_URL)
    copy = tmp_path / "engage.db"
    shutil.copyfile(backend.sqlite_template, copy)
    return test_settings(DATABASE_URL=f"sqlite+aiosqlite:///{copy}")


@pytest.fixture
async def runtime(settings: Settings, backend: Backend) -> AsyncIterator[Runtime]:
    """A Runtime whose sessions join a per-test transaction (PostgreSQL) or file (SQLite)."""
    if backend.engine is not None and backend.redis is not None:
        await backend.redis.flushdb()
        async with backend.engine.connect() as connection:
            transaction = await connection.begin()
            yield _runtime(settings, backend.engine, connection, backend.redis)
            await transaction.rollback()
        return
    runtime = Runtime.build(settings)
    yield runtime
    await runtime.engine.dispose()


def _runtime(
    settings: Settings, engine: AsyncEngine, connection: AsyncConnection, redis: Redis
) -> Runtime:
    return Runtime.build(
        settings,
        engine=engine,
        session_factory=async_sessionmaker(
            bind=connection,
            class_=SerializedSession,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        ),
        limiter=RedisRateLimiter(redis, prefix=f"engage:test:{uuid.uuid4().hex}:"),
        redis=redis,
    )


def make_client(runtime: Runtime, **setting_overrides: Any) -> httpx.AsyncClient:
    """An HTTP client for an app on `runtime`, optionally with some settings changed."""
    runtime = _Unclosed(runtime)
    if setting_overrides:
        runtime.settings = runtime.settings.model_copy(update=setting_overrides)
        runtime.codec = AccessTokenCodec(runtime.settings)
    app = create_app(runtime.settings, runtime=runtime)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://engage.test")


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(runtime) as http:
        yield http


class _Unclosed(Runtime):
    """The test owns the runtime; the app must not dispose of it."""

    def __init__(self, runtime: Runtime) -> None:
        self.__dict__.update(runtime.__dict__)

    async def close(self) -> None:
        return None


@pytest.fixture
async def committing_runtime(backend: Backend, settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime whose requests commit for real, each on its own connection (PostgreSQL
    only: concurrency tests); the tables are emptied afterwards."""
    assert backend.redis is not None, "committing_runtime needs the PostgreSQL backend"
    await backend.redis.flushdb()
    engine = create_engine(settings, pool_size=40, max_overflow=10)
    runtime = Runtime.build(settings, engine=engine, redis=backend.redis)
    yield runtime
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    await engine.dispose()


@pytest.fixture
async def committing_sqlite_runtime(backend: Backend, settings: Settings) -> AsyncIterator[Runtime]:
    """The embedded default under concurrency: a runtime on this test's own copy of the
    migrated SQLite file, whose requests commit for real, each on its own pooled connection
    (SQLite only; `committing_runtime` is its PostgreSQL twin). The file goes with tmp_path."""
    assert backend.sqlite_template is not None, "committing_sqlite_runtime needs SQLite"
    async with _sqlite_runtime(settings) as runtime:
        yield runtime


@asynccontextmanager
async def _sqlite_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(settings)  # the settings name the test's own copy of the file
    try:
        yield runtime
    finally:
        await runtime.engine.dispose()


@pytest.fixture
async def racing_runtime(backend: Backend, settings: Settings) -> AsyncIterator[Runtime]:
    """A committing runtime on the test's backend, for concurrency tests that run on both:
    `committing_sqlite_runtime` on SQLite; on PostgreSQL `committing_runtime`'s shape."""
    if backend.sqlite_template is not None:
        async with _sqlite_runtime(settings) as runtime:
            yield runtime
        return
    # redis-py's default pool refuses a 101st concurrent connection ("Too many connections");
    # a flood of requests here waits for one instead.
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(REDIS_URL, timeout=60))
    await redis.flushdb()
    engine = create_engine(settings, pool_size=40, max_overflow=10)
    yield Runtime.build(settings, engine=engine, redis=redis)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    await engine.dispose()
    await redis.aclose()
