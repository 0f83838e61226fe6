"""Entry points of the `engage worker` and `engage scheduler` processes."""

from __future__ import annotations

import asyncio
import fcntl
import importlib
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import structlog
from dramatiq import Broker, Middleware, Worker

from app import interpreter
from app.logging import configure_logging
from app.settings import Settings, get_settings

log = structlog.get_logger("engage.worker")


def setup() -> None:
    """Called by Dramatiq's CLI in every worker process: install the broker from settings."""
    from jobs.broker import build_broker, install

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    interpreter.tune(settings)
    broker = build_broker(settings)
    broker.add_middleware(FrozenStartupHeap(settings))
    broker.add_middleware(PollTimeout(settings.worker_poll_timeout_ms))
    if settings.worker_metrics_port:
        broker.add_middleware(MetricsServer(settings.worker_metrics_port))
    for middleware in _test_middleware(settings):
        broker.add_middleware(middleware)
    install(broker, settings)


def _test_middleware(settings: Settings) -> list[Middleware]:
    """Test-only, off by default: `ENGAGE_TEST_WORKER_MIDDLEWARE="module:Class,..."`.

    Adds Dramatiq middleware from outside the package to the worker's broker (the
    fault-injection test's duplicate delivery, tests/e2e/chaos_support.py). Ignored when
    ENGAGE_ENV is production.
    """
    specs = os.environ.get("ENGAGE_TEST_WORKER_MIDDLEWARE", "")
    if not specs or settings.is_production:
        return []
    loaded: list[Middleware] = []
    for spec in filter(None, (part.strip() for part in specs.split(","))):
        module_name, _, class_name = spec.partition(":")
        loaded.append(getattr(importlib.import_module(module_name), class_name)())
        log.warning("worker.test_middleware", middleware=spec)
    return loaded


class FrozenStartupHeap(Middleware):
    """Freezes the worker process's start-up heap once its threads run (app/interpreter.py)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        interpreter.freeze_startup_heap(self.settings)


class PollTimeout(Middleware):
    """Caps an idle consumer's back-off between polls at WORKER_POLL_TIMEOUT_MS.

    Dramatiq's CLI builds its Worker with the default (1 s) and has no option for it; the
    consumers are created after `before_worker_boot`, with the worker's value.
    """

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        worker.worker_timeout = self.timeout_ms


class MetricsServer(Middleware):
    """Serves /metrics for all worker processes of one `engage worker` (multiprocess mode).

    Every process writes its samples to PROMETHEUS_MULTIPROC_DIR; the first process to take
    the directory's lock serves them all on the port.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._lock_file: Any = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not directory:
            return
        lock_file = open(Path(directory) / "server.lock", "w")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock_file.close()
            return
        self._lock_file = lock_file
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(self.port, registry=registry)
        log.info("worker.metrics_server", port=self.port)


def run_worker(settings: Settings, processes: int, threads: int) -> int:
    from dramatiq.cli import main, make_argument_parser

    if settings.worker_metrics_port and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="engage-metrics-")
    arguments = make_argument_parser().parse_args(worker_arguments(settings, processes, threads))
    return int(main(arguments) or 0)


def worker_arguments(settings: Settings, processes: int, threads: int) -> list[str]:
    """The `dramatiq` command line of `engage worker`."""
    return [
        "jobs.worker:setup",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--worker-shutdown-timeout",
        str(settings.worker_shutdown_timeout_seconds * 1000),
    ]


async def run_scheduler(settings: Settings) -> int:
    from redis.asyncio import Redis

    from app.db import create_engine, create_session_factory
    from app.outbox import OutboxRelay
    from jobs.broker import build_broker, install, publisher
    from jobs.scheduler import Scheduler

    configure_logging(settings.log_level, settings.log_json)
    broker = install(build_broker(settings), settings)
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    # Ticks are rare: the relay marks each at once (no batching window).
    scheduler = Scheduler.from_settings(
        settings, factory, OutboxRelay(factory, publisher(broker)), redis
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await scheduler.run(stop)
    finally:
        await engine.dispose()
        if redis is not None:
            await redis.aclose()
        broker.close()
    return 0
