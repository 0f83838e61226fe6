"""The goals read path (goals, issue 4): engage's GraphQL against two baselines, side by side.

    query { launch { personalGoals { hasUnseenAchievements } }
            viewer { goals { active { ...G } next { ...G } recent { ...G } } } }

(every field of `UserGoal` in the fragment), for a user with 1 ACTIVE goal with progress,
3 NEXT goals and 3 DONE goals whose bonuses were granted (a wallet credit, a personal
promocode, a cashback window), one of their three achievements unseen.

One uvicorn process pinned to core 0 (`taskset -c 0`), started the way `engage serve` starts
uvicorn, serves `bench/_goals_read_app.py`: three routes in the same process, on the same
engine (the app's pool, 10 + 10 connections), over the same rows:

- engage: `/graphql`, engage's real app (`app.main.create_app`), untouched;
- core: `/baseline/core`, a Starlette endpoint that sends the same statements with
  SQLAlchemy Core and writes the same JSON, no GraphQL;
- graphql-core: `/baseline/graphql-core`, raw `graphql.execute` of the same document, parsed
  and validated once at start-up, against a `graphql.build_schema` copy of engage's SDL with
  plain async resolvers sending the same statements.

All three check the same credential: the user's Bearer access token (engage's
`AccessTokenCodec`), then the user's row. wrk pinned to core 1 (`taskset -c 1`, 2 threads,
32 connections) POSTs the same GraphQL request body to each, with the token of a random seeded
user per request. Before measuring, the bench checks that the three answer the same JSON for
several users, and records the statements each sends for one request. Then rounds of the three
subjects, rotated (engage, core, graphql-core; core, graphql-core, engage; ...), each run a
wrk warm-up then the measured wrk run; CPU per component is read from /proc. Last, one run
per subject on a single connection (the unloaded latency). The report gives the medians per
subject and the ratios engage/core and engage/graphql-core.

    make bench                                  # every benchmark
    .venv/bin/python -m bench.bench_goals_read  # this one (about 4 minutes)

Knobs (environment): BENCH_GOALS_READ_USERS (200), BENCH_GOALS_READ_DURATION (15 s),
BENCH_GOALS_READ_WARMUP (3 s), BENCH_GOALS_READ_ROUNDS (3), BENCH_GOALS_READ_CONNECTIONS (32),
BENCH_GOALS_READ_SINGLE_SECONDS (5: then one run per subject on 1 connection; 0 skips it),
BENCH_GOALS_READ_PYSPY (a directory: py-spy records the server during the first measured run
of each subject; BENCH_GOALS_READ_PYSPY_RATE samples/s, 97), BENCH_PG_URL (postgresql://postgres@127.0.0.1:5432/postgres),
BENCH_GOALS_READ_REDIS_URL (redis://127.0.0.1:6379/12, flushed), BENCH_GOALS_READ_GC (tuned:
`engage serve`'s interpreter settings, app/interpreter.py, for all three subjects; default:
Python's). The bench creates and drops
its own database, engage_bench_<hex>; wrk must be installed (`apt-get install -y wrk`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from redis import Redis
from sqlalchemy import update
from sqlalchemy.engine import make_url

from app.auth import AccessTokenCodec
from app.db import SessionFactory, create_engine, create_session_factory
from app.migrate import upgrade
from app.models.base import utcnow
from app.models.goals import GoalNotification, GoalTemplate, NotificationKind
from app.models.identity import Role, User
from app.services.goals.assignment import Assignment, assign_goal
from app.services.goals.granting import finish_goal
from app.services.goals.processing import process_order
from app.services.orders.facts import OrderKind, OrderStatus
from app.services.orders.recording import OrderInput, record_order
from app.settings import Settings
from bench._goals_read_app import QUERY
from bench._proc import (
    all_stats,
    descendants,
    machine_notes,
    run_until_done,
    wait_for_quiet,
)
from bench.bench_purchase_create import (
    CLIENT,
    MACHINE,
    OTHERS,
    POSTGRES,
    REDIS,
    SERVER,
    Child,
    _free_port,
    _pythonpath,
    cpu_snapshot,
    cpu_used,
    parse_result,
    start_child,
    wait_ready,
)
from jobs import registry

USERS = int(os.environ.get("BENCH_GOALS_READ_USERS", "200"))
DURATION = int(os.environ.get("BENCH_GOALS_READ_DURATION", "15"))
WARMUP = int(os.environ.get("BENCH_GOALS_READ_WARMUP", "3"))
ROUNDS = int(os.environ.get("BENCH_GOALS_READ_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_GOALS_READ_CONNECTIONS", "32"))
SINGLE_SECONDS = int(os.environ.get("BENCH_GOALS_READ_SINGLE_SECONDS", "5"))
PYSPY_DIR = os.environ.get("BENCH_GOALS_READ_PYSPY", "")
PYSPY_RATE = int(os.environ.get("BENCH_GOALS_READ_PYSPY_RATE", "97"))
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_GOALS_READ_REDIS_URL", "redis://127.0.0.1:6379/12")

SERVER_CORE = "0"
CLIENT_CORE = "1"
WRK_THREADS = 2
JWT_SECRET = "bench-goals-read-secret-0123456789abcdef-0123"  # 32+ characters
TOKEN_TTL_SECONDS = 24 * 3600
SEED_CONCURRENCY = 8
QUIET_BUSY_FRACTION = 0.15
QUIET_WAIT_SECONDS = 90.0
NOISY_SHARE = 0.10
COMPARE_USERS = 8
TARGET_RATIO = 1.0  # engage / raw graphql-core
TARGET_P99_MS = 50.0

ENGAGE, CORE, GRAPHQL_CORE = "engage", "core", "graphql-core"
SUBJECTS = (ENGAGE, CORE, GRAPHQL_CORE)
PATHS = {ENGAGE: "/graphql", CORE: "/baseline/core", GRAPHQL_CORE: "/baseline/graphql-core"}

LUA_TEMPLATE = r"""
-- generated by bench/bench_goals_read.py
local tokens = {%(tokens)s}
local body = "%(body)s"
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  ok_count = 0
  fail_count = 0
  math.randomseed(os.time() + tid * 7919)
end

function request()
  return wrk.format("POST", wrk.path, {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[math.random(1, #tokens)],
  }, body)
end

function response(status, headers, body)
  if status == 200 and string.find(body, '"hasUnseenAchievements":true', 1, true)
      and not string.find(body, '"errors"', 1, true) then
    ok_count = ok_count + 1
  else
    fail_count = fail_count + 1
    if first_failure == nil then
      first_failure = status .. " " .. string.sub(body, 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local ok, failed, sample = 0, 0, nil
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("ok_count")
    failed = failed + thread:get("fail_count")
    sample = sample or thread:get("first_failure")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%%d,"duration_us":%%d,"ok":%%d,"failed":%%d,"p50_us":%%d,'
    .. '"p90_us":%%d,"p99_us":%%d,"max_us":%%d,"socket_errors":%%d}\n',
    summary.requests, summary.duration, ok, failed, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout + e.status))
  if sample then
    io.write("BENCH_FAILURE " .. sample .. "\n")
  end
end
"""


# --- seed: templates, users, and their goals through the services ---------------------------

DONE_TEMPLATES = ("bench-comfort-2", "bench-card-2", "bench-any-3")
ACTIVE_TEMPLATE = "bench-comfort-5"
NEXT_TEMPLATES = ("bench-night-2", "bench-wallet-3", "bench-business-4")
ACTIVE_PROGRESS = 2

TEMPLATES: dict[str, dict[str, Any]] = {
    "bench-comfort-2": {
        "title": {"en": "Take 2 Comfort rides", "ru": "Совершите 2 поездки в «Комфорте»"},
        "description": {
            "en": "Two rides in 7 days earn 300 RUB in your wallet.",
            "ru": "Две поездки за 7 дней — 300 ₽ на кошелёк.",
        },
        "details": {
            "en": ["Comfort or Comfort+", "From 200 RUB"],
            "ru": ["«Комфорт» или «Комфорт+»", "От 200 ₽"],
        },
        "button_text": {"en": "Collect", "ru": "Забрать"},
        "conditions": {
            "target": 2,
            "periodDays": 7,
            "rideClasses": ["comfort", "comfort_plus"],
            "minPrice": {"amountMinor": 20_000, "currency": "RUB"},
        },
        "bonus": {"type": "WALLET", "amountMinor": 30_000, "currency": "RUB"},
    },
    "bench-card-2": {
        "title": {"en": "Pay by card twice", "ru": "Оплатите картой дважды"},
        "description": {
            "en": "Two card-paid rides earn a 15 % promocode.",
            "ru": "Две поездки, оплаченные картой, — промокод на 15 %.",
        },
        "details": {"en": ["Payment: card"], "ru": ["Оплата: карта"]},
        "button_text": {"en": "Get the code", "ru": "Получить код"},
        "conditions": {"target": 2, "periodDays": 7, "paymentMethods": ["card"]},
        "bonus": {
            "type": "PROMOCODE",
            "kind": "PERCENT",
            "value": 15,
            "validityDays": 30,
            "rideClasses": ["comfort"],
        },
    },
    "bench-any-3": {
        "title": {"en": "Three rides in two weeks", "ru": "Три поездки за две недели"},
        "description": {
            "en": "Any three rides earn 5 % cashback for 14 days.",
            "ru": "Любые три поездки — кешбэк 5 % на 14 дней.",
        },
        "details": {"en": ["Any class", "Any time"], "ru": ["Любой тариф", "Круглосуточно"]},
        "button_text": {"en": "Nice", "ru": "Отлично"},
        "conditions": {"target": 3, "periodDays": 14},
        "bonus": {"type": "CASHBACK", "percent": 5, "days": 14},
    },
    "bench-comfort-5": {
        "title": {"en": "Take 5 Comfort rides", "ru": "Совершите 5 поездок в «Комфорте»"},
        "description": {
            "en": "Five rides in 7 days earn 500 RUB in your wallet.",
            "ru": "Пять поездок за 7 дней — 500 ₽ на кошелёк.",
        },
        "details": {"en": ["Comfort", "From 200 RUB"], "ru": ["«Комфорт»", "От 200 ₽"]},
        "button_text": {"en": "Let's go", "ru": "Поехали"},
        "conditions": {
            "target": 5,
            "periodDays": 7,
            "rideClasses": ["comfort"],
            "minPrice": {"amountMinor": 20_000, "currency": "RUB"},
        },
        "bonus": {"type": "WALLET", "amountMinor": 50_000, "currency": "RUB"},
    },
    "bench-night-2": {
        "title": {"en": "Two night rides", "ru": "Две ночные поездки"},
        "description": {
            "en": "Ride between 22:00 and 06:00 twice for a 15 % promocode.",
            "ru": "Две ночные поездки (22:00-06:00) — промокод на 15 %.",
        },
        "details": {
            "en": ["22:00-06:00, your city's time", "Any class"],
            "ru": ["22:00-06:00 по времени города", "Любой тариф"],
        },
        "button_text": {"en": "Get the code", "ru": "Получить код"},
        "conditions": {
            "target": 2,
            "periodDays": 7,
            "timeWindow": {"start": "22:00", "end": "06:00"},
        },
        "bonus": {"type": "PROMOCODE", "kind": "PERCENT", "value": 15, "validityDays": 30},
    },
    "bench-wallet-3": {
        "title": {"en": "Pay by wallet 3 times", "ru": "Оплатите кошельком 3 раза"},
        "description": {
            "en": "Three wallet-paid rides earn 5 % cashback for 14 days.",
            "ru": "Три поездки, оплаченные кошельком, — кешбэк 5 % на 14 дней.",
        },
        "details": {"en": ["Payment: wallet"], "ru": ["Оплата: кошелёк"]},
        "button_text": {"en": "Nice", "ru": "Отлично"},
        "conditions": {"target": 3, "periodDays": 7, "paymentMethods": ["wallet"]},
        "bonus": {"type": "CASHBACK", "percent": 5, "days": 14},
    },
    "bench-business-4": {
        "title": {"en": "Four Business rides", "ru": "Четыре поездки в «Бизнесе»"},
        "description": {
            "en": "Four Business rides in 10 days earn 1,000 RUB.",
            "ru": "Четыре поездки в «Бизнесе» за 10 дней — 1 000 ₽.",
        },
        "details": {"en": ["Business class"], "ru": ["Тариф «Бизнес»"]},
        "button_text": {"en": "Collect", "ru": "Забрать"},
        "conditions": {"target": 4, "periodDays": 10, "rideClasses": ["business"]},
        "bonus": {"type": "WALLET", "amountMinor": 100_000, "currency": "RUB"},
    },
}


@dataclass
class Fixture:
    user_ids: list[uuid.UUID]
    tokens: list[str]


async def _ride(factory: SessionFactory, user_id: uuid.UUID, label: str) -> uuid.UUID | None:
    """One matching order, recorded then processed as the actor would; the goal it closed."""
    done = utcnow()
    order = OrderInput(
        order_id=f"seed-{label}-{uuid.uuid4().hex[:12]}",
        user_id=user_id,
        kind=OrderKind.RIDE,
        status=OrderStatus.COMPLETE,
        ride_class="comfort",
        payment_method="card",
        price_minor=50_000,
        currency="RUB",
        ordered_at=done - timedelta(minutes=25),
        completed_at=done,
        city_timezone="Europe/Moscow",
    )
    async with factory() as session, session.begin():
        await record_order(session, order)
    async with factory() as session, session.begin():
        result = await process_order(session, order.order_id, user_id, now=utcnow())
    return result.user_goal_id if result.closed else None


async def _assign(factory: SessionFactory, user_id: uuid.UUID, template_id: str) -> None:
    async with factory() as session, session.begin():
        await assign_goal(session, Assignment(user_id, template_id), actor="bench", now=utcnow())


async def seed_user(factory: SessionFactory, user_id: uuid.UUID) -> None:
    """3 goals reached (bonuses granted, 2 of 3 achievements seen), then 1 ACTIVE with
    progress and 3 NEXT."""
    for template_id in DONE_TEMPLATES:
        await _assign(factory, user_id, template_id)
    closed: list[uuid.UUID] = []
    while len(closed) < len(DONE_TEMPLATES):
        goal_id = await _ride(factory, user_id, "done")
        if goal_id is not None:
            async with factory() as session, session.begin():
                assert await finish_goal(session, goal_id, now=utcnow())
            closed.append(goal_id)
    async with factory() as session, session.begin():
        await session.execute(
            update(GoalNotification)
            .where(
                GoalNotification.user_goal_id.in_(closed[:-1]),
                GoalNotification.kind == NotificationKind.ACHIEVEMENT,
            )
            .values(seen_at=utcnow())
        )
    for template_id in (ACTIVE_TEMPLATE, *NEXT_TEMPLATES):
        await _assign(factory, user_id, template_id)
    for _ in range(ACTIVE_PROGRESS):
        await _ride(factory, user_id, "active")


async def seed(settings: Settings) -> Fixture:
    registry.load_actor_modules()  # the services enqueue jobs by actor name
    engine = create_engine(settings, pool_size=SEED_CONCURRENCY + 2)
    factory = create_session_factory(engine)
    codec = AccessTokenCodec(settings)
    try:
        async with factory() as session, session.begin():
            session.add_all(
                GoalTemplate(
                    id=template_id,
                    default_locale="en",
                    created_by="bench",
                    updated_by="bench",
                    **data,
                )
                for template_id, data in TEMPLATES.items()
            )
            users = [
                User(
                    email=f"goals-read-{index}@example.com",
                    roles=[Role.USER.value],
                    locale="ru" if index % 2 else "en",
                )
                for index in range(USERS)
            ]
            session.add_all(users)
            await session.flush()
            fixture = Fixture(
                [user.id for user in users],
                [codec.issue(user.id, user.roles) for user in users],
            )
        gate = asyncio.Semaphore(SEED_CONCURRENCY)

        async def one(user_id: uuid.UUID) -> None:
            async with gate:
                await seed_user(factory, user_id)

        await asyncio.gather(*(one(user_id) for user_id in fixture.user_ids))
    finally:
        await engine.dispose()
    return fixture


async def check_seed(db: asyncpg.Connection) -> None:
    """Every user has the set the bench promises (1 ACTIVE, 3 NEXT, 3 DONE granted, 1
    unseen achievement); the seeding's outbox rows go (no worker runs here)."""
    rows = await db.fetch(
        """
        SELECT u.id,
               count(*) FILTER (WHERE g.status = 'ACTIVE' AND g.progress = $1) AS active,
               count(*) FILTER (WHERE g.status = 'NEXT') AS next,
               count(*) FILTER (WHERE g.status = 'DONE' AND g.bonus_granted_at IS NOT NULL)
                   AS done,
               (SELECT count(*) FROM goal_notifications n WHERE n.user_id = u.id
                   AND n.kind = 'ACHIEVEMENT' AND n.seen_at IS NULL) AS unseen
        FROM users u JOIN user_goals g ON g.user_id = u.id
        GROUP BY u.id
        """,
        ACTIVE_PROGRESS,
    )
    wrong = [row for row in rows if tuple(row)[1:] != (1, 3, 3, 1)]
    if len(rows) != USERS or wrong:
        raise AssertionError(f"seed: {len(rows)} users, {len(wrong)} wrong, e.g. {wrong[:2]}")
    await db.execute("TRUNCATE outbox_messages")
    await db.execute("VACUUM ANALYZE")
    await db.execute("CHECKPOINT")


# --- server, load, runs -------------------------------------------------------------------


def start_server(dsn: str, port: int, workdir: Path) -> Child:
    env = {
        **os.environ,
        "ENGAGE_ENV": "production",
        "DATABASE_URL": dsn,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": JWT_SECRET,
        "ACCESS_TOKEN_TTL_SECONDS": str(TOKEN_TTL_SECONDS),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": _pythonpath(),
    }
    for name in ("JOBS_IN_PROCESS", "SCHEDULER_IN_PROCESS", "DATABASE_POOL_SIZE", "JWT_JWKS_URL"):
        env.pop(name, None)
    command = [
        "taskset", "-c", SERVER_CORE, sys.executable, "-m", "bench._goals_read_app", str(port),
    ]  # fmt: skip
    return start_child(command, workdir, "server", env)


def _http(
    port: int, path: str, token: str | None = None, body: bytes | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body)
    if body is not None:
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status), json.loads(response.read())


@dataclass
class Run:
    subject: str
    round: int
    connections: int
    requests: int = 0
    seconds: float = 0.0
    ok: int = 0
    failed: int = 0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    busy_before: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def others_share(self) -> float:
        return self.cpu.get(OTHERS, 0.0) / max(self.cpu.get(MACHINE, 0.0), 1e-9)

    def server_ms(self) -> float:
        """Server CPU per request, in ms."""
        return 1000 * self.cpu.get(SERVER, 0.0) / max(self.rate, 1e-9)


@dataclass
class Bench:
    database: str
    fixture: Fixture
    server: Child
    port: int
    workdir: Path
    body: bytes = json.dumps({"query": QUERY}).encode()

    def lua(self, label: str) -> Path:
        script = LUA_TEMPLATE % {
            "tokens": ",".join(f'"{token}"' for token in self.fixture.tokens),
            "body": self.body.decode().replace("\\", "\\\\").replace('"', '\\"'),
        }
        path = self.workdir / f"{label}.lua"
        path.write_text(script)
        return path

    def start_wrk(
        self, subject: str, label: str, seconds: int, connections: int = CONNECTIONS
    ) -> Child:
        threads = min(WRK_THREADS, connections)
        command = [
            "taskset", "-c", CLIENT_CORE, "wrk",
            "-c", str(connections), "-t", str(threads), "-d", f"{seconds}s",
            "--timeout", "30s", "--latency", "-s", str(self.lua(label)),
            f"http://127.0.0.1:{self.port}{PATHS[subject]}",
        ]  # fmt: skip
        return start_child(command, self.workdir, label)

    async def compare(self) -> dict[str, Any]:
        """The three subjects answer the same JSON, user by user; returns engage's first."""
        first: dict[str, Any] = {}
        for token in random.sample(self.fixture.tokens, min(COMPARE_USERS, USERS)):
            answers = {}
            for subject in SUBJECTS:
                status, answer = await asyncio.to_thread(
                    _http, self.port, PATHS[subject], token, self.body
                )
                if status != 200 or "errors" in answer:
                    raise AssertionError(f"{subject}: HTTP {status}: {str(answer)[:500]}")
                answers[subject] = answer
            for subject in (CORE, GRAPHQL_CORE):
                if answers[subject] != answers[ENGAGE]:
                    raise AssertionError(
                        f"{subject} differs from engage:\n{answers[subject]}\n{answers[ENGAGE]}"
                    )
            goals = answers[ENGAGE]["data"]["viewer"]["goals"]
            shape = (goals["active"] is not None, len(goals["next"]), len(goals["recent"]))
            if shape != (True, 3, 3):
                raise AssertionError(f"unexpected goals {shape}: {goals}")
            first = first or answers[ENGAGE]
        return first

    async def statements(self, subject: str) -> list[str]:
        """What the engine sent for one request of `subject` (the server is otherwise idle)."""
        await asyncio.to_thread(_http, self.port, "/baseline/statements?start")
        await asyncio.to_thread(_http, self.port, PATHS[subject], self.fixture.tokens[0], self.body)
        _, recorded = await asyncio.to_thread(_http, self.port, "/baseline/statements?stop")
        return list(recorded["statements"])

    async def run(
        self, subject: str, round_: int, connections: int = CONNECTIONS, seconds: int = DURATION
    ) -> Run:
        """A warm-up then the measured wrk run (the unloaded runs skip the warm-up)."""
        run = Run(
            subject,
            round_,
            connections,
            busy_before=await wait_for_quiet(QUIET_WAIT_SECONDS, QUIET_BUSY_FRACTION),
        )
        label = f"{subject}-{round_}-c{connections}"
        if connections == CONNECTIONS:
            warm_child = self.start_wrk(subject, f"{label}-warm", WARMUP)
            warm = parse_result(await warm_child.finished(WARMUP + 60))
            if warm["failed"] or warm["socket_errors"]:
                raise AssertionError(f"{label} warm-up failed: {warm}")
        client = self.start_wrk(subject, label, seconds, connections)
        profiler = self.start_profiler(subject) if round_ == 0 else None
        await asyncio.sleep(0.3)
        before = cpu_snapshot(self.server.guard.pid, client.guard.pid)
        await asyncio.sleep(seconds - 0.8)
        after = cpu_snapshot(self.server.guard.pid, client.guard.pid)
        result = parse_result(await client.finished(seconds + 60))
        if profiler is not None:
            await profiler.finished(60)
        run.cpu = cpu_used(before, after)
        run.requests = result["requests"]
        run.seconds = result["duration_us"] / 1e6
        run.ok = result["ok"]
        run.failed = result["failed"] + result["socket_errors"]
        run.p50_ms = result["p50_us"] / 1000
        run.p90_ms = result["p90_us"] / 1000
        run.p99_ms = result["p99_us"] / 1000
        run.max_ms = result["max_us"] / 1000
        if run.failed:
            raise AssertionError(f"{label}: {run.failed} failed: {result.get('failure')}")
        return run

    def start_profiler(self, subject: str) -> Child | None:
        if not PYSPY_DIR:
            return None
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        stats = all_stats()
        pids = [
            pid
            for pid in descendants(self.server.guard.pid, stats)
            if "python" in stats[pid][0] or "engage" in stats[pid][0]
        ]
        out = Path(PYSPY_DIR) / f"goals-read-{subject}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [
            "taskset", "-c", CLIENT_CORE, py_spy, "record", "--nonblocking", "-r", str(PYSPY_RATE),
            "-d", str(DURATION - 2), "-f", "raw", "-o", str(out), "-p", str(min(pids)),
        ]  # fmt: skip
        return start_child(command, self.workdir, f"py-spy-{subject}")


@contextlib.asynccontextmanager
async def open_bench() -> AsyncIterator[Bench]:
    """A fresh database and Redis db, the seeded users, the server; then cleanup."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    database = f"engage_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=database)
    dsn = url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=dsn,
        redis_url=REDIS_URL,
        jwt_secret=JWT_SECRET,
        access_token_ttl_seconds=TOKEN_TTL_SECONDS,
    )
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-goals-read-"))
    server: Child | None = None
    redis = Redis.from_url(REDIS_URL)
    try:
        redis.flushdb()
        await asyncio.to_thread(upgrade, settings, "head")
        started = time.monotonic()
        fixture = await seed(settings)
        db = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
        try:
            await check_seed(db)
        finally:
            await db.close()
        print(f"seeded {USERS} users in {time.monotonic() - started:.1f}s", flush=True)
        port = _free_port()
        server = start_server(dsn, port, workdir)
        print(f"server ready after {await wait_ready(server, port):.1f}s", flush=True)
        yield Bench(database, fixture, server, port, workdir)
    finally:
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):
            redis.flushdb()
        redis.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(workdir, ignore_errors=True)


# --- report -----------------------------------------------------------------------------------

HEADER = (
    f"{'subject':<13} {'round':>5} {'conns':>5} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7}"
    f" {'p99 ms':>7}"
    f" {'max ms':>7} {'requests':>8} {'busy0':>5} {'other':>5}  cores: {'server':>6}"
    f" {'wrk':>5} {'pg':>5} {'redis':>5} {'all':>5}  server ms/req"
)


def format_run(run: Run) -> str:
    cpu = run.cpu
    return (
        f"{run.subject:<13} {run.round:5d} {run.connections:5d} {run.rate:7.0f}"
        f" {run.p50_ms:7.1f} {run.p90_ms:7.1f} {run.p99_ms:7.1f} {run.max_ms:7.0f}"
        f" {run.requests:8d} {run.busy_before:5.0%}"
        f" {run.others_share:5.0%}         {cpu.get(SERVER, 0):6.2f} {cpu.get(CLIENT, 0):5.2f}"
        f" {cpu.get(POSTGRES, 0):5.2f} {cpu.get(REDIS, 0):5.2f} {cpu.get(MACHINE, 0):5.2f}"
        f"  {run.server_ms():13.2f}"
    )


def report(runs: list[Run]) -> dict[str, float]:
    rate, p50, p99, server_ms = {}, {}, {}, {}
    loaded = [run for run in runs if run.connections == CONNECTIONS]
    for subject in SUBJECTS:
        chosen = [run for run in loaded if run.subject == subject]
        rate[subject] = statistics.median(run.rate for run in chosen)
        p50[subject] = statistics.median(run.p50_ms for run in chosen)
        p99[subject] = statistics.median(run.p99_ms for run in chosen)
        server_ms[subject] = statistics.median(run.server_ms() for run in chosen)
    print()
    print(f"medians over {ROUNDS} rounds, {CONNECTIONS} connections, {DURATION}s runs:")
    for subject in SUBJECTS:
        print(
            f"  {subject:<13} {rate[subject]:6.0f} req/s  p50 {p50[subject]:6.1f} ms"
            f"  p99 {p99[subject]:6.1f} ms  server CPU {server_ms[subject]:.2f} ms/request"
        )
    to_core = rate[ENGAGE] / rate[CORE]
    to_raw = rate[ENGAGE] / rate[GRAPHQL_CORE]
    print(f"  engage / core: {to_core:.2f}   engage / graphql-core: {to_raw:.2f}")
    for run in runs:
        if run.connections != CONNECTIONS:
            print(
                f"  {run.subject:<13} at {run.connections} connection(s): {run.rate:6.0f} req/s"
                f"  p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:6.1f} ms"
            )
    ratio_ok = (
        "met" if to_raw >= TARGET_RATIO else f"MISSED (needs {TARGET_RATIO / to_raw:.2f}x more)"
    )
    p99_ok = (
        "met"
        if p99[ENGAGE] < TARGET_P99_MS
        else f"MISSED ({p99[ENGAGE] / TARGET_P99_MS:.1f}x over)"
    )
    print(f"target engage / graphql-core >= {TARGET_RATIO:.1f}: {ratio_ok}")
    print(f"target engage p99 < {TARGET_P99_MS:.0f} ms at {CONNECTIONS} connections: {p99_ok}")
    noisy = [run for run in runs if run.others_share > NOISY_SHARE]
    if noisy:
        print(
            f"WARNING: {len(noisy)} run(s) shared the machine with other work (more than"
            f" {NOISY_SHARE:.0%} of the busy CPU was not ours): their figures are pessimistic"
        )
    figures = {f"{s}_rps": rate[s] for s in SUBJECTS} | {f"{s}_p99_ms": p99[s] for s in SUBJECTS}
    return figures | {"engage_to_core": to_core, "engage_to_graphql_core": to_raw}


async def amain() -> dict[str, float]:
    if (os.cpu_count() or 1) < 2:
        raise RuntimeError("needs two cores: the server on core 0, the load on core 1")
    async with open_bench() as bench:
        print(f"machine: {machine_notes()}")
        print(
            f"database {bench.database}, redis {REDIS_URL}; server: taskset -c {SERVER_CORE}"
            f" uvicorn bench._goals_read_app (ENGAGE_ENV=production, LOG_LEVEL=WARNING,"
            f" GC {os.environ.get('BENCH_GOALS_READ_GC', 'tuned')}); load:"
            f" taskset -c {CLIENT_CORE} wrk -c {CONNECTIONS} -t {WRK_THREADS} -d {DURATION}s"
            f" --latency (warm-up {WARMUP}s before each run); {ROUNDS} rounds x"
            f" {len(SUBJECTS)} subjects; {USERS} users",
            flush=True,
        )
        answer = await bench.compare()
        print(
            f"the three subjects answer the same JSON for {min(COMPARE_USERS, USERS)} users"
            f" ({len(json.dumps(answer))} bytes each)"
        )
        for subject in SUBJECTS:
            statements = await bench.statements(subject)
            print(f"statements per request, {subject}: {len(statements)}")
            for statement in statements:
                print(f"    {statement[:110]}")
        print(HEADER, flush=True)
        runs: list[Run] = []
        for round_ in range(ROUNDS):
            shift = round_ % len(SUBJECTS)
            for subject in SUBJECTS[shift:] + SUBJECTS[:shift]:
                runs.append(await bench.run(subject, round_))
                print(format_run(runs[-1]), flush=True)
        if SINGLE_SECONDS:  # unloaded latency: one connection, one request at a time
            for subject in SUBJECTS:
                runs.append(await bench.run(subject, ROUNDS, 1, SINGLE_SECONDS))
                print(format_run(runs[-1]), flush=True)
        return report(runs)


def main() -> None:
    run_until_done(amain)


if __name__ == "__main__":
    main()
