"""`purchaseCreate` under contention (issue 5): throughput and p99 of a real `engage serve`
process against one plain SQL statement through asyncpg, in the same run.

Scenarios: 64 concurrent clients reserving a use of ONE multi-use code (every reservation
contends on that code's row lock), and the same clients spread over 1,000 codes (each
request picks one at random).

- subject: a real `engage serve` process (ENGAGE_ENV=production, Redis for the rate limiter,
  LOG_LEVEL=WARNING) pinned to core 0 (`taskset -c 0`), loaded by `wrk -c 64 -t 2 --latency`
  pinned to core 1. A Lua script POSTs the `purchaseCreate` mutation with a unique
  `idempotencyKey` per request and a Bearer token rotating over 64 users (access tokens issued
  with `AccessTokenCodec.issue` for users created in the database); its `response` callback
  counts every answer that is not HTTP 200 with an empty `errors` list.
- baseline: a Python process pinned to core 1 (like wrk): 64 asyncio tasks over an asyncpg pool
  of 64 connections, each reservation ONE statement: a CTE that increments `promocodes.uses`
  only while `max_uses IS NULL OR uses < max_uses`, and inserts the purchase and its RESERVED
  `promocode_uses` row only if the increment happened, returning the purchase id. No auth, no
  eligibility rules, no per-user limit, no idempotency record: the floor for the same effect.

PostgreSQL (shared by both) is not pinned. Every run: reset (truncate purchases, uses,
idempotency records, attempts; `uses = 0`; CHECKPOINT; flush the Redis db), wait for the
machine to be idle, a warm-up (BENCH_PURCHASE_WARMUP seconds) then the measured run
(BENCH_PURCHASE_DURATION seconds). Runs alternate subject and baseline (ABBA...). After each
run the database must agree with itself (sum of `uses` == RESERVED ledger rows == purchases,
per code too) and with the clients (purchases == successful answers, up to the requests in
flight when wrk stopped), and no request may have failed: a run with errors is invalid and
aborts the bench. During the measured run the bench samples `pg_stat_activity` of the bench
database (what the backends wait on) and accounts CPU per component from /proc, reported
as cores and as CPU milliseconds per request (the server or the baseline's client, and
PostgreSQL). The baseline process runs with `engage serve`'s interpreter settings
(app/interpreter.py: GC thresholds, the frozen start-up heap).

    make bench                                       # every benchmark
    .venv/bin/python -m bench.bench_purchase_create  # this one (about 4 minutes)

Knobs (environment): BENCH_PURCHASE_DURATION (12 s), BENCH_PURCHASE_WARMUP (3 s),
BENCH_PURCHASE_ROUNDS (2 runs per path and scenario), BENCH_PURCHASE_CLIENTS (64),
BENCH_PURCHASE_CODES (1000), BENCH_PURCHASE_SCENARIOS (one,spread), BENCH_PURCHASE_PYSPY
(a directory: py-spy records the server during the first measured subject run of each
scenario), BENCH_PG_URL (postgresql://postgres@127.0.0.1:5432/postgres),
BENCH_PURCHASE_REDIS_URL (redis://127.0.0.1:6379/11, flushed before every run). The bench
creates and drops its own database, engage_bench_<hex>; wrk must be installed
(`apt-get install -y wrk`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
from redis import Redis
from sqlalchemy.engine import make_url
from strawberry.relay import to_base64

from app.auth import AccessTokenCodec
from app.db import create_engine, create_session_factory
from app.interpreter import freeze_startup_heap, tune
from app.migrate import upgrade
from app.models.identity import Role, User
from app.models.promocodes import Audience, Plan, Promocode, PromocodeKind
from app.settings import Settings
from bench._proc import (
    all_stats,
    descendants,
    machine_busy,
    machine_notes,
    run_until_done,
    wait_for_quiet,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
GUARD = Path(__file__).resolve().with_name("_worker_guard.py")

DURATION = int(os.environ.get("BENCH_PURCHASE_DURATION", "12"))
WARMUP = int(os.environ.get("BENCH_PURCHASE_WARMUP", "3"))
ROUNDS = int(os.environ.get("BENCH_PURCHASE_ROUNDS", "2"))
CLIENTS = int(os.environ.get("BENCH_PURCHASE_CLIENTS", "64"))
CODES = int(os.environ.get("BENCH_PURCHASE_CODES", "1000"))
SCENARIOS = os.environ.get("BENCH_PURCHASE_SCENARIOS", "one,spread").split(",")
PYSPY_DIR = os.environ.get("BENCH_PURCHASE_PYSPY", "")
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_PURCHASE_REDIS_URL", "redis://127.0.0.1:6379/11")

SERVER_CORE = "0"
CLIENT_CORE = "1"
WRK_THREADS = 2
JWT_SECRET = "bench-purchase-create-secret-0123456789abcdef"  # 32+ characters
TOKEN_TTL_SECONDS = 24 * 3600
RESERVATION_TTL_SECONDS = 900  # the app's default PROMOCODE_RESERVATION_TTL_SECONDS
MAX_USES = 10_000_000
MAX_USES_PER_USER = 1_000_000
PRICE_MINOR = 1000
PERCENT_OFF = 20
FINAL_MINOR = PRICE_MINOR * (100 - PERCENT_OFF) // 100
CURRENCY = "EUR"
HOT_CODE = "BENCH-HOT"
SPREAD_FORMAT = "BENCH-S%04d"  # Lua's string.format and Python's % agree on it

GRACE_SECONDS = 5.0
READY_TIMEOUT_SECONDS = 60.0
SAMPLE_SECONDS = 0.2
QUIET_BUSY_FRACTION = 0.15  # of all cores, sampled over one second before each run
QUIET_WAIT_SECONDS = 90.0
NOISY_SHARE = 0.10

SUBJECT = "engage"
BASELINE = "sql"
ONE = "one"
SPREAD = "spread"

MUTATION = (
    "mutation Buy($input: PurchaseCreateInput!) { purchaseCreate(input: $input) "
    "{ purchase { id status } errors { code field message } } }"
)

# The reservation as one statement: the increment gates both inserts.
BASELINE_SQL = """
WITH taken AS (
    UPDATE promocodes SET uses = uses + 1, updated_at = now()
    WHERE code = $1 AND (max_uses IS NULL OR uses < max_uses)
    RETURNING id
), purchase AS (
    INSERT INTO purchases (id, user_id, plan_id, promocode_id, status, list_price_minor,
                           final_price_minor, currency, trial_days, discounted_cycles, created_by)
    SELECT gen_random_uuid(), $2, $3, taken.id, 'PENDING', $4, $5, $6, 0, 1, $7 FROM taken
    RETURNING id, promocode_id
), reserved AS (
    INSERT INTO promocode_uses (id, promocode_id, user_id, purchase_id, status, reserved_until)
    SELECT gen_random_uuid(), purchase.promocode_id, $2, purchase.id, 'RESERVED',
           now() + make_interval(secs => $8)
    FROM purchase
    RETURNING purchase_id
)
SELECT purchase_id FROM reserved
"""

LUA_TEMPLATE = r"""
-- generated by bench/bench_purchase_create.py
local tokens = {%(tokens)s}
local per_thread = %(per_thread)d
local scenario = "%(scenario)s"
local codes = %(codes)d
local label = "%(label)s"
local plan_id = "%(plan_id)s"
local query = "%(query)s"
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  ok_count = 0
  fail_count = 0
  math.randomseed(os.time() + tid * 7919)
end

function request()
  counter = counter + 1
  local token = tokens[tid * per_thread + (counter %% per_thread) + 1]
  local code = "%(hot)s"
  if scenario == "spread" then
    code = string.format("%(spread)s", math.random(0, codes - 1))
  end
  local key = string.format("%%s-%%d-%%d-%%d", label, tid, counter, math.random(1, 1000000000))
  local body = '{"query":"' .. query .. '","variables":{"input":{"planId":"' .. plan_id
    .. '","code":"' .. code .. '","idempotencyKey":"' .. key .. '"}}}'
  return wrk.format("POST", "/graphql", {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function response(status, headers, body)
  if status == 200 and string.find(body, '"errors":[]', 1, true)
      and not string.find(body, '"errors":[{', 1, true) then
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


# --- CPU accounting from /proc -------------------------------------------------------------

SERVER, CLIENT, POSTGRES, REDIS, OTHERS, MACHINE = (
    "server",
    "client",
    "postgres",
    "redis",
    "others",
    "machine",
)
COMPONENTS = (SERVER, CLIENT, POSTGRES, REDIS, OTHERS)


@dataclass
class CpuSnapshot:
    processes: dict[int, tuple[str, float]]
    machine_busy: float
    at: float


def cpu_snapshot(server_guard: int, client_guard: int | None) -> CpuSnapshot:
    """CPU so far of the server's tree, the load generator's tree, every PostgreSQL process
    (the server is shared: other databases' work lands in "postgres" too) and Redis."""
    stats = all_stats()
    server = descendants(server_guard, stats)
    client = descendants(client_guard, stats) if client_guard is not None else set()
    processes: dict[int, tuple[str, float]] = {}
    for pid, (comm, _, seconds) in stats.items():
        if pid in server:
            processes[pid] = (SERVER, seconds)
        elif pid in client:
            processes[pid] = (CLIENT, seconds)
        elif comm == "postgres":
            processes[pid] = (POSTGRES, seconds)
        elif comm == "redis-server":
            processes[pid] = (REDIS, seconds)
    return CpuSnapshot(processes, machine_busy(), time.monotonic())


def cpu_used(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """Cores busy on average per component over the interval (1.0 = one core)."""
    used = dict.fromkeys(COMPONENTS, 0.0)
    for pid, (component, seconds) in after.processes.items():
        start = before.processes.get(pid, (component, 0.0))[1]
        used[component] += max(0.0, seconds - start)
    ours = sum(used.values())
    used[MACHINE] = after.machine_busy - before.machine_busy
    used[OTHERS] = max(0.0, used[MACHINE] - ours)
    elapsed = max(after.at - before.at, 1e-9)
    return {name: seconds / elapsed for name, seconds in used.items()}


# --- guarded child processes ----------------------------------------------------------------


@dataclass
class Child:
    """A command run under bench/_worker_guard.py: it dies with this process."""

    guard: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.guard.poll() is None

    def stop(self) -> None:
        """Close the guard's pipe: it stops the command (SIGTERM, then SIGKILL) and exits."""
        if self.guard.stdin is not None and not self.guard.stdin.closed:
            self.guard.stdin.close()
        try:
            self.guard.wait(timeout=GRACE_SECONDS + 10)
        except subprocess.TimeoutExpired:  # the guard itself is stuck: kill its tree by pid
            leftovers = descendants(self.guard.pid, all_stats())
            self.guard.kill()
            self.guard.wait()
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if not self.log_file.closed:
            self.log_file.close()

    async def finished(self, limit_seconds: float) -> str:
        """Wait for a command that ends on its own; its output."""
        deadline = time.monotonic() + limit_seconds
        while self.alive():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"timed out after {limit_seconds:.0f}s:\n{self.output()[-3000:]}"
                )
            await asyncio.sleep(0.05)
        self.stop()
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_child(
    command: list[str], workdir: Path, name: str, env: dict[str, str] | None = None
) -> Child:
    log_path = workdir / f"{name}.log"
    log_file = log_path.open("wb")
    guard = subprocess.Popen(
        [sys.executable, str(GUARD), str(GRACE_SECONDS), "--", *command],
        stdin=subprocess.PIPE,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=workdir,  # no stray .env from the checkout
        env=env or dict(os.environ),
    )
    return Child(guard, log_path, log_file)


def _engage() -> list[str]:
    engage = shutil.which("engage", path=str(Path(sys.executable).parent))
    return [engage] if engage else [sys.executable, "-m", "app.cli"]


def _pythonpath() -> str:
    return os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- runs -------------------------------------------------------------------------------------


@dataclass
class Run:
    path: str  # SUBJECT or BASELINE
    scenario: str  # ONE or SPREAD
    requests: int = 0
    seconds: float = 0.0
    ok: int = 0
    failed: int = 0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    purchases: int = 0  # in the database after warm-up + run
    answered: int = 0  # successful answers over warm-up + run
    cpu: dict[str, float] = field(default_factory=dict)
    waits: dict[str, float] = field(default_factory=dict)  # mean backends per state
    busy_before: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def cpu_ms_per_op(self, *components: str) -> float:
        """CPU milliseconds per request of `components` (from /proc, over the measured run)."""
        return 1000 * sum(self.cpu.get(name, 0.0) for name in components) / max(self.rate, 1e-9)

    @property
    def others_share(self) -> float:
        return self.cpu.get(OTHERS, 0.0) / max(self.cpu.get(MACHINE, 0.0), 1e-9)


@dataclass
class Fixture:
    plan_id: uuid.UUID
    user_ids: list[uuid.UUID]
    tokens: list[str]


@dataclass
class Bench:
    database: str
    dsn: str
    fixture: Fixture
    db: asyncpg.Connection
    redis: Redis
    server: Child
    port: int
    workdir: Path

    async def reset(self) -> None:
        await self.db.execute(
            "TRUNCATE promocode_uses, purchases, idempotency_records, promocode_attempts"
        )
        await self.db.execute("UPDATE promocodes SET uses = 0 WHERE uses <> 0")
        await self.db.execute("VACUUM ANALYZE promocodes")
        await self.db.execute("CHECKPOINT")
        self.redis.flushdb()

    def lua(self, scenario: str, label: str) -> Path:
        per_thread = CLIENTS // WRK_THREADS
        script = LUA_TEMPLATE % {
            "tokens": ",".join(f'"{token}"' for token in self.fixture.tokens),
            "per_thread": per_thread,
            "scenario": scenario,
            "codes": CODES,
            "label": label,
            "plan_id": to_base64("Plan", str(self.fixture.plan_id)),
            "query": MUTATION.replace('"', '\\"'),
            "hot": HOT_CODE,
            "spread": SPREAD_FORMAT,
        }
        path = self.workdir / f"{label}.lua"
        path.write_text(script)
        return path

    def start_wrk(self, scenario: str, label: str, seconds: int) -> Child:
        script = self.lua(scenario, label)
        command = [
            "taskset", "-c", CLIENT_CORE, "wrk",
            "-c", str(CLIENTS), "-t", str(WRK_THREADS), "-d", f"{seconds}s",
            "--timeout", "30s", "--latency", "-s", str(script),
            f"http://127.0.0.1:{self.port}/graphql",
        ]  # fmt: skip
        return start_child(command, self.workdir, label)

    def start_baseline(self, scenario: str, label: str) -> Child:
        config = {
            "dsn": self.dsn,
            "scenario": scenario,
            "warmup": WARMUP,
            "duration": DURATION,
            "clients": CLIENTS,
            "codes": CODES,
            "plan_id": str(self.fixture.plan_id),
            "user_ids": [str(user_id) for user_id in self.fixture.user_ids],
        }
        config_path = self.workdir / f"{label}.json"
        config_path.write_text(json.dumps(config))
        command = [
            "taskset", "-c", CLIENT_CORE,
            sys.executable, "-m", "bench.bench_purchase_create", "baseline", str(config_path),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": _pythonpath()}
        return start_child(command, self.workdir, label, env)

    async def sample_waits(self, stop: asyncio.Event, into: Counter[str]) -> int:
        """Count, every SAMPLE_SECONDS, what the bench database's backends are doing."""
        samples = 0
        while not stop.is_set():
            rows = await self.db.fetch(
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend'",
                self.database,
            )
            for state, wait_type, wait_event in rows:
                if state == "active":
                    into[f"{wait_type}:{wait_event}" if wait_type else "running"] += 1
                else:
                    into[state or "?"] += 1
            samples += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)
        return samples

    async def measure(self, run: Run, client: Child) -> dict[str, Any]:
        """Wait for the measured part of `client` (wrk, or the baseline after its warm-up) to
        finish; meanwhile sample pg_stat_activity and account CPU over its window (0.2 s after
        its start to 0.5 s before its end, while every process is still there)."""
        stop = asyncio.Event()
        waits: Counter[str] = Counter()
        await asyncio.sleep(0.2)
        sampler = asyncio.create_task(self.sample_waits(stop, waits))
        before = cpu_snapshot(self.server.guard.pid, client.guard.pid)
        try:
            await asyncio.sleep(DURATION - 0.7)
            after = cpu_snapshot(self.server.guard.pid, client.guard.pid)
        finally:
            stop.set()
            samples = await sampler
        run.cpu = cpu_used(before, after)
        run.waits = {state: count / max(samples, 1) for state, count in waits.items()}
        return parse_result(await client.finished(DURATION + 60))

    async def run(self, path: str, scenario: str, index: int) -> Run:
        await self.reset()
        run = Run(
            path,
            scenario,
            busy_before=await wait_for_quiet(QUIET_WAIT_SECONDS, QUIET_BUSY_FRACTION),
        )
        label = f"{path}-{scenario}-{index}"
        if path == SUBJECT:
            warm_child = self.start_wrk(scenario, f"{label}-warm", WARMUP)
            warm = parse_result(await warm_child.finished(WARMUP + 60))
            profiler = self.start_profiler(scenario) if index == 0 else None
            result = await self.measure(run, self.start_wrk(scenario, label, DURATION))
            if profiler is not None:
                await profiler.finished(60)
            answered = warm["ok"] + result["ok"]
            in_flight = 2 * CLIENTS  # requests wrk cut off at the end of each invocation
            failed = warm["failed"] + warm["socket_errors"] + result["socket_errors"]
        else:
            child = self.start_baseline(scenario, label)
            # The baseline process warms up, then prints MEASURE and runs the measured part.
            await wait_for_line(child, "MEASURE", READY_TIMEOUT_SECONDS + WARMUP)
            result = await self.measure(run, child)
            answered = result["warm_ok"] + result["ok"]
            in_flight = 0  # every task finishes its statement before the process ends
            failed = result["warm_failed"]
        run.requests = result["requests"]
        run.seconds = result["duration_us"] / 1e6
        run.ok = result["ok"]
        run.failed = result["failed"] + failed
        run.p50_ms = result["p50_us"] / 1000
        run.p90_ms = result["p90_us"] / 1000
        run.p99_ms = result["p99_us"] / 1000
        run.max_ms = result["max_us"] / 1000
        run.answered = answered
        run.purchases = await self.verify(run, in_flight, result.get("failure"))
        return run

    def start_profiler(self, scenario: str) -> Child | None:
        if not PYSPY_DIR:
            return None
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        stats = all_stats()
        pids = [
            pid
            for pid in descendants(self.server.guard.pid, stats)
            if "python" in stats[pid][0] or "engage" in stats[pid][0]
        ]
        out = Path(PYSPY_DIR) / f"server-{scenario}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [
            "taskset", "-c", CLIENT_CORE, py_spy, "record", "--nonblocking", "-r", "97",
            "-d", str(DURATION), "-f", "raw", "-o", str(out), "-p", str(min(pids)),
        ]  # fmt: skip
        return start_child(command, self.workdir, f"py-spy-{scenario}")

    async def verify(self, run: Run, in_flight: int, failure: str | None) -> int:
        """The database agrees with itself and with the clients; no request failed."""
        purchases = await self.settled_purchases()
        uses = await self.db.fetchval("SELECT coalesce(sum(uses), 0) FROM promocodes")
        reserved = await self.db.fetchval(
            "SELECT count(*) FROM promocode_uses WHERE status = 'RESERVED'"
        )
        ledger = await self.db.fetchval("SELECT count(*) FROM promocode_uses")
        with_code = await self.db.fetchval(
            "SELECT count(*) FROM purchases WHERE promocode_id IS NOT NULL"
        )
        mismatched = await self.db.fetchval(
            "SELECT count(*) FROM promocodes p LEFT JOIN (SELECT promocode_id, count(*) AS n"
            " FROM promocode_uses GROUP BY promocode_id) u ON u.promocode_id = p.id"
            " WHERE p.uses <> coalesce(u.n, 0)"
        )
        rejected = await self.db.fetchval("SELECT count(*) FROM promocode_attempts")
        problems = [
            f"{run.failed} failed requests (first: {failure})" if run.failed else "",
            f"sum(uses) {uses} != RESERVED uses {reserved}" if uses != reserved else "",
            f"{ledger} ledger rows, {reserved} RESERVED" if ledger != reserved else "",
            f"purchases {purchases} != uses {uses}" if purchases != uses else "",
            f"{purchases - with_code} purchases without a code" if with_code != purchases else "",
            f"{mismatched} codes whose uses disagree with the ledger" if mismatched else "",
            f"{rejected} rejected attempts logged" if rejected else "",
            f"purchases {purchases} < successful answers {run.answered}"
            if purchases < run.answered
            else "",
            f"purchases {purchases} exceed answers {run.answered} by more than {in_flight}"
            if purchases > run.answered + in_flight
            else "",
        ]
        if any(problems):
            raise AssertionError(f"{run.path}/{run.scenario}: " + "; ".join(filter(None, problems)))
        return int(purchases)

    async def settled_purchases(self) -> int:
        """The purchase count once the server finished what was in flight."""
        previous = -1
        while True:
            count = int(await self.db.fetchval("SELECT count(*) FROM purchases"))
            if count == previous:
                return count
            previous = count
            await asyncio.sleep(0.5)


async def wait_for_line(child: Child, marker: str, limit_seconds: float) -> None:
    deadline = time.monotonic() + limit_seconds
    while marker not in child.output():
        if not child.alive() or time.monotonic() > deadline:
            child.stop()
            raise RuntimeError(f"no {marker} from the child:\n{child.output()[-3000:]}")
        await asyncio.sleep(0.01)


def parse_result(output: str) -> dict[str, Any]:
    result: dict[str, Any] | None = None
    for line in output.splitlines():
        if line.startswith("BENCH "):
            result = json.loads(line[len("BENCH ") :])
        elif line.startswith("BENCH_FAILURE ") and result is not None:
            result["failure"] = line[len("BENCH_FAILURE ") :]
    if result is None:
        raise RuntimeError(f"no result in the output:\n{output[-3000:]}")
    return result


# --- the baseline process (pinned to the client core) ----------------------------------------


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


async def baseline_process(config: dict[str, Any]) -> None:
    scenario = config["scenario"]
    clients = int(config["clients"])
    codes = int(config["codes"])
    plan_id = uuid.UUID(config["plan_id"])
    user_ids = [uuid.UUID(user_id) for user_id in config["user_ids"]]
    pool = await asyncpg.create_pool(config["dsn"], min_size=clients, max_size=clients)
    assert pool is not None
    # The same interpreter settings as `engage serve` (docs/architecture.md, lean rule 7).
    interpreter_settings = Settings()
    tune(interpreter_settings)
    freeze_startup_heap(interpreter_settings)
    loop = asyncio.get_running_loop()
    failures: list[str] = []

    async def client(index: int, until: float, latencies: list[float]) -> int:
        user_id = user_ids[index % len(user_ids)]
        failed = 0
        while loop.time() < until:
            code = HOT_CODE if scenario == ONE else SPREAD_FORMAT % random.randrange(codes)
            started = time.perf_counter()
            reason = f"no use left of {code}"
            try:
                purchase_id = await pool.fetchval(
                    BASELINE_SQL,
                    code,
                    user_id,
                    plan_id,
                    PRICE_MINOR,
                    FINAL_MINOR,
                    CURRENCY,
                    f"user:{user_id}",
                    float(RESERVATION_TTL_SECONDS),
                )
            except asyncpg.PostgresError as exc:
                purchase_id = None
                reason = repr(exc)
            latencies.append(time.perf_counter() - started)
            if purchase_id is None:
                failed += 1
                failures.append(reason)
        return failed

    async def phase(seconds: float) -> tuple[list[float], int, float]:
        latencies: list[float] = []
        started = loop.time()
        failed = await asyncio.gather(
            *(client(index, started + seconds, latencies) for index in range(clients))
        )
        return latencies, sum(failed), loop.time() - started

    try:
        warm, warm_failed, _ = await phase(float(config["warmup"]))
        print("MEASURE", flush=True)
        latencies, failed, seconds = await phase(float(config["duration"]))
    finally:
        await pool.close()
    latencies.sort()
    result = {
        "requests": len(latencies),
        "duration_us": int(seconds * 1e6),
        "ok": len(latencies) - failed,
        "failed": failed,
        "warm_ok": len(warm) - warm_failed,
        "warm_failed": warm_failed,
        "p50_us": int(_percentile(latencies, 0.50) * 1e6),
        "p90_us": int(_percentile(latencies, 0.90) * 1e6),
        "p99_us": int(_percentile(latencies, 0.99) * 1e6),
        "max_us": int((latencies[-1] if latencies else 0) * 1e6),
        "socket_errors": 0,
    }
    print("BENCH " + json.dumps(result), flush=True)
    if failures:
        print("BENCH_FAILURE " + failures[0], flush=True)


# --- set-up -----------------------------------------------------------------------------------


async def seed(settings: Settings) -> Fixture:
    """A plan, CLIENTS users with long-lived access tokens, the hot code and CODES others."""
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    codec = AccessTokenCodec(settings)
    template: dict[str, Any] = {
        "kind": PromocodeKind.PERCENT,
        "value": PERCENT_OFF,
        "max_uses": MAX_USES,
        "max_uses_per_user": MAX_USES_PER_USER,
        "audience": Audience.PUBLIC,
        "description": "bench",
        "created_by": "bench",
    }
    try:
        async with factory() as session, session.begin():
            plan = Plan(
                slug="bench",
                name="Bench",
                price_minor=PRICE_MINOR,
                currency=CURRENCY,
                duration_days=30,
            )
            users = [
                User(email=f"bench-{index}@example.com", roles=[Role.USER.value])
                for index in range(CLIENTS)
            ]
            session.add(plan)
            session.add_all(users)
            session.add(Promocode(code=HOT_CODE, **template))
            session.add_all(
                Promocode(code=SPREAD_FORMAT % index, **template) for index in range(CODES)
            )
            await session.flush()
            fixture = Fixture(
                plan.id,
                [user.id for user in users],
                [codec.issue(user.id, user.roles) for user in users],
            )
    finally:
        await engine.dispose()
    return fixture


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
        "taskset", "-c", SERVER_CORE, *_engage(), "serve", "--host", "127.0.0.1",
        "--port", str(port),
    ]  # fmt: skip
    return start_child(command, workdir, "server", env)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


async def wait_ready(server: Child, port: int) -> float:
    started = time.monotonic()
    url = f"http://127.0.0.1:{port}/readyz"
    while True:
        if not server.alive():
            raise RuntimeError(f"the server exited:\n{server.output()[-3000:]}")
        if await asyncio.to_thread(_ready, url):
            return time.monotonic() - started
        if time.monotonic() - started > READY_TIMEOUT_SECONDS:
            raise RuntimeError(f"the server is not ready:\n{server.output()[-3000:]}")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def open_bench() -> AsyncIterator[Bench]:
    """A fresh database and Redis db, the fixture, the server process; then cleanup."""
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
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-purchase-"))
    server: Child | None = None
    db: asyncpg.Connection | None = None
    redis = Redis.from_url(REDIS_URL)
    try:
        await asyncio.to_thread(upgrade, settings, "head")
        fixture = await seed(settings)
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        db = await asyncpg.connect(plain)
        redis.flushdb()
        port = _free_port()
        server = start_server(dsn, port, workdir)
        print(f"server ready after {await wait_ready(server, port):.1f}s", flush=True)
        yield Bench(database, plain, fixture, db, redis, server, port, workdir)
    finally:
        if server is not None:
            server.stop()
        if db is not None:
            await db.close()
        with contextlib.suppress(Exception):
            redis.flushdb()
        redis.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(workdir, ignore_errors=True)


# --- report -----------------------------------------------------------------------------------

WAIT_CLASSES = ("running", "idle in transaction", "Lock:transactionid", "Lock:tuple", "IO", "idle")


def _waits(run: Run) -> str:
    lock = sum(v for k, v in run.waits.items() if k.startswith("Lock:"))
    io = sum(v for k, v in run.waits.items() if k.startswith(("IO:", "LWLock:")))
    return (
        f"{run.waits.get('running', 0.0):5.1f} {run.waits.get('idle in transaction', 0.0):5.1f}"
        f" {lock:5.1f} {io:5.1f}"
    )


HEADER = (
    f"{'scenario':<8} {'path':<7} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}"
    f" {'max ms':>7} {'reqs':>6} {'errors':>6} {'db rows':>7}"
    f" {'busy0':>5} {'other':>5}  cores: {'server':>6} {'client':>6} {'pg':>5} {'redis':>5}"
    f" {'all':>5}  backends: {'run':>5} {'idlTx':>5} {'lock':>5} {'io':>5}"
    f"  ms CPU/op: {'app':>5} {'pg':>5} {'all':>5}"
)


def format_run(run: Run) -> str:
    cpu = run.cpu
    return (
        f"{run.scenario:<8} {run.path:<7} {run.rate:7.0f} {run.p50_ms:7.1f} {run.p90_ms:7.1f}"
        f" {run.p99_ms:7.1f} {run.max_ms:7.0f} {run.requests:6d} {run.failed:6d}"
        f" {run.purchases:7d} {run.busy_before:5.0%} {run.others_share:5.0%}        "
        f" {cpu.get(SERVER, 0):6.2f} {cpu.get(CLIENT, 0):6.2f} {cpu.get(POSTGRES, 0):5.2f}"
        f" {cpu.get(REDIS, 0):5.2f} {cpu.get(MACHINE, 0):5.2f}            {_waits(run)}"
        f"             {run.cpu_ms_per_op(_app(run)):5.2f} {run.cpu_ms_per_op(POSTGRES):5.2f}"
        f" {run.cpu_ms_per_op(MACHINE):5.2f}"
    )


def _app(run: Run) -> str:
    """The process that does a path's work besides PostgreSQL: the server, or the baseline's
    asyncpg client."""
    return SERVER if run.path == SUBJECT else CLIENT


def report(runs: list[Run]) -> dict[str, float]:
    figures: dict[str, float] = {}
    print()
    for scenario in SCENARIOS:
        chosen = {
            path: [run for run in runs if run.scenario == scenario and run.path == path]
            for path in (SUBJECT, BASELINE)
        }
        rate = {path: statistics.median(r.rate for r in chosen[path]) for path in chosen}
        app_ms = {
            path: statistics.median(r.cpu_ms_per_op(_app(r)) for r in chosen[path])
            for path in chosen
        }
        pg_ms = {
            path: statistics.median(r.cpu_ms_per_op(POSTGRES) for r in chosen[path])
            for path in chosen
        }
        p50 = {path: statistics.median(r.p50_ms for r in chosen[path]) for path in chosen}
        p99 = {path: statistics.median(r.p99_ms for r in chosen[path]) for path in chosen}
        ratio = rate[SUBJECT] / rate[BASELINE]
        print(
            f"{scenario}: engage {rate[SUBJECT]:.0f} req/s (p50 {p50[SUBJECT]:.1f} ms, p99"
            f" {p99[SUBJECT]:.1f} ms); sql {rate[BASELINE]:.0f} req/s (p50 {p50[BASELINE]:.1f}"
            f" ms, p99 {p99[BASELINE]:.1f} ms); throughput engage/sql {ratio:.1%},"
            f" p99 engage/sql {p99[SUBJECT] / p99[BASELINE]:.1f}x; CPU per request:"
            f" engage server {app_ms[SUBJECT]:.2f} ms + PostgreSQL {pg_ms[SUBJECT]:.2f} ms,"
            f" sql client {app_ms[BASELINE]:.2f} ms + PostgreSQL {pg_ms[BASELINE]:.2f} ms"
        )
        figures |= {
            f"{scenario}_engage_rps": rate[SUBJECT],
            f"{scenario}_sql_rps": rate[BASELINE],
            f"{scenario}_ratio": ratio,
            f"{scenario}_engage_p99_ms": p99[SUBJECT],
            f"{scenario}_sql_p99_ms": p99[BASELINE],
            f"{scenario}_engage_server_cpu_ms": app_ms[SUBJECT],
            f"{scenario}_engage_pg_cpu_ms": pg_ms[SUBJECT],
            f"{scenario}_sql_client_cpu_ms": app_ms[BASELINE],
            f"{scenario}_sql_pg_cpu_ms": pg_ms[BASELINE],
        }
    noisy = [run for run in runs if run.others_share > NOISY_SHARE]
    if noisy:
        print(
            f"WARNING: {len(noisy)} run(s) shared the machine with other work (more than"
            f" {NOISY_SHARE:.0%} of the busy CPU was not ours): their figures are pessimistic"
        )
    return figures


# --- main -------------------------------------------------------------------------------------


async def amain() -> dict[str, float]:
    if (os.cpu_count() or 1) < 2:
        raise RuntimeError("needs two cores: the server on core 0, the load on core 1")
    async with open_bench() as bench:
        print(f"machine: {machine_notes()}")
        print(
            f"database {bench.database}, redis {REDIS_URL}; server: taskset -c {SERVER_CORE}"
            f" engage serve (production, LOG_LEVEL=WARNING); load: taskset -c {CLIENT_CORE}"
            f" wrk -c {CLIENTS} -t {WRK_THREADS} -d {DURATION}s --timeout 30s --latency"
            f" -s <generated .lua> (warm-up {WARMUP}s) vs an asyncpg pool of {CLIENTS};"
            f" {ROUNDS} runs per path and scenario,"
            f" {CODES} codes in the spread scenario",
            flush=True,
        )
        runs: list[Run] = []
        print(HEADER, flush=True)
        for scenario in SCENARIOS:
            for round_ in range(ROUNDS):
                order = (SUBJECT, BASELINE) if round_ % 2 == 0 else (BASELINE, SUBJECT)
                for path in order:
                    index = sum(1 for r in runs if r.scenario == scenario and r.path == path)
                    runs.append(await bench.run(path, scenario, index))
                    print(format_run(runs[-1]), flush=True)
        waits = Counter[str]()
        for run in runs:
            waits.update({k: v for k, v in run.waits.items() if k not in WAIT_CLASSES})
        if waits:
            print("other backend states (mean backends, summed over runs):", dict(waits))
        return report(runs)


def main() -> None:
    run_until_done(amain)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "baseline":
        asyncio.run(baseline_process(json.loads(Path(sys.argv[2]).read_text())))
    else:
        main()
