"""Goals ingestion (goals, issue 4): orders/s from `orderRecord` to the bonus granted, and the
order-to-progress lag at a given rate, on PostgreSQL + Redis + one worker process.

The pipeline under test, all real processes:

- `engage serve` (one uvicorn process, ENGAGE_ENV=production): `orderRecord` (or
  `orderRecordBatch`) with the SERVICE token stores the orders, pending, and, for users with
  no job scheduled, one `goals.process_orders` outbox row, in one transaction, then
  publishes the job to Redis;
- `engage worker --processes 1 --threads 8`: `goals.process_orders` writes the ledger rows
  (`goal_progress`) and advances the user's ACTIVE goal; the order that reaches the target
  closes the goal, activates the next one and enqueues `goals.finish`, which grants the
  WALLET bonus (a `wallet_entries` row) and creates the achievement.

Seed: users, each with an ACTIVE goal (target 5, WALLET bonus) and two NEXT goals (target 5,
WALLET), assigned through `assign_goal`. A run sends N orders, 10 per user, round-robin over
N / 10 users (user k gets orders k, k + N/10, ...), each completed `SECONDS / 10` after the
user's previous one. Every order matches, so when orders arrive in order each user reaches
exactly two goals: 2 N / 10 bonuses per run. An order that arrives after a later order of the
same user closed its goal is OUTSIDE_PERIOD for the next goal (its period starts at the
closing order's completion); the run reports those as `late`. Before each run the goal tables
are reset to the seeded state.

The load is a driver process (asyncio, uvloop, raw HTTP/1.1 on keep-alive connections,
orjson), not wrk: the lag at a given rate needs an open-loop driver that sends order i at
start + i / rate whatever the answers do, and an order id and `completedAt` per request.
`completedAt` is the time the order was due to be sent, so a driver or a server that falls
behind shows up in the lag instead of hiding it. Like a real client's connection pool, a
paced run keeps at most BENCH_GOALS_INGEST_IN_FLIGHT (32) orders in flight; past that, orders
wait in the driver, in order (`slip`), and that wait is part of their lag. Each answer must
be HTTP 200 with `outcome: NEW` and no errors. Runs: a warm-up, one run per offered rate
(BENCH_GOALS_INGEST_RATES), and a closed-loop maximum-throughput run (32 connections, each
sends its next order as soon as the previous one was answered).

Per run: orders/s accepted by the API (first send -> last answer), orders/s end to end to the
last ledger row and to the last bonus granted (first send -> max `goal_progress.created_at`,
max `bonus_granted_at`; a count query every 100 ms detects the end), the per-order lag
`goal_progress.created_at - completedAt` (p50/p99/max; `created_at` is the `now` the job
started with) and its API part (`goal_orders.created_at - completedAt`, `rec p99`), the
API's answer latency, and CPU per order from /proc: the API, the worker, the driver,
PostgreSQL (the bench database's backends and the server's background processes), Redis,
and the rest of the machine. After each run the bench checks exactly-once: one order and one
ledger row per order, the sum of progress equals the counted rows (goal by goal too),
bonuses granted == goals DONE == wallet GOAL_BONUS entries (one per goal) == achievements,
one `goals.finish` outbox row per DONE goal, at most one `goals.process_orders` row per
request and 100 users (orders are their own queue: docs/goals.md), all sent, no order left
pending, no job failure, and no order left uncounted for any reason but OUTSIDE_PERIOD.

    make bench                                    # every benchmark
    .venv/bin/python -m bench.bench_goals_ingest  # this one (about 5 minutes)

Knobs (environment): BENCH_GOALS_INGEST_RATES (offered orders/s, "50,100,250,500"),
BENCH_GOALS_INGEST_SECONDS (15: a paced run sends rate x seconds orders),
BENCH_GOALS_INGEST_MAX_ORDERS (4000, the closed-loop run), BENCH_GOALS_INGEST_CONNECTIONS (32,
closed loop), BENCH_GOALS_INGEST_IN_FLIGHT (32, paced runs), BENCH_GOALS_INGEST_PIN_API (1:
`taskset -c 0` on the API process; 0: unpinned), BENCH_GOALS_INGEST_PYSPY (a directory:
py-spy records the API and the worker during the closed-loop run),
BENCH_GOALS_INGEST_API_POOL (the API's DATABASE_POOL_SIZE; unset: the app's default, 10 + 10
overflow), BENCH_PG_URL (postgresql://postgres@127.0.0.1:5432/postgres),
BENCH_GOALS_INGEST_REDIS_URL (redis://127.0.0.1:6379/10, flushed before every run),
BENCH_GOALS_INGEST_BATCH (1: each request is one `orderRecord`; N > 1: each request is an
`orderRecordBatch` of N orders, sent when its last order is due, so the wait to fill a batch
counts in the lag; runs are rounded down to whole batches),
BENCH_GOALS_INGEST_WORKER_TIMEOUT_MS (unset: the app's WORKER_POLL_TIMEOUT_MS, 100; else that
setting for the worker: the cap of the Redis consumer's idle poll backoff),
BENCH_GOALS_INGEST_PROMOTIONS (unset; `compare`: every user also has a STARTED promotion whose
target is never reached, so each order is a counted ride as well; the runs are then the
warm-up and closed-loop runs alternating goals alone (the runs set EXPIRED: the promotions
consumer finds none, one statement) and both consumers, twice each, and the report gives the
ratio of orders/s with both to goals alone). The bench creates and drops its own database,
engage_bench_<hex>.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from redis import Redis
from sqlalchemy.engine import make_url

from app.db import create_engine, create_session_factory
from app.migrate import upgrade
from app.models.base import utcnow
from app.models.goals import GoalTemplate
from app.models.identity import Role, User
from app.services.goals.assignment import Assignment, assign_goal
from app.services.identity.sessions import create_service_token
from app.services.orders.queue import JOB_USERS
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
from bench.bench_purchase_create import (
    Child,
    _engage,
    _free_port,
    _pythonpath,
    parse_result,
    start_child,
    wait_for_line,
    wait_ready,
)
from jobs import registry

RATES = [
    float(r) for r in os.environ.get("BENCH_GOALS_INGEST_RATES", "50,100,250,500").split(",") if r
]
SECONDS = float(os.environ.get("BENCH_GOALS_INGEST_SECONDS", "15"))
MAX_ORDERS = int(os.environ.get("BENCH_GOALS_INGEST_MAX_ORDERS", "4000"))
CONNECTIONS = int(os.environ.get("BENCH_GOALS_INGEST_CONNECTIONS", "32"))
PIN_API = os.environ.get("BENCH_GOALS_INGEST_PIN_API", "1") == "1"
PYSPY_DIR = os.environ.get("BENCH_GOALS_INGEST_PYSPY", "")
IN_FLIGHT = int(os.environ.get("BENCH_GOALS_INGEST_IN_FLIGHT", "32"))  # paced runs
API_POOL = os.environ.get("BENCH_GOALS_INGEST_API_POOL", "")  # DATABASE_POOL_SIZE of the API
WORKER_TIMEOUT_MS = os.environ.get("BENCH_GOALS_INGEST_WORKER_TIMEOUT_MS", "")
PROMOTIONS = os.environ.get("BENCH_GOALS_INGEST_PROMOTIONS", "") == "compare"
PROMOTION_TARGET = 1000  # never reached: every order is a counted ride
# Orders per request: 1 sends `orderRecord`, more sends `orderRecordBatch` of that many.
BATCH = int(os.environ.get("BENCH_GOALS_INGEST_BATCH", "1"))
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_GOALS_INGEST_REDIS_URL", "redis://127.0.0.1:6379/10")

API_CORE = "0"
ORDERS_PER_USER = 10  # two goals of 5 per user and run
GOAL_TARGET = 5
WORKER_THREADS = 8
WARMUP_ORDERS = 500
WARMUP_RATE = 100.0
POLL_SECONDS = 0.1
DRAIN_LIMIT_SECONDS = 300.0
QUIET_BUSY_FRACTION = 0.15
QUIET_WAIT_SECONDS = 90.0
NOISY_SHARE = 0.10
TARGET_RATE = 500.0
TARGET_LAG_P99_S = 1.0
SERVICE_NAME = "bench-orders"

MUTATION = (
    "mutation Record($input: OrderRecordInput!) { orderRecord(input: $input)"
    " { outcome order { orderId } errors { code field message } } }"
)
BATCH_MUTATION = (
    "mutation Batch($input: OrderRecordBatchInput!) { orderRecordBatch(input: $input)"
    " { results { outcome errors { code } } errors { code field message } } }"
)
TEMPLATES = {
    "ingest-comfort-a": ("Take 5 Comfort rides", "Совершите 5 поездок в «Комфорте»", 30_000),
    "ingest-comfort-b": ("Five more Comfort rides", "Ещё 5 поездок в «Комфорте»", 40_000),
    "ingest-comfort-c": ("And five again", "И ещё пять", 50_000),
}


# --- seed ---------------------------------------------------------------------------------


@dataclass
class Fixture:
    user_ids: list[uuid.UUID]
    service_token: str


async def seed(settings: Settings, users: int) -> Fixture:
    """Templates, users with 1 ACTIVE + 2 NEXT goals (through `assign_goal`), the token."""
    registry.load_actor_modules()
    engine = create_engine(settings, pool_size=12)
    factory = create_session_factory(engine)
    try:
        async with factory() as session, session.begin():
            for template_id, (title_en, title_ru, amount) in TEMPLATES.items():
                session.add(
                    GoalTemplate(
                        id=template_id,
                        default_locale="en",
                        title={"en": title_en, "ru": title_ru},
                        description={
                            "en": f"{GOAL_TARGET} rides in 7 days earn a wallet credit.",
                            "ru": f"{GOAL_TARGET} поездок за 7 дней — бонус на кошелёк.",
                        },
                        details={"en": ["Comfort"], "ru": ["«Комфорт»"]},
                        button_text={"en": "Collect", "ru": "Забрать"},
                        conditions={
                            "target": GOAL_TARGET,
                            "periodDays": 7,
                            "rideClasses": ["comfort"],
                        },
                        bonus={"type": "WALLET", "amountMinor": amount, "currency": "RUB"},
                        created_by="bench",
                        updated_by="bench",
                    )
                )
            rows = [
                User(email=f"goals-ingest-{index}@example.com", roles=[Role.USER.value])
                for index in range(users)
            ]
            session.add_all(rows)
            await session.flush()
            user_ids = [user.id for user in rows]
            _, secret = await create_service_token(session, SERVICE_NAME, [Role.SERVICE])
        gate = asyncio.Semaphore(8)

        async def assign(user_id: uuid.UUID) -> None:
            async with gate:
                for template_id in TEMPLATES:
                    async with factory() as session, session.begin():
                        await assign_goal(
                            session,
                            Assignment(user_id, template_id),
                            actor="bench",
                            now=utcnow(),
                        )

        await asyncio.gather(*(assign(user_id) for user_id in user_ids))
        if PROMOTIONS:
            await seed_promotions(factory, user_ids)
    finally:
        await engine.dispose()
    return Fixture(user_ids, secret)


async def seed_promotions(factory: Any, user_ids: list[uuid.UUID]) -> None:
    """A promotion in RUB (the orders' currency), a pre-offer and a STARTED run per user."""
    from app.services.promotions import catalog, runs
    from app.services.promotions.pre_offers import PreOfferRow, import_pre_offers

    async with factory() as session, session.begin():
        await catalog.create_promotion(
            session,
            catalog.PromotionInput(
                key="bench-newcomer",
                title="Bench challenge",
                target_rides=PROMOTION_TARGET,
                min_ride_amount_minor=1,
                currency="RUB",
                reward_product_id=80,
                reward_amount_minor=100_000,
                reward_repayment_rate="15",
                challenge_days=30,
            ),
            actor="bench",
        )
        await catalog.set_region(session, "RU", True, actor="bench")
        for start in range(0, len(user_ids), 1000):
            rows = [PreOfferRow(str(u), "bench-newcomer", "RU") for u in user_ids[start:][:1000]]
            await import_pre_offers(session, rows, actor="bench")
        promotion = (await catalog.promotions_by_keys(session, ["bench-newcomer"]))[
            "bench-newcomer"
        ]
    now = utcnow() - timedelta(days=1)  # the orders' completedAt are later: inside the window
    gate = asyncio.Semaphore(8)

    async def start(user_id: uuid.UUID) -> None:
        async with gate, factory() as session, session.begin():
            await runs.start(session, user_id, promotion.id, now=now)

    await asyncio.gather(*(start(user_id) for user_id in user_ids))


SNAPSHOT = "bench_seeded_user_goals"
PROMOTION_SNAPSHOT = "bench_seeded_promotion_users"
GOAL_TABLES = (
    "goal_progress, goal_notifications, wallet_entries, cashback_grants, goal_orders,"
    " outbox_messages, processed_messages, job_failures, user_goals"
)


async def snapshot(db: asyncpg.Connection, users: int) -> None:
    active, waiting = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'ACTIVE'), count(*) FILTER (WHERE status = 'NEXT')"
        " FROM user_goals"
    )
    if (active, waiting) != (users, 2 * users):
        raise AssertionError(f"seed: {active} ACTIVE, {waiting} NEXT for {users} users")
    await db.execute(f"CREATE TABLE {SNAPSHOT} AS SELECT * FROM user_goals")
    if PROMOTIONS:
        await db.execute(f"CREATE TABLE {PROMOTION_SNAPSHOT} AS SELECT * FROM promotion_users")


async def reset(db: asyncpg.Connection, redis: Redis, promotions: bool = True) -> None:
    """Back to the seeded goals (and runs: STARTED, or all EXPIRED for goals alone)."""
    await db.execute(f"TRUNCATE {GOAL_TABLES}")
    await db.execute(f"INSERT INTO user_goals SELECT * FROM {SNAPSHOT}")
    if PROMOTIONS:
        await db.execute("TRUNCATE promotion_rides")
        await db.execute("DELETE FROM promotion_users")
        await db.execute(f"INSERT INTO promotion_users SELECT * FROM {PROMOTION_SNAPSHOT}")
        if not promotions:
            await db.execute("UPDATE promotion_users SET status = 'EXPIRED'")
        await db.execute("VACUUM ANALYZE promotion_users, promotion_rides")
    await db.execute("VACUUM ANALYZE user_goals, goal_orders, goal_progress, wallet_entries")
    await db.execute("CHECKPOINT")
    redis.flushdb()


# --- CPU accounting -------------------------------------------------------------------------

API, WORKER, DRIVER, POSTGRES, REDIS, OTHERS, MACHINE = (
    "api",
    "worker",
    "driver",
    "postgres",
    "redis",
    "others",
    "machine",
)
COMPONENTS = (API, WORKER, DRIVER, POSTGRES, REDIS, OTHERS)
_PG_AUXILIARY = re.compile(
    r"postgres: .*(checkpointer|background writer|walwriter|autovacuum|logical replication"
    r"|stats collector)"
)


def cpu_snapshot(guards: dict[str, int], database: str) -> dict[int, tuple[str, float]]:
    stats = all_stats()
    owner: dict[int, str] = {}
    for component, guard in guards.items():
        for pid in descendants(guard, stats):
            owner[pid] = component
    found: dict[int, tuple[str, float]] = {}
    for pid, (comm, ppid, seconds) in stats.items():
        if pid in owner:
            found[pid] = (owner[pid], seconds)
        elif comm == "postgres":
            command = cmdline(pid)
            if f" {database} " in command or ppid == 1 or _PG_AUXILIARY.search(command):
                found[pid] = (POSTGRES, seconds)
        elif comm == "redis-server":
            found[pid] = (REDIS, seconds)
    return found


def cpu_used(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    busy: float,
    driver: float,
) -> dict[str, float]:
    """CPU seconds per component over the interval; `busy` is the machine's busy seconds,
    `driver` the driver's own count (it may have exited before the interval ends)."""
    used = dict.fromkeys(COMPONENTS, 0.0)
    for pid, (component, seconds) in after.items():
        used[component] += max(0.0, seconds - before.get(pid, (component, 0.0))[1])
    used[DRIVER] = driver
    used[MACHINE] = busy
    used[OTHERS] = max(0.0, busy - sum(used.values()))
    return used


# --- the driver (a child process) -------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


class Connection:
    """One keep-alive HTTP/1.1 connection to the API."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    @property
    def usable(self) -> bool:
        """Not closed by the server (uvicorn closes keep-alive connections idle for 5 s)."""
        return not self.reader.at_eof() and not self.writer.is_closing()

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)


def order_input(index: int, label: str, user_id: str, due: float) -> dict[str, Any]:
    completed = datetime.fromtimestamp(due, UTC)
    return {
        "orderId": f"{label}-{index}",
        "userId": user_id,
        "createdAt": (completed - timedelta(minutes=25)).isoformat(),
        "completedAt": completed.isoformat(),
        "status": "COMPLETE",
        "rideClass": "comfort",
        "paymentMethod": "card",
        "price": {"amountMinor": 50_000, "currency": "RUB"},
        "cityTimezone": "Europe/Moscow",
    }


def order_body(index: int, label: str, user_id: str, due: float) -> bytes:
    return orjson.dumps(
        {"query": MUTATION, "variables": {"input": order_input(index, label, user_id, due)}}
    )


def batch_body(inputs: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"query": BATCH_MUTATION, "variables": {"input": {"orders": inputs}}})


async def drive(config: dict[str, Any]) -> dict[str, Any]:
    """Send the run's orders: at `rate` per second (open loop), or as fast as `connections`
    connections go (closed loop, rate 0). Returns the summary the bench parses."""
    port, label, orders = int(config["port"]), str(config["label"]), int(config["orders"])
    rate, users = float(config["rate"]), [str(u) for u in config["user_ids"]]
    batch = max(1, int(config.get("batch", 1)))
    head = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nAuthorization: Bearer {config['token']}\r\n"
        "Content-Length: "
    ).encode()
    count = int(config["in_flight"]) if rate else int(config["connections"])
    # Idle connections, the most recently used last: a light load keeps reusing a few warm
    # connections, and only the main loop below takes from it, so orders leave in index
    # order even when every connection is busy.
    idle: list[Connection] = [await Connection.open(port) for _ in range(min(count, 32))]
    opened = len(idle)
    released = asyncio.Event()

    async def take() -> Connection:
        nonlocal opened
        while True:
            while idle:
                conn = idle.pop()
                if conn.usable:
                    return conn
                conn.writer.close()
                opened -= 1
            if opened < count:
                opened += 1
                return await Connection.open(port)
            released.clear()
            await released.wait()

    latencies: list[float] = []
    slips: list[float] = []
    failures: list[str] = []
    loop = asyncio.get_running_loop()
    print("READY", flush=True)  # the bench starts counting CPU now
    cpu_start = time.process_time()
    start = time.time() + 0.5
    first_send: list[float] = []
    last_answer = 0.0

    async def send(conn: Connection, index: int, due: float) -> None:
        """One request on `conn` (order `index`, or the batch of `batch` orders that ends with
        it), which the caller took; gives it back (or drops it, broken)."""
        nonlocal last_answer, opened
        sent = time.time()
        if not first_send:
            first_send.append(sent)
        slips.append(sent - due)
        if batch == 1:
            body = order_body(index, label, users[index % len(users)], due)
        else:
            first = index - batch + 1
            body = batch_body(
                [
                    order_input(i, label, users[i % len(users)], due - (index - i) / (rate or 1e9))
                    for i in range(first, index + 1)
                ]
            )
        expected = batch
        try:
            status, answer = await conn.post(head, body)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            failures.append(f"order {index}: {exc!r}")
            conn.writer.close()
            opened -= 1
        else:
            if (
                status != 200
                or answer.count(b'"outcome":"NEW"') != expected
                or b'"errors":[]' not in answer
            ):
                failures.append(f"{status} {answer[:300]!r}")
            idle.append(conn)
        last_answer = time.time()
        latencies.append(last_answer - sent)
        released.set()

    await asyncio.sleep(max(0.0, start - time.time()))
    tasks = []
    # A batch leaves when its last order is due: the wait to fill it is part of the lag.
    for index in range(batch - 1, orders, batch):
        due = start + index / rate if rate else 0.0
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = await take()
        tasks.append(loop.create_task(send(conn, index, due or time.time())))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.writer.close()
    return {
        "orders": orders,
        "first_send": first_send[0],
        "last_answer": last_answer,
        "failed": len(failures),
        "failure": failures[0] if failures else None,
        "p50_ms": 1000 * _percentile(latencies, 0.50),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
        "slip_p99_ms": 1000 * _percentile(slips, 0.99),
        "slip_max_ms": 1000 * max(slips, default=0.0),
        "cpu_seconds": time.process_time() - cpu_start,
    }


def driver_main(config_path: str) -> None:
    import uvloop

    result = uvloop.run(drive(json.loads(Path(config_path).read_text())))
    print("BENCH " + json.dumps(result), flush=True)


# --- runs -----------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    rate: float  # offered orders/s; 0 = closed loop
    orders: int
    users: int
    accepted_rate: float = 0.0  # first send -> last answer
    ledger_rate: float = 0.0  # first send -> last ledger row
    bonus_rate: float = 0.0  # first send -> last bonus granted
    lag_p50_ms: float = 0.0
    lag_p99_ms: float = 0.0
    lag_max_ms: float = 0.0
    answer_p50_ms: float = 0.0
    answer_p99_ms: float = 0.0
    slip_p99_ms: float = 0.0
    recorded_p99_ms: float = 0.0  # completedAt -> the order's row written by the API
    bonuses: int = 0
    uncounted: int = 0
    jobs: int = 0  # goals.process_orders outbox rows (broker messages) for the run
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds over the run
    busy_before: float = 0.0

    @property
    def kind(self) -> str:
        return f"{self.rate:.0f}/s" if self.rate else f"closed {CONNECTIONS}"

    @property
    def others_share(self) -> float:
        return self.cpu.get(OTHERS, 0.0) / max(self.cpu.get(MACHINE, 0.0), 1e-9)

    def cpu_ms(self, component: str) -> float:
        return 1000 * self.cpu.get(component, 0.0) / self.orders


@dataclass
class Bench:
    database: str
    fixture: Fixture
    db: asyncpg.Connection
    redis: Redis
    api: Child
    worker: Child
    port: int
    workdir: Path

    def start_driver(self, label: str, orders: int, rate: float, users: int) -> Child:
        config = {
            "port": self.port,
            "label": label,
            "orders": orders,
            "rate": rate,
            "connections": CONNECTIONS,
            "in_flight": IN_FLIGHT,
            "token": self.fixture.service_token,
            "batch": BATCH,
            "user_ids": [str(u) for u in self.fixture.user_ids[:users]],
        }
        path = self.workdir / f"{label}.json"
        path.write_text(json.dumps(config))
        command = [sys.executable, "-m", "bench.bench_goals_ingest", "driver", str(path)]
        return start_child(
            command, self.workdir, label, {**os.environ, "PYTHONPATH": _pythonpath()}
        )

    async def run(self, label: str, orders: int, rate: float, promotions: bool = True) -> Run:
        users = orders // ORDERS_PER_USER
        if users > len(self.fixture.user_ids) or users * ORDERS_PER_USER != orders:
            raise ValueError(f"{orders} orders need {users} seeded users, 10 orders each")
        await reset(self.db, self.redis, promotions)
        run = Run(label, rate, orders, users)
        run.busy_before = await wait_for_quiet(QUIET_WAIT_SECONDS, QUIET_BUSY_FRACTION)
        guards = {API: self.api.guard.pid, WORKER: self.worker.guard.pid}
        driver = self.start_driver(label, orders, rate, users)
        await wait_for_line(driver, "READY", 60)
        profilers = self.start_profilers(label) if rate == 0 and PYSPY_DIR else []
        before, busy = cpu_snapshot(guards, self.database), machine_busy()
        expected_bonuses = users * ORDERS_PER_USER // GOAL_TARGET  # when no order is late
        await self.wait_done(orders, expected_bonuses, driver, DRAIN_LIMIT_SECONDS + orders / 20)
        after, busy = cpu_snapshot(guards, self.database), machine_busy() - busy
        result = parse_result(await driver.finished(60))
        for profiler in profilers:
            await profiler.finished(120)
        if result["failed"]:
            raise AssertionError(f"{label}: {result['failed']} failed, e.g. {result['failure']}")
        run.cpu = cpu_used(before, after, busy, result["cpu_seconds"])
        first = result["first_send"]
        run.accepted_rate = orders / (result["last_answer"] - first)
        run.answer_p50_ms, run.answer_p99_ms = result["p50_ms"], result["p99_ms"]
        run.slip_p99_ms = result["slip_p99_ms"]
        last_entry, last_bonus, p50, p99, worst, recorded_p99 = await self.db.fetchrow(
            """
            SELECT extract(epoch FROM (SELECT max(created_at) FROM goal_progress))::float8,
                   extract(epoch FROM (SELECT max(bonus_granted_at) FROM user_goals))::float8,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY lag),
                   max(lag),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY recorded)
            FROM (SELECT extract(epoch FROM p.created_at - o.completed_at) AS lag,
                         extract(epoch FROM o.created_at - o.completed_at) AS recorded
                  FROM goal_progress p JOIN goal_orders o USING (order_id)) AS lags
            """
        )
        run.recorded_p99_ms = 1000 * recorded_p99
        run.ledger_rate = orders / (last_entry - first)
        run.bonus_rate = orders / (last_bonus - first)
        run.lag_p50_ms, run.lag_p99_ms, run.lag_max_ms = 1000 * p50, 1000 * p99, 1000 * worst
        run.bonuses, run.uncounted = await self.verify(label, orders)
        if PROMOTIONS:
            await self.verify_promotions(label, orders if promotions else 0)
        run.jobs = await self.db.fetchval(
            "SELECT count(*) FROM outbox_messages WHERE actor = 'goals.process_orders'"
        )
        return run

    async def verify_promotions(self, label: str, rides: int) -> None:
        """Every order a counted ride exactly once (or none, goals alone), progress = rides."""
        counted, distinct, progress = await self.db.fetchrow(
            "SELECT (SELECT count(*) FROM promotion_rides WHERE counted),"
            " (SELECT count(DISTINCT order_id) FROM promotion_rides),"
            " (SELECT coalesce(sum(progress), 0) FROM promotion_users)"
        )
        if (counted, distinct, progress) != (rides, rides, rides):
            raise AssertionError(
                f"{label}: {counted} counted rides, {distinct} orders, progress {progress};"
                f" expected {rides} each"
            )

    async def wait_done(self, orders: int, bonuses: int, driver: Child, limit: float) -> None:
        deadline = time.monotonic() + limit
        while True:
            entries = await self.db.fetchval("SELECT count(*) FROM goal_progress")
            done, granted = await self.db.fetchrow(
                "SELECT count(*) FILTER (WHERE status = 'DONE'),"
                " count(*) FILTER (WHERE bonus_granted_at IS NOT NULL) FROM user_goals"
            )
            # every order processed, and every goal it closed granted (verify() checks the
            # counts against what the run should have produced)
            if entries >= orders and (granted >= bonuses or (granted == done and entries)):
                return
            for child, name in ((self.api, "the API"), (self.worker, "the worker")):
                if not child.alive():
                    raise RuntimeError(f"{name} exited:\n{child.output()[-3000:]}")
            if not driver.alive():
                if "BENCH " not in driver.output():
                    raise RuntimeError(f"the driver failed:\n{driver.output()[-3000:]}")
                result = parse_result(driver.output())
                if result["failed"]:
                    raise AssertionError(
                        f"{result['failed']} orders failed: {result['failure']}\nAPI log:\n"
                        + self.api.output()[-800:]
                    )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{entries}/{orders} ledger rows, {granted}/{bonuses} bonuses after"
                    f" {limit:.0f}s:\n{self.worker.output()[-3000:]}"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def verify(self, label: str, orders: int) -> tuple[int, int]:
        """Exactly once: per order, per goal, per bonus; nothing failed or left unsent.
        Returns (bonuses granted, orders that did not count).

        Every order matches its goal, so an order counts unless it arrives after a later
        order of the same user closed the goal it belonged to: the next goal's period starts
        at the closing order's completion, and the earlier order is OUTSIDE_PERIOD there.
        That happens only when the API answers out of order (under overload); any other
        reason fails the run."""
        await asyncio.sleep(0.5)  # the last batch of outbox marks (20 ms window) and commits
        db = self.db
        stored = await db.fetchval("SELECT count(*) FROM goal_orders")
        entries, counted, reversed_ = await db.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE counted),"
            " count(*) FILTER (WHERE reversed_at IS NOT NULL) FROM goal_progress"
        )
        progress = await db.fetchval("SELECT coalesce(sum(progress), 0) FROM user_goals")
        mismatched = await db.fetchval(
            "SELECT count(*) FROM user_goals g LEFT JOIN (SELECT user_goal_id, count(*) AS n"
            " FROM goal_progress WHERE counted AND reversed_at IS NULL GROUP BY user_goal_id) c"
            " ON c.user_goal_id = g.id WHERE g.progress <> coalesce(c.n, 0)"
        )
        done, granted = await db.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'DONE'),"
            " count(*) FILTER (WHERE bonus_granted_at IS NOT NULL) FROM user_goals"
        )
        wallet = await db.fetchval("SELECT count(*) FROM wallet_entries WHERE kind = 'GOAL_BONUS'")
        wallet_goals = await db.fetchval(
            "SELECT count(DISTINCT user_goal_id) FROM wallet_entries WHERE kind = 'GOAL_BONUS'"
        )
        achievements = await db.fetchval(
            "SELECT count(*) FROM goal_notifications WHERE kind = 'ACHIEVEMENT'"
        )
        outbox, unsent, finishes, jobs = await db.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE sent_at IS NULL),"
            " count(*) FILTER (WHERE actor = 'goals.finish'),"
            " count(*) FILTER (WHERE actor = 'goals.process_orders') FROM outbox_messages"
        )
        pending = await db.fetchval("SELECT count(*) FROM goal_orders WHERE pending_at IS NOT NULL")
        requests = orders // BATCH
        most_jobs = requests * -(-BATCH // JOB_USERS)  # one job per 100 users of a request
        failures = await db.fetchval("SELECT count(*) FROM job_failures")
        reasons = dict(await db.fetch("SELECT reason, count(*) FROM goal_progress GROUP BY reason"))
        other_reasons = {k: v for k, v in reasons.items() if k not in ("COUNTED", "OUTSIDE_PERIOD")}
        problems = [
            f"{stored} orders stored, {orders} sent" if stored != orders else "",
            f"{entries} ledger rows for {orders} orders" if entries != orders else "",
            f"orders not counted for other reasons: {other_reasons}" if other_reasons else "",
            f"{reversed_} reversed" if reversed_ else "",
            f"sum(progress) {progress} != counted rows {counted}" if progress != counted else "",
            f"{mismatched} goals whose progress disagrees with the ledger" if mismatched else "",
            f"{granted} bonuses granted for {done} DONE goals" if granted != done else "",
            f"{wallet} wallet bonus entries for {done} DONE goals" if wallet != done else "",
            f"wallet entries for {wallet_goals} goals, {done} DONE" if wallet_goals != done else "",
            f"{achievements} achievements for {done} DONE" if achievements != done else "",
            f"{unsent} of {outbox} outbox rows unsent" if unsent else "",
            f"goals.finish rows {finishes} != DONE goals {done}" if finishes != done else "",
            f"{jobs} process_orders jobs for {requests} requests" if jobs > most_jobs else "",
            f"outbox rows {outbox} != jobs + finishes" if outbox != jobs + finishes else "",
            f"{pending} orders still pending" if pending else "",
            f"{failures} job failures" if failures else "",
        ]
        if any(problems):
            sample = await db.fetch(
                "SELECT p.order_id, p.reason, o.completed_at, o.created_at AS recorded_at,"
                " (SELECT max(m.sent_at) FROM outbox_messages m"
                "  WHERE m.kwargs->>'order_id' = p.order_id) AS published_at,"
                " p.created_at AS processed_at,"
                " g.starts_at, g.activated_at, g.status FROM goal_progress p"
                " JOIN goal_orders o USING (order_id)"
                " LEFT JOIN user_goals g ON g.id = p.user_goal_id"
                " WHERE NOT p.counted ORDER BY o.completed_at LIMIT 3"
            )
            raise AssertionError(
                f"{label}: "
                + "; ".join(filter(None, problems))
                + f"\nreasons: {reasons}\nnot counted: "
                + "\n  ".join(str(dict(r)) for r in sample)
                + f"\nworker log:\n{self.worker.output()[-2000:]}"
                + f"\nAPI log:\n{self.api.output()[-2000:]}"
            )
        return int(granted), orders - int(counted)

    def start_profilers(self, label: str) -> list[Child]:
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        stats = all_stats()
        found = []
        for name, child in (("api", self.api), ("worker", self.worker)):
            pids = [
                pid
                for pid in descendants(child.guard.pid, stats)
                if "python" in stats[pid][0] or "engage" in stats[pid][0]
            ]
            # the worker's Dramatiq process is the newest (the CLI's own process forks it)
            pid = max(pids) if name == "worker" else min(pids)
            out = Path(PYSPY_DIR) / f"goals-ingest-{name}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            command = [
                py_spy, "record", "--nonblocking", "-r", "97", "-d", "15", "-f", "raw",
                "-o", str(out), "-p", str(pid),
            ]  # fmt: skip
            found.append(start_child(command, self.workdir, f"py-spy-{name}"))
        return found


def _env(dsn: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ENGAGE_ENV": "production",
        "DATABASE_URL": dsn,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": "bench-goals-ingest-secret-0123456789abcdef-01",
        "LOG_LEVEL": "WARNING",
        "WORKER_SHUTDOWN_TIMEOUT_SECONDS": "5",
        "PYTHONPATH": _pythonpath(),
    }
    if WORKER_TIMEOUT_MS:  # the idle poll backoff's cap (jobs.worker.PollTimeout)
        env["WORKER_POLL_TIMEOUT_MS"] = WORKER_TIMEOUT_MS
    for name in (
        "JOBS_IN_PROCESS",
        "SCHEDULER_IN_PROCESS",
        "DATABASE_POOL_SIZE",
        "JWT_JWKS_URL",
        "WORKER_METRICS_PORT",
    ):
        env.pop(name, None)
    return env


@contextlib.asynccontextmanager
async def open_bench() -> AsyncIterator[Bench]:
    """A fresh database and Redis db, the seed, the API and the worker; then cleanup."""
    orders = [int(rate * SECONDS) // ORDERS_PER_USER * ORDERS_PER_USER for rate in RATES]
    users = max([*orders, MAX_ORDERS, WARMUP_ORDERS]) // ORDERS_PER_USER
    database = f"engage_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=database)
    dsn = url.render_as_string(hide_password=False)
    settings = Settings(database_url=dsn, redis_url=REDIS_URL)
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-goals-ingest-"))
    api: Child | None = None
    worker: Child | None = None
    db: asyncpg.Connection | None = None
    redis = Redis.from_url(REDIS_URL)
    try:
        redis.flushdb()
        await asyncio.to_thread(upgrade, settings, "head")
        started = time.monotonic()
        fixture = await seed(settings, users)
        db = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
        await snapshot(db, users)
        print(f"seeded {users} users in {time.monotonic() - started:.1f}s", flush=True)
        port = _free_port()
        pin = ["taskset", "-c", API_CORE] if PIN_API else []
        serve = [*pin, *_engage(), "serve", "--host", "127.0.0.1", "--port", str(port)]
        api_env = _env(dsn) | ({"DATABASE_POOL_SIZE": API_POOL} if API_POOL else {})
        api = start_child(serve, workdir, "api", api_env)
        worker_command = [
            *_engage(), "worker", "--processes", "1", "--threads", str(WORKER_THREADS),
        ]  # fmt: skip
        worker = start_child(worker_command, workdir, "worker", _env(dsn))
        print(f"API ready after {await wait_ready(api, port):.1f}s", flush=True)
        yield Bench(database, fixture, db, redis, api, worker, port, workdir)
    finally:
        for child in (api, worker):
            if child is not None:
                child.stop()
        if db is not None:
            await db.close()
        with contextlib.suppress(Exception):
            redis.flushdb()
        redis.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(workdir, ignore_errors=True)


# --- report -----------------------------------------------------------------------------------

HEADER = (
    f"{'run':<10} {'offered':>9} {'orders':>6} {'api/s':>6} {'ledger/s':>8} {'bonus/s':>7}"
    f" {'lag p50':>8} {'lag p99':>8} {'lag max':>8} {'ans p50':>8} {'ans p99':>8}"
    f" {'slip p99':>8} {'rec p99':>8} {'bonuses':>7} {'late':>5} {'busy0':>5} {'other':>5}"
    "  CPU ms/order:" + "".join(f" {c:>8}" for c in (*COMPONENTS, MACHINE))
)


def format_run(run: Run) -> str:
    cpu = "".join(f" {run.cpu_ms(c):8.2f}" for c in (*COMPONENTS, MACHINE))
    return (
        f"{run.label:<10} {run.kind:>9} {run.orders:6d} {run.accepted_rate:6.0f}"
        f" {run.ledger_rate:8.0f} {run.bonus_rate:7.0f} {run.lag_p50_ms:8.0f}"
        f" {run.lag_p99_ms:8.0f} {run.lag_max_ms:8.0f} {run.answer_p50_ms:8.1f}"
        f" {run.answer_p99_ms:8.1f} {run.slip_p99_ms:8.1f} {run.recorded_p99_ms:8.0f}"
        f" {run.bonuses:7d} {run.uncounted:5d}"
        f" {run.busy_before:5.0%} {run.others_share:5.0%}              {cpu}"
    )


def report(runs: list[Run]) -> dict[str, float]:
    measured = [run for run in runs if run.label != "warm-up"]
    best = max(measured, key=lambda run: run.bonus_rate)
    print()
    print(
        f"most orders/s end to end: {best.bonus_rate:.0f}/s to the last bonus"
        f" ({best.ledger_rate:.0f}/s to the last ledger row, API accepted"
        f" {best.accepted_rate:.0f}/s), {best.kind}"
    )
    rate_ok = (
        "met"
        if best.bonus_rate >= TARGET_RATE
        else f"MISSED by {TARGET_RATE - best.bonus_rate:.0f}/s"
        f" ({1 - best.bonus_rate / TARGET_RATE:.0%} short)"
    )
    print(f"target >= {TARGET_RATE:.0f} orders/s: {rate_ok}")
    for run in measured:
        if run.rate:
            kept = run.ledger_rate >= 0.95 * run.rate
            lag_ok = run.lag_p99_ms < 1000 * TARGET_LAG_P99_S
            print(
                f"at {run.rate:.0f}/s offered: ledger {run.ledger_rate:.0f}/s"
                f" ({'kept up' if kept else 'fell behind'}), lag p50 {run.lag_p50_ms:.0f} ms,"
                f" p99 {run.lag_p99_ms:.0f} ms"
                f" ({'under' if lag_ok else 'OVER'} {TARGET_LAG_P99_S:.0f} s)"
            )
    late = [run for run in measured if run.uncounted]
    for run in late:
        print(
            f"{run.label}: {run.uncounted} orders OUTSIDE_PERIOD: the API wrote them up to"
            f" {run.recorded_p99_ms / 1000:.1f} s (p99) after completedAt, after a later order"
            " of the same user had closed their goal"
        )
    for component in (*COMPONENTS, MACHINE):
        values = [run.cpu_ms(component) for run in measured]
        print(f"  CPU {component:<8} median {statistics.median(values):6.2f} ms/order")
    noisy = [run for run in runs if run.others_share > NOISY_SHARE]
    if noisy:
        print(
            f"WARNING: {len(noisy)} run(s) shared the machine with other work (more than"
            f" {NOISY_SHARE:.0%} of the busy CPU was not ours): their figures are pessimistic"
        )
    return {"best_bonus_rate": best.bonus_rate, "best_ledger_rate": best.ledger_rate}


async def amain() -> dict[str, float]:
    async with open_bench() as bench:
        print(f"machine: {machine_notes()}")
        pin = f"taskset -c {API_CORE} " if PIN_API else ""
        print(
            f"database {bench.database}, redis {REDIS_URL}; API: {pin}engage serve"
            f" (production, LOG_LEVEL=WARNING); worker: engage worker --processes 1 --threads"
            f" {WORKER_THREADS}; driver: a uvloop process, open loop at {RATES} orders/s for"
            f" {SECONDS:.0f}s each, then closed loop on {CONNECTIONS} connections"
            f" ({MAX_ORDERS} orders); {ORDERS_PER_USER} orders per user, goals of"
            f" {GOAL_TARGET}",
            flush=True,
        )
        kind = "orderRecord" if BATCH == 1 else f"orderRecordBatch of {BATCH}"
        print(f"requests: {kind}", flush=True)
        print(HEADER, flush=True)
        runs: list[Run] = []

        async def run(label: str, orders: int, rate: float) -> None:
            orders = max(BATCH, orders // BATCH * BATCH)  # whole batches
            runs.append(await bench.run(label, orders, rate))
            print(format_run(runs[-1]), f"jobs {runs[-1].jobs}", flush=True)

        if PROMOTIONS:
            return await compare_consumers(bench, runs)
        await run("warm-up", WARMUP_ORDERS, WARMUP_RATE)
        for rate in RATES:
            orders = int(rate * SECONDS) // ORDERS_PER_USER * ORDERS_PER_USER
            await run(f"paced-{rate:.0f}", orders, rate)
        await run("max", MAX_ORDERS // ORDERS_PER_USER * ORDERS_PER_USER, 0.0)
        return report(runs)


async def compare_consumers(bench: Bench, runs: list[Run]) -> dict[str, float]:
    """Closed-loop runs alternating goals alone and goals + promotions; the ratio."""
    orders = MAX_ORDERS // ORDERS_PER_USER * ORDERS_PER_USER
    runs.append(await bench.run("warm-up", WARMUP_ORDERS, WARMUP_RATE))
    print(format_run(runs[-1]), flush=True)
    by_mode: dict[bool, list[Run]] = {False: [], True: []}
    for both in (False, True, False, True):
        label = "max-both" if both else "max-goals"
        result = await bench.run(label, orders, 0.0, promotions=both)
        runs.append(result)
        by_mode[both].append(result)
        print(format_run(result), f"jobs {result.jobs}", flush=True)
    alone = statistics.median(r.ledger_rate for r in by_mode[False])
    both_rate = statistics.median(r.ledger_rate for r in by_mode[True])
    ratio = both_rate / alone
    worker_alone = statistics.median(r.cpu_ms(WORKER) for r in by_mode[False])
    worker_both = statistics.median(r.cpu_ms(WORKER) for r in by_mode[True])
    print(
        f"\norders/s to the last ledger row: goals alone {alone:.0f}, goals + promotions"
        f" {both_rate:.0f}: ratio {ratio:.2f} (target >= 0.80:"
        f" {'met' if ratio >= 0.8 else 'MISSED'}); worker CPU {worker_alone:.2f} ->"
        f" {worker_both:.2f} ms/order"
    )
    return {"ratio": ratio, "goals_alone": alone, "both": both_rate}


def main() -> None:
    run_until_done(amain)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "driver":
        driver_main(sys.argv[2])
    else:
        main()
