"""Dramatiq middleware: job logs and metrics, dead letters, finished messages, the worker
loop's lifecycle."""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from typing import Any

import structlog
from dramatiq import Broker, Message, Middleware, Worker
from dramatiq.asyncio import EventLoopThread, get_event_loop_thread
from dramatiq.broker import MessageProxy

from app.metrics import (
    JOB_DURATION,
    JOBS_DEAD_LETTERED,
    JOBS_ENQUEUED,
    JOBS_FAILED,
    JOBS_PROCESSED,
    JOBS_RETRIED,
)
from app.services.operations.jobs import record_failure
from jobs.runtime import dispose_runtime, job_runtime, unit_of_work

log = structlog.get_logger("engage.jobs")

_LOG_KEYS = ("message_id", "actor", "request_id")


class JobObservability(Middleware):
    """Counts and times every message; binds its id and originating request id to the logs."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def after_enqueue(self, broker: Broker, message: Message[Any], delay: int) -> None:
        JOBS_ENQUEUED.labels(message.actor_name).inc()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        with self._lock:
            self._started[message.message_id] = time.perf_counter()
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id,
            actor=message.actor_name,
            request_id=message.options.get("request_id"),
        )

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            started = self._started.pop(message.message_id, None)
        actor = message.actor_name
        if started is not None:
            JOB_DURATION.labels(actor).observe(time.perf_counter() - started)
        if exception is None:
            JOBS_PROCESSED.labels(actor).inc()
        else:
            JOBS_FAILED.labels(actor).inc()
            if message.failed:
                JOBS_DEAD_LETTERED.labels(actor).inc()
                log.error("job.dead_lettered", error=repr(exception))
            else:
                JOBS_RETRIED.labels(actor).inc()
                log.warning(
                    "job.retry", error=repr(exception), retries=message.options.get("retries")
                )
        structlog.contextvars.unbind_contextvars(*_LOG_KEYS)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        with self._lock:
            self._started.pop(message.message_id, None)
        structlog.contextvars.unbind_contextvars(*_LOG_KEYS)


class DeadLetters(Middleware):
    """Stores messages that exhausted their retries in `job_failures`.

    Must come before Retries in the middleware list: `after_*` hooks run in reverse order.
    """

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or not message.failed:
            return
        trace = message.options.get("traceback") or "".join(traceback.format_exception(exception))
        try:
            _loop_thread().run_coroutine(_store_failure(message, exception, trace))
        except Exception:
            # Not finished either: the outbox publishes it again later (OutboxRelay.redeliver).
            log.exception("job.dead_letter_store_failed", message_id=message.message_id)
            return
        mark_finished(message)


class FinishedMessages(Middleware):
    """Tells the outbox which messages a worker is done with, so it republishes only those
    the broker lost (`OutboxRelay.redeliver`).

    A message is done when its actor succeeded or it was skipped; a dead-lettered one is
    marked by `DeadLetters` once its dead letter is stored. The marks are batched by the
    worker loop's relay; one lost in a crash only means a redundant, tolerated redelivery.
    """

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            mark_finished(message)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        mark_finished(message)


def mark_finished(message: MessageProxy) -> None:
    try:
        message_id = uuid.UUID(message.message_id)
        _loop_thread().loop.call_soon_threadsafe(_finish_on_loop, message_id)
    except Exception:  # a message not from the outbox, or the loop is gone
        log.debug("job.finish_mark_skipped", exc_info=True)


def _finish_on_loop(message_id: uuid.UUID) -> None:
    job_runtime().relay.finish(message_id)


async def _store_failure(message: MessageProxy, exception: BaseException, trace: str) -> None:
    async with unit_of_work() as session:
        await record_failure(
            session,
            message_id=uuid.UUID(message.message_id),
            actor=message.actor_name,
            queue=message.queue_name,
            args=list(message.args),
            kwargs=dict(message.kwargs),
            error=f"{type(exception).__name__}: {exception}",
            traceback=trace,
            retries=int(message.options.get("retries", 0)),
            request_id=message.options.get("request_id"),
        )


class WorkerLoopResources(Middleware):
    """Disposes the worker loop's engine before the AsyncIO middleware stops the loop."""

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        try:
            _loop_thread().run_coroutine(dispose_runtime())
        except Exception:  # the loop is gone: nothing is left to close
            log.debug("job.dispose_skipped", exc_info=True)


def _loop_thread() -> EventLoopThread:
    thread = get_event_loop_thread()
    if thread is None:
        raise RuntimeError("the AsyncIO middleware's event loop is not running")
    return thread
