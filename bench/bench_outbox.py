"""Outbox throughput (issue 3): commit -> actor completion, outbox vs direct `actor.send`.

One real `engage worker --processes 1 --threads 8` process consumes `system.ping` from Redis
while this process produces pings the way the API would, from concurrent asyncio tasks:

- outbox: `request_ping()` (job_pings row + outbox row) in a transaction, commit, then
  `OutboxRelay.relay_committed()` (publish to Redis; rows are marked sent in batches, as in
  the API);
- direct (the baseline): the job_pings row in a transaction, commit, then
  `broker.get_actor("system.ping").send(ping_id=...)`, no outbox row.

Throughput is N / (first commit -> the last ping's `processed_at`); a count query every 50 ms
detects the end. After a warm-up, runs alternate between the paths (ABBA order); the report
gives the median of each path and the ratio outbox / direct. Every run checks that each ping
was applied exactly once, that no job failed and that every outbox row is marked sent.
Commit-to-processed latency (`processed_at - created_at`) is reported twice: from the
saturated runs (mostly queueing) and from a paced run per path at a fixed, lower rate.

Before each run the bench waits (up to 3 minutes) for the machine to be idle, and it accounts
CPU per message from /proc: this process, the worker, PostgreSQL, Redis, and "others" (the
rest of the machine: other test suites sharing it make a run pessimistic and are flagged).

    make bench                               # every benchmark
    .venv/bin/python -m bench.bench_outbox   # this one

Knobs (environment): BENCH_OUTBOX_MESSAGES (6000 per run), BENCH_OUTBOX_ROUNDS (3 runs per
path), BENCH_OUTBOX_PRODUCERS (16), BENCH_OUTBOX_THREADS (8), BENCH_OUTBOX_PACED_RATE (50
messages/s; 0 skips the paced runs), BENCH_PG_URL (postgresql://postgres@127.0.0.1:5432/
postgres), BENCH_OUTBOX_REDIS_URL (redis://127.0.0.1:6379/13, flushed before every run).
The bench creates and drops its own database, engage_bench_<hex>.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
from redis import Redis
from sqlalchemy.engine import make_url

from app.db import SessionFactory, create_engine, create_session_factory
from app.migrate import upgrade
from app.models.operations import JobPing
from app.outbox import OutboxRelay
from app.services.operations.jobs import PING_ACTOR, request_ping
from app.settings import Settings
from bench._proc import (
    all_stats,
    cmdline,
    descendants,
    machine_busy,
    machine_notes,
    run_until_done,
    wait_for_quiet,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
GUARD = Path(__file__).resolve().with_name("_worker_guard.py")

MESSAGES = int(os.environ.get("BENCH_OUTBOX_MESSAGES", "6000"))
ROUNDS = int(os.environ.get("BENCH_OUTBOX_ROUNDS", "3"))
PRODUCERS = int(os.environ.get("BENCH_OUTBOX_PRODUCERS", "16"))
WORKER_THREADS = int(os.environ.get("BENCH_OUTBOX_THREADS", "8"))
PACED_RATE = float(os.environ.get("BENCH_OUTBOX_PACED_RATE", "50"))
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_OUTBOX_REDIS_URL", "redis://127.0.0.1:6379/13")

POLL_SECONDS = 0.05
WORKER_GRACE_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 60.0
QUIET_BUSY_FRACTION = 0.10  # of all cores, sampled over one second before each run
QUIET_WAIT_SECONDS = 180.0
NOISY_SHARE = 0.10  # a run where more than this share of the busy CPU was not ours is flagged
PACED_SECONDS = 10.0
TARGET_RATIO = 0.80
TARGET_RATE = 1000.0

OUTBOX = "outbox"
DIRECT = "direct"


# --- CPU accounting from /proc: who burns the cores --------------------------------------

PRODUCER, WORKER, POSTGRES, REDIS, OTHERS, MACHINE = (
    "producer",
    "worker",
    "postgres",
    "redis",
    "others",
    "machine",
)
COMPONENTS = (PRODUCER, WORKER, POSTGRES, REDIS, OTHERS)
# PostgreSQL's own background processes serve every database: counted as ours.
_PG_AUXILIARY = re.compile(
    r"postgres: .*(checkpointer|background writer|walwriter|autovacuum launcher"
    r"|logical replication launcher|stats collector)"
)


@dataclass
class CpuSnapshot:
    """CPU seconds consumed so far per process (pid -> (component, seconds)), and in total."""

    processes: dict[int, tuple[str, float]]
    machine_busy: float


def cpu_snapshot(guard_pid: int, database: str) -> CpuSnapshot:
    """CPU so far of this process (the producer), the worker's process tree, the PostgreSQL
    processes serving the bench database plus the server's background ones, and Redis."""
    stats = all_stats()
    worker_tree = descendants(guard_pid, stats)
    processes: dict[int, tuple[str, float]] = {}
    for pid, (comm, ppid, seconds) in stats.items():
        if pid == os.getpid():
            processes[pid] = (PRODUCER, seconds)
        elif pid in worker_tree:
            processes[pid] = (WORKER, seconds)
        elif comm == "postgres":
            command = cmdline(pid)
            if f" {database} " in command or ppid == 1 or _PG_AUXILIARY.search(command):
                processes[pid] = (POSTGRES, seconds)
        elif comm == "redis-server":
            processes[pid] = (REDIS, seconds)
    return CpuSnapshot(processes, machine_busy())


def cpu_used(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    used = dict.fromkeys(COMPONENTS, 0.0)
    for pid, (component, seconds) in after.processes.items():
        start = before.processes.get(pid, (component, 0.0))[1]
        used[component] += max(0.0, seconds - start)
    ours = sum(used.values())
    used[MACHINE] = after.machine_busy - before.machine_busy
    used[OTHERS] = max(0.0, used[MACHINE] - ours)
    return used


# --- the worker process ------------------------------------------------------------------


@dataclass
class Worker:
    guard: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def tail(self, limit: int = 4000) -> str:
        self.log_file.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-limit:]

    def alive(self) -> bool:
        return self.guard.poll() is None

    def stop(self) -> None:
        """Close the guard's pipe: it stops the worker (SIGTERM, then SIGKILL) and exits."""
        if self.guard.stdin is not None and not self.guard.stdin.closed:
            self.guard.stdin.close()
        try:
            self.guard.wait(timeout=WORKER_GRACE_SECONDS + 10)
        except subprocess.TimeoutExpired:  # the guard itself is stuck: kill its tree by pid
            leftovers = descendants(self.guard.pid, all_stats())
            self.guard.kill()
            self.guard.wait()
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.log_file.close()


def start_worker(settings: Settings, workdir: Path) -> Worker:
    """`engage worker` under bench/_worker_guard.py, which stops it when this process ends."""
    engage = shutil.which("engage", path=str(Path(sys.executable).parent))
    command = [engage] if engage else [sys.executable, "-m", "app.cli"]
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "WORKER_SHUTDOWN_TIMEOUT_SECONDS": "5",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("WORKER_METRICS_PORT", None)
    log_path = workdir / "worker.log"
    log_file = log_path.open("wb")
    guard = subprocess.Popen(
        [
            sys.executable,
            str(GUARD),
            str(WORKER_GRACE_SECONDS),
            "--",
            *command,
            "worker",
            "--processes",
            "1",
            "--threads",
            str(WORKER_THREADS),
        ],
        stdin=subprocess.PIPE,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=workdir,  # no stray .env from the checkout
        env=env,
    )
    return Worker(guard, log_path, log_file)


# --- one run -----------------------------------------------------------------------------


@dataclass
class Run:
    path: str
    messages: int
    kind: str  # "warm-up", "" (measured) or "paced"
    produce_seconds: float = 0.0  # first commit -> last producer done
    total_seconds: float = 0.0  # first commit -> last processed_at
    drain_rate: float | None = None  # processed/s after the producers stopped: the worker alone
    latency_p50_ms: float = 0.0  # processed_at - created_at (the INSERT, just before commit)
    latency_p99_ms: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    busy_before: float = 0.0  # machine busy fraction in the second before the run

    @property
    def rate(self) -> float:
        return self.messages / self.total_seconds

    @property
    def produce_rate(self) -> float:
        return self.messages / self.produce_seconds

    @property
    def others_share(self) -> float:
        """Share of the machine's busy CPU during the run that was not ours."""
        return self.cpu.get(OTHERS, 0.0) / max(self.cpu.get(MACHINE, 0.0), 1e-9)

    def cpu_ms_per_message(self, component: str) -> float:
        return 1000 * self.cpu.get(component, 0.0) / self.messages


@dataclass
class Bench:
    settings: Settings
    database: str
    factory: SessionFactory
    relay: OutboxRelay
    send: Callable[..., Any]
    db: asyncpg.Connection
    redis: Redis
    worker: Worker

    async def reset(self) -> None:
        await self.db.execute(
            "TRUNCATE job_pings, outbox_messages, processed_messages, job_failures"
        )
        await self.db.execute("CHECKPOINT")
        self.redis.flushdb()

    async def produce(
        self, path: str, messages: int, label: str, rate: float | None = None
    ) -> tuple[float, float]:
        """Run the producers, as fast as they go or at `rate` messages per second; returns the
        wall time of the first commit and of the moment the last producer finished."""
        loop = asyncio.get_running_loop()
        indexes: Iterator[int] = iter(range(messages))
        first_commit: list[float] = []
        started = loop.time()

        async def pace(index: int) -> None:
            if rate:
                await asyncio.sleep(max(0.0, started + index / rate - loop.time()))

        async def outbox_producer() -> None:
            for index in indexes:
                await pace(index)
                async with self.factory() as session:
                    async with session.begin():
                        await request_ping(session, note=f"{label}-{index}", by="bench")
                    if not first_commit:
                        first_commit.append(time.time())
                await self.relay.relay_committed(session)

        async def direct_producer() -> None:
            for index in indexes:
                await pace(index)
                async with self.factory() as session, session.begin():
                    ping = JobPing(id=uuid.uuid4(), note=f"{label}-{index}", requested_by="bench")
                    session.add(ping)
                if not first_commit:
                    first_commit.append(time.time())
                self.send(ping_id=str(ping.id))

        producer = outbox_producer if path == OUTBOX else direct_producer
        await asyncio.gather(*(producer() for _ in range(PRODUCERS)))
        return first_commit[0], time.time()

    async def wait_processed(self, messages: int, limit_seconds: float) -> None:
        deadline = time.monotonic() + limit_seconds
        while True:
            done = await self.db.fetchval(
                "SELECT count(*) FROM job_pings WHERE processed_at IS NOT NULL"
            )
            if done >= messages:
                return
            if not self.worker.alive():
                raise RuntimeError(f"the worker exited:\n{self.worker.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{done}/{messages} pings processed after {limit_seconds:.0f}s:\n"
                    f"{self.worker.tail()}"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def run(self, path: str, messages: int, kind: str = "", rate: float | None = None) -> Run:
        await self.reset()
        result = Run(
            path,
            messages,
            kind,
            busy_before=await wait_for_quiet(QUIET_WAIT_SECONDS, QUIET_BUSY_FRACTION),
        )
        before = cpu_snapshot(self.worker.guard.pid, self.database)
        waiter = asyncio.create_task(self.wait_processed(messages, 60 + messages / 50))
        try:
            first_commit, produced = await self.produce(path, messages, f"{path}-{kind}", rate)
            await waiter
        finally:
            waiter.cancel()
        after = cpu_snapshot(self.worker.guard.pid, self.database)
        await self.verify(path, messages)
        last_processed, p50, p99, after_producers = await self.db.fetchrow(
            """
            SELECT extract(epoch FROM max(processed_at))::float8,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY processed_at - created_at),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY processed_at - created_at),
                   count(*) FILTER (WHERE processed_at > to_timestamp($1))
            FROM job_pings
            """,
            produced,
        )
        result.produce_seconds = produced - first_commit
        result.total_seconds = last_processed - first_commit
        if after_producers >= messages // 10 and last_processed - produced >= 1.0:
            result.drain_rate = after_producers / (last_processed - produced)
        result.latency_p50_ms = p50.total_seconds() * 1000
        result.latency_p99_ms = p99.total_seconds() * 1000
        result.cpu = cpu_used(before, after)
        return result

    async def verify(self, path: str, messages: int) -> None:
        """Exactly once, nothing failed, every outbox row sent (and only on the outbox path)."""
        await self.relay.flush()  # the last batch of marks may still be inside its window
        pings, once, unprocessed = await self.db.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE deliveries = 1),"
            " count(*) FILTER (WHERE processed_at IS NULL) FROM job_pings"
        )
        claimed = await self.db.fetchval("SELECT count(*) FROM processed_messages")
        failed = await self.db.fetchval("SELECT count(*) FROM job_failures")
        rows, sent, max_attempts = await self.db.fetchrow(
            "SELECT count(*), count(sent_at), coalesce(max(publish_attempts), 0)"
            " FROM outbox_messages"
        )
        expected_rows = messages if path == OUTBOX else 0
        problems = [
            f"{pings} pings, expected {messages}" if pings != messages else "",
            f"{messages - once} pings not applied exactly once" if once != messages else "",
            f"{unprocessed} pings unprocessed" if unprocessed else "",
            f"{claimed} processed_messages, expected {messages}" if claimed != messages else "",
            f"{failed} job failures" if failed else "",
            f"{rows} outbox rows, expected {expected_rows}" if rows != expected_rows else "",
            f"{rows - sent} outbox rows not marked sent" if sent != rows else "",
            f"outbox rows published up to {max_attempts} times" if max_attempts > 1 else "",
        ]
        if any(problems):
            raise AssertionError(f"{path}: " + "; ".join(filter(None, problems)))


async def wait_until_ready(bench: Bench) -> float:
    """One ping through the outbox: the worker is up and its loop, pool and imports are warm."""
    started = time.monotonic()
    await bench.reset()
    await bench.produce(OUTBOX, 1, "ready")
    await bench.wait_processed(1, READY_TIMEOUT_SECONDS)
    return time.monotonic() - started


# --- report ------------------------------------------------------------------------------

HEADER = (
    f"{'path':<7}{'':>8} {'msgs':>6} {'commit/s':>9} {'e2e/s':>7} {'drain/s':>8}"
    f" {'p50 ms':>7} {'p99 ms':>7} {'busy0':>6} {'others':>6}  CPU ms/msg:"
    + "".join(f" {c:>8}" for c in (*COMPONENTS, MACHINE))
)


def format_run(run: Run) -> str:
    cpu = "".join(f" {run.cpu_ms_per_message(c):8.2f}" for c in (*COMPONENTS, MACHINE))
    drain = f"{run.drain_rate:8.0f}" if run.drain_rate is not None else f"{'-':>8}"
    return (
        f"{run.path:<7}{run.kind:>8} {run.messages:6d} {run.produce_rate:9.0f} {run.rate:7.0f}"
        f" {drain} {run.latency_p50_ms:7.0f} {run.latency_p99_ms:7.0f}"
        f" {run.busy_before:6.0%} {run.others_share:6.0%}             {cpu}"
    )


def report(runs: list[Run]) -> dict[str, float]:
    measured = [run for run in runs if run.kind == ""]
    direct = statistics.median(run.rate for run in measured if run.path == DIRECT)
    outbox = statistics.median(run.rate for run in measured if run.path == OUTBOX)
    ratio = outbox / direct
    print()
    print(f"median end to end: direct {direct:.0f}/s, outbox {outbox:.0f}/s, ratio {ratio:.1%}")
    ratio_ok = "met" if ratio >= TARGET_RATIO else f"MISSED by {TARGET_RATIO - ratio:.1%} points"
    rate_ok = (
        "met"
        if outbox >= TARGET_RATE
        else f"MISSED by {TARGET_RATE - outbox:.0f}/s ({1 - outbox / TARGET_RATE:.0%} short)"
    )
    print(f"target outbox/direct >= {TARGET_RATIO:.0%}: {ratio_ok}")
    print(f"target outbox >= {TARGET_RATE:.0f}/s end to end: {rate_ok}")
    for path in (DIRECT, OUTBOX):
        chosen = [run for run in measured if run.path == path]
        cpu = ", ".join(
            f"{c} {statistics.median(r.cpu_ms_per_message(c) for r in chosen):.2f}"
            for c in (*COMPONENTS, MACHINE)
        )
        commit = statistics.median(r.produce_rate for r in chosen)
        drains = [r.drain_rate for r in chosen if r.drain_rate is not None]
        drain = f", worker alone {statistics.median(drains):.0f}/s" if drains else ""
        print(f"{path}: median producer {commit:.0f} commits/s{drain}; CPU ms/msg: {cpu}")
    for run in runs:
        if run.kind == "paced":
            print(
                f"{run.path} at {PACED_RATE:.0f}/s: commit-to-processed p50"
                f" {run.latency_p50_ms:.0f} ms, p99 {run.latency_p99_ms:.0f} ms"
            )
    noisy = [run for run in runs if run.others_share > NOISY_SHARE]
    if noisy:
        print(
            f"WARNING: {len(noisy)} run(s) shared the machine with other work (more than"
            f" {NOISY_SHARE:.0%} of the busy CPU was not ours): their figures are pessimistic"
        )
    return {"direct": direct, "outbox": outbox, "ratio": ratio}


# --- main --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_bench() -> AsyncIterator[Bench]:
    """A fresh database and Redis db, the broker installed here, a worker process; then cleanup."""
    database = f"engage_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=database)
    settings = Settings(
        database_url=url.render_as_string(hide_password=False),
        redis_url=REDIS_URL,
        worker_threads=WORKER_THREADS,
    )
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-outbox-"))
    worker: Worker | None = None
    broker: Any = None
    engine = None
    db: asyncpg.Connection | None = None
    redis = Redis.from_url(REDIS_URL)
    try:
        await asyncio.to_thread(upgrade, settings, "head")
        import jobs.broker

        broker = jobs.broker.install(jobs.broker.build_broker(settings), settings)
        engine = create_engine(settings, pool_size=PRODUCERS + 4, max_overflow=8)
        factory = create_session_factory(engine)
        relay = OutboxRelay(
            factory,
            jobs.broker.publisher(broker),
            mark_sent_window=settings.outbox_mark_sent_window,  # the API's configuration
        )
        db = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
        redis.flushdb()
        worker = start_worker(settings, workdir)
        yield Bench(
            settings, database, factory, relay, broker.get_actor(PING_ACTOR).send, db, redis, worker
        )
    finally:
        if worker is not None:
            worker.stop()
        if db is not None:
            await db.close()
        if engine is not None:
            await engine.dispose()
        if broker is not None:
            broker.close()
        with contextlib.suppress(Exception):
            redis.flushdb()
        redis.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(workdir, ignore_errors=True)


async def amain() -> dict[str, float]:
    async with open_bench() as bench:
        print(f"machine: {machine_notes()}")
        print(
            f"database {bench.database}, redis {REDIS_URL}; worker: engage worker --processes 1"
            f" --threads {WORKER_THREADS}; producers: {PRODUCERS} asyncio tasks in this process;"
            f" {MESSAGES} messages per run, {ROUNDS} runs per path"
        )
        print(f"worker ready after {await wait_until_ready(bench):.1f}s")
        print(HEADER, flush=True)
        runs: list[Run] = []

        async def run(path: str, messages: int, kind: str = "", rate: float | None = None) -> None:
            runs.append(await bench.run(path, messages, kind, rate))
            print(format_run(runs[-1]), flush=True)

        for path in (DIRECT, OUTBOX):
            await run(path, max(1000, MESSAGES // 3), "warm-up")
        for round_ in range(ROUNDS):
            for path in (DIRECT, OUTBOX) if round_ % 2 == 0 else (OUTBOX, DIRECT):
                await run(path, MESSAGES)
        if PACED_RATE > 0:
            for path in (DIRECT, OUTBOX):
                await run(path, int(PACED_RATE * PACED_SECONDS), "paced", PACED_RATE)
        return report(runs)


def main() -> None:
    run_until_done(amain)


if __name__ == "__main__":
    main()
