"""The embedded mode's background: a Dramatiq worker and the scheduler inside the API process."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from dramatiq import Broker, Worker
from redis.asyncio import Redis

from app.db import SessionFactory
from app.outbox import OutboxRelay
from app.settings import Settings
from jobs.scheduler import Scheduler

log = structlog.get_logger("engage.jobs")


class InProcessJobs:
    def __init__(
        self,
        settings: Settings,
        broker: Broker,
        session_factory: SessionFactory,
        relay: OutboxRelay,
        redis: Redis | None,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.session_factory = session_factory
        self.relay = relay
        self.redis = redis
        self.worker: Worker | None = None
        self._stop = asyncio.Event()
        self._scheduler_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.settings.jobs_run_in_process:
            self.worker = Worker(
                self.broker,
                worker_threads=self.settings.worker_threads,
                worker_timeout=self.settings.worker_poll_timeout_ms,
            )
            self.worker.start()
            log.info("jobs.worker_started", threads=self.settings.worker_threads)
        if self.settings.scheduler_runs_in_process:
            scheduler = Scheduler.from_settings(
                self.settings, self.session_factory, self.relay, self.redis
            )
            self._scheduler_task = asyncio.create_task(scheduler.run(self._stop))

    async def stop(self) -> None:
        self._stop.set()
        if self._scheduler_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler_task
        if self.worker is not None:
            worker, self.worker = self.worker, None
            timeout_ms = self.settings.worker_shutdown_timeout_seconds * 1000
            await asyncio.to_thread(worker.stop, timeout_ms)
