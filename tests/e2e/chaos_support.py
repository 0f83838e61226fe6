"""Helpers of the fault-injection test (tests/e2e/test_fault_injection.py).

- `DuplicateDelivery`: a test-only Dramatiq middleware that re-enqueues every processed message
  once, with the same message id. The worker loads it only when the test's processes set
  `ENGAGE_TEST_WORKER_MIDDLEWARE=tests.e2e.chaos_support:DuplicateDelivery` (jobs/worker.py).
- `Proc`: one process this test started, stopped or killed (SIGKILL) by its process group.
- `restart_redis` / `ensure_redis`: the one way to restart the machine's Redis (no persistence).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import structlog
from dramatiq import Broker, Middleware, Worker
from dramatiq.brokers.redis import RedisBroker

DUPLICATE_OPTION = "engage_test_duplicate"
MIDDLEWARE_SPEC = "tests.e2e.chaos_support:DuplicateDelivery"
DUPLICATES_EVENT = "chaos.duplicates_processed"
log = structlog.get_logger("engage.chaos")

REDIS_SHUTDOWN = ["redis-cli", "-p", "6379", "shutdown", "nosave"]
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


class DuplicateDelivery(Middleware):
    """Delivers every message twice: after a successful ack, enqueue it again, same id.

    Also makes Dramatiq notice a killed worker sooner (the heartbeat timeout is 60 s and
    maintenance runs on 0.1 % of commands by default), so its unacked messages come back
    within the test's budget.
    """

    def __init__(self) -> None:
        self.processed = 0  # duplicates processed by this worker process
        self.lock = threading.Lock()

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        if isinstance(broker, RedisBroker):
            broker.heartbeat_timeout = int(os.environ.get("ENGAGE_TEST_HEARTBEAT_MS", "10000"))
            broker.maintenance_chance = 50_000  # of a million commands

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        if exception is not None or not message.options.get(DUPLICATE_OPTION):
            return
        with self.lock:
            self.processed += 1
            processed = self.processed
        # Every one, now that orders travel in batched jobs (a few hundred messages per run):
        # the test sums the last count of each worker start's log.
        log.warning(DUPLICATES_EVENT, processed=processed)

    def after_ack(self, broker: Broker, message: Any) -> None:
        if message.options.get(DUPLICATE_OPTION):
            return
        options = {**message.options, DUPLICATE_OPTION: True}
        options.pop("eta", None)
        # Redis down: this duplicate is simply not sent.
        with contextlib.suppress(Exception):
            broker.enqueue(message._message.copy(options=options))


class Proc:
    """A process of the test, in its own session: killed or stopped with its children."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], workdir: Path):
        self.name = name
        self.args = list(args)
        self.env = env
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.{self.starts}.log"

    def start(self) -> Proc:
        self.starts += 1
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.args,
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)  # the group of the process this test started

    def kill9(self) -> None:
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 10) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        self._signal_group(signal.SIGKILL)  # children left behind, if any
        if self.process.poll() is None:
            self.process.wait()

    def tail(self, limit: int = 3000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-limit:]


def wait_healthy(proc: Proc, base_url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited before it was healthy:\n{proc.tail()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{proc.name} not healthy within {timeout:.0f} s:\n{proc.tail()}")


def redis_ping() -> bool:
    result = subprocess.run(
        ["redis-cli", "-p", "6379", "ping"], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and result.stdout.strip() == "PONG"


def _wait_redis(up: bool, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if redis_ping() == up:
            return True
        time.sleep(0.1)
    return False


def shutdown_redis() -> None:
    """Stop Redis without saving: everything in it is lost."""
    subprocess.run(REDIS_SHUTDOWN, capture_output=True, check=False)
    if not _wait_redis(False, 10):
        raise AssertionError("Redis still answers after `shutdown nosave`")


def ensure_redis() -> None:
    """Start Redis if it does not answer; raises if it still does not."""
    if redis_ping():
        return
    subprocess.run(REDIS_START, capture_output=True, check=False)
    if not _wait_redis(True, 20):
        raise AssertionError("Redis did not come back: `redis-cli ping` does not answer")
