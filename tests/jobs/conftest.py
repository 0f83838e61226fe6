"""Fixtures for the job system: committing sessions, a Redis broker, a real Dramatiq worker.

These tests commit for real (the worker reads what the producer committed), so each starts
from flushed Redis and truncates every table afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from dramatiq import Worker
from prometheus_client import REGISTRY
from sqlalchemy import text

from app.db import create_engine
from app.models import Base
from app.runtime import Runtime
from app.settings import Settings
from tests.conftest import Backend
from tests.jobs import actors

WORKER_STOP_TIMEOUT_MS = 5000


@pytest.fixture
async def jobs_runtime(backend: Backend, settings: Settings) -> AsyncIterator[Runtime]:
    assert backend.redis is not None, "job tests run on PostgreSQL + Redis"
    await backend.redis.flushdb()
    settings = settings.model_copy(
        update={
            "job_min_backoff_ms": 200,
            "job_max_backoff_ms": 5000,
            "worker_threads": 4,
            "schedules": {},
            "jobs_in_process": False,
            "scheduler_in_process": False,
        }
    )
    engine = create_engine(settings, pool_size=8)
    runtime = Runtime.build(settings, engine=engine, redis=backend.redis)
    actors.attempts.clear()
    actors.healed.clear()
    actors.contexts.clear()
    yield runtime
    runtime.broker.flush_all()
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    await engine.dispose()


@pytest.fixture
def worker(jobs_runtime: Runtime) -> Iterator[Worker]:
    """A real Dramatiq worker consuming the Redis broker, stopped with a short timeout."""
    worker = Worker(jobs_runtime.broker, worker_threads=4, worker_timeout=50)
    worker.start()
    yield worker
    worker.stop(timeout=WORKER_STOP_TIMEOUT_MS)


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 15.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def metric(name: str, actor: str) -> float:
    return REGISTRY.get_sample_value(name, {"actor": actor}) or 0.0
