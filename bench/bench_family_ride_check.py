"""`familyRideCheck` with a hold under contention (family, issue 15): requests/s and p99 of a
real `engage serve` against one plain SQL statement through asyncpg, in the same run
(target: at least 0.4 of its throughput), and exact usage afterwards.

Scenarios: `one`, 64 concurrent clients holding fares of ONE member (every check with a hold
takes turns on that member's row lock: the contention is the lock, not refusals), and
`spread`, the same clients over the 64 people of 8 families (an owner and 7 members each;
each request picks one at random; the owners' rides have no limit and take the same path).
Every member has a limit of 2,000,000,000 minor units (RUB) per MONTH, so no fare is refused.

- subject: a real `engage serve` (ENGAGE_ENV=production, LOG_LEVEL=WARNING) pinned to core 0
  (`taskset -c 0`), loaded by `wrk -c 64 -t 2 --latency` pinned to core 1. The Lua script
  (bench/_family_ride_load.py) POSTs `familyRideCheck` with `hold: {orderId: <unique per
  request>}` and a fare of BENCH_RIDE_AMOUNT minor units, with one SERVICE token (created
  with `create_service_token`); its `response` callback counts every answer that is not
  HTTP 200 with `available: true`, a hold and an empty `errors` list. On PostgreSQL a check
  with a hold is BEGIN, the token, the member's row with its limit (FOR UPDATE), one CTE that
  sums the usage and inserts the hold if the fare fits, COMMIT (tests/family/
  test_statement_count.py pins it).
- baseline: a Python process pinned to core 1 (like wrk), 64 asyncio tasks over an asyncpg
  pool of 64 connections, each check ONE autocommitted statement (`BASELINE_SQL` in
  bench/_family_ride_load.py): lock the member's row (reading nothing: the limit is a
  parameter), sum the frame's charges and the live holds, insert the hold if it fits. No
  HTTP, GraphQL, auth or member read: the floor for the same effect. It runs with
  `engage serve`'s interpreter settings (app/interpreter.py).

The holds table also holds past rides, analyzed once at set-up (500 RELEASED holds per
rider; 1,000 other families with 100,000 holds, 2,000 of them live), so the planner sees a
table shaped as in production (see `add_history`). PostgreSQL is not pinned. Every run:
reset (the run's holds deleted, VACUUM, notifications truncated, CHECKPOINT), wait for the
machine to be idle, a warm-up (BENCH_RIDE_WARMUP s), its usage checked, its holds
deleted, then the measured run (BENCH_RIDE_DURATION s) from no live hold, its usage
checked. Runs alternate subject and baseline (ABBA...). The usage must be exact: every hold
HELD, their sum == count x amount (per member too), no member's holds beyond the limit, holds
== successful answers (up to the requests in flight when wrk stopped), no refusal notified,
and no request may have failed (a run with errors aborts the bench). Every check sums the
member's live holds, so a path's rate falls as its holds pile up, and the faster one pays for
its speed: besides the rates over the whole run, the report compares the paths over the
same range of hold counts (the bench counts the holds every 0.2 s). During the run the bench
samples `pg_stat_activity` and accounts CPU per component from /proc (cores, and CPU ms per
request), as bench_purchase_create does, whose helpers it uses.

    make bench                                        # every benchmark
    .venv/bin/python -m bench.bench_family_ride_check  # this one (about 4 minutes)

Knobs (environment): BENCH_RIDE_DURATION (12 s), BENCH_RIDE_WARMUP (3 s), BENCH_RIDE_ROUNDS
(2 runs per path and scenario), BENCH_RIDE_CLIENTS (64), BENCH_RIDE_AMOUNT (100),
BENCH_RIDE_SCENARIOS (one,spread), BENCH_RIDE_PYSPY (a directory: py-spy records the server
during the first measured subject run of each scenario), BENCH_PG_URL
(postgresql://postgres@127.0.0.1:5432/postgres), BENCH_RIDE_REDIS_URL
(redis://127.0.0.1:6379/9, flushed before every run). The bench creates and drops its own
database, engage_bench_<hex>; wrk must be installed (`apt-get install -y wrk`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from redis import Redis
from sqlalchemy.engine import make_url

from app.db import create_engine, create_session_factory
from app.migrate import upgrade
from app.models.identity import Role
from app.services.identity.sessions import create_service_token
from app.settings import Settings
from bench._family_ride_load import lua_script
from bench._family_ride_report import BASELINE, HEADER, SUBJECT, RideRun, format_run, report
from bench._family_seed import add_history, create_families, month_limit
from bench._proc import all_stats, descendants, machine_notes, run_until_done, wait_for_quiet
from bench.bench_purchase_create import (
    Child,
    _engage,
    _free_port,
    _pythonpath,
    cpu_snapshot,
    cpu_used,
    parse_result,
    start_child,
    wait_for_line,
    wait_ready,
)

DURATION = int(os.environ.get("BENCH_RIDE_DURATION", "12"))
WARMUP = int(os.environ.get("BENCH_RIDE_WARMUP", "3"))
ROUNDS = int(os.environ.get("BENCH_RIDE_ROUNDS", "2"))
CLIENTS = int(os.environ.get("BENCH_RIDE_CLIENTS", "64"))
AMOUNT = int(os.environ.get("BENCH_RIDE_AMOUNT", "100"))
SCENARIOS = os.environ.get("BENCH_RIDE_SCENARIOS", "one,spread").split(",")
PYSPY_DIR = os.environ.get("BENCH_RIDE_PYSPY", "")
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_RIDE_REDIS_URL", "redis://127.0.0.1:6379/9")

SERVER_CORE, CLIENT_CORE = "0", "1"
WRK_THREADS = 2
JWT_SECRET = "bench-family-ride-check-secret-0123456789abcdef"
LIMIT = 2_000_000_000
CURRENCY = "RUB"
TTL_SECONDS = 3 * 3600  # the app's default FAMILY_HOLD_TTL_SECONDS (a check sends none)
SPREAD_FAMILIES, SPREAD_MEMBERS = 8, 7  # 8 x (owner + 7 members) = 64 riders
OURS = "status = 'HELD' AND order_id NOT LIKE 'past-%'"  # the holds of this run
HELD_COUNT = f"SELECT count(*) FROM family_holds WHERE {OURS}"
READY_TIMEOUT_SECONDS = 60.0
SAMPLE_SECONDS = 0.2
QUIET_BUSY_FRACTION, QUIET_WAIT_SECONDS = 0.15, 90.0
ONE, SPREAD = "one", "spread"


@dataclass
class Fixture:
    token: str
    riders: dict[str, list[tuple[str, str]]]  # scenario -> (account id, user id)
    limited: set[str]  # user ids with a limit (every member but the spread's owners)


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

    async def clear_holds(self) -> None:
        """Every hold but the history gone; the statistics kept (see `add_history`)."""
        await self.db.execute(f"DELETE FROM family_holds WHERE {OURS}")
        await self.db.execute("VACUUM family_holds")

    async def reset(self) -> None:
        await self.clear_holds()
        await self.db.execute("TRUNCATE family_notifications")
        await self.db.execute("CHECKPOINT")
        self.redis.flushdb()

    def start_wrk(self, scenario: str, label: str, seconds: int) -> Child:
        script = self.workdir / f"{label}.lua"
        script.write_text(
            lua_script(
                self.fixture.riders[scenario],
                label=label,
                amount=AMOUNT,
                currency=CURRENCY,
                token=self.fixture.token,
            )
        )
        command = [
            "taskset", "-c", CLIENT_CORE, "wrk",
            "-c", str(CLIENTS), "-t", str(WRK_THREADS), "-d", f"{seconds}s",
            "--timeout", "30s", "--latency", "-s", str(script),
            f"http://127.0.0.1:{self.port}/graphql",
        ]  # fmt: skip
        return start_child(command, self.workdir, label)

    def start_baseline(self, scenario: str, label: str, go: Path) -> Child:
        now = datetime.now(UTC)
        config = {
            "dsn": self.dsn,
            "label": label,
            "warmup": WARMUP,
            "duration": DURATION,
            "clients": CLIENTS,
            "riders": self.fixture.riders[scenario],
            "amount": AMOUNT,
            "currency": CURRENCY,
            "limit": LIMIT,
            "ttl_seconds": TTL_SECONDS,
            "frame_start": datetime(now.year, now.month, 1, tzinfo=UTC).isoformat(),
            "go": str(go),  # the measured part starts once this file exists
        }
        config_path = self.workdir / f"{label}.json"
        config_path.write_text(json.dumps(config))
        command = [
            "taskset", "-c", CLIENT_CORE,
            sys.executable, "-m", "bench._family_ride_load", str(config_path),
        ]  # fmt: skip
        return start_child(
            command, self.workdir, label, {**os.environ, "PYTHONPATH": _pythonpath()}
        )

    async def sample_waits(
        self, stop: asyncio.Event, into: Counter[str], series: list[tuple[float, int]]
    ) -> int:
        """Count, every SAMPLE_SECONDS, what the bench database's backends are doing, and
        how many holds there are (`series`: the rate at equal hold counts, in the report)."""
        samples = 0
        while not stop.is_set():
            holds = await self.db.fetchval(HELD_COUNT)
            series.append((time.monotonic(), int(holds)))
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

    async def measure(self, run: RideRun, client: Child) -> dict[str, Any]:
        """As bench_purchase_create: CPU and backend states over the measured part of
        `client`, from 0.2 s after its start to 0.5 s before its end; its result."""
        stop = asyncio.Event()
        waits: Counter[str] = Counter()
        await asyncio.sleep(0.2)
        sampler = asyncio.create_task(self.sample_waits(stop, waits, run.series))
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

    async def run(self, path: str, scenario: str, index: int) -> RideRun:
        """Warm-up, its usage checked, the holds cleared; the measured run from no holds
        (every statement sums the member's live holds), its usage checked."""
        await self.reset()
        busy = await wait_for_quiet(QUIET_WAIT_SECONDS, QUIET_BUSY_FRACTION)
        run = RideRun(path, scenario, busy_before=busy)
        label = f"{path}-{scenario}-{index}"
        if path == SUBJECT:
            warm = parse_result(
                await self.start_wrk(scenario, f"{label}-w", WARMUP).finished(WARMUP + 60)
            )
            failed = warm["failed"] + warm["socket_errors"]
            # wrk cuts off up to CLIENTS requests in flight at the end of each invocation.
            await self.verify(run, warm["ok"], CLIENTS, failed, warm.get("failure"), "warm-up")
            await self.clear_holds()
            profiler = self.start_profiler(scenario) if index == 0 else None
            result = await self.measure(run, self.start_wrk(scenario, label, DURATION))
            if profiler is not None:
                await profiler.finished(60)
            failed, in_flight = result["failed"] + result["socket_errors"], CLIENTS
        else:
            go = self.workdir / f"{label}.go"
            child = self.start_baseline(scenario, label, go)
            await wait_for_line(child, "WARM ", READY_TIMEOUT_SECONDS + WARMUP)
            warm = warm_result(child.output())
            await self.verify(run, warm["ok"], 0, warm["failed"], warm.get("failure"), "warm-up")
            await self.clear_holds()
            go.touch()
            await wait_for_line(child, "MEASURE", READY_TIMEOUT_SECONDS)
            result = await self.measure(run, child)
            # Every task finishes its statement before the process ends.
            failed, in_flight = result["failed"], 0
        run.requests, run.ok = result["requests"], result["ok"]
        run.seconds = result["duration_us"] / 1e6
        run.p50_ms, run.p90_ms = result["p50_us"] / 1000, result["p90_us"] / 1000
        run.p99_ms, run.max_ms = result["p99_us"] / 1000, result["max_us"] / 1000
        run.answered = result["ok"]
        run.failed = failed
        await self.verify(run, result["ok"], in_flight, failed, result.get("failure"), "run")
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
        out = Path(PYSPY_DIR) / f"ride-server-{scenario}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [
            "taskset", "-c", CLIENT_CORE, py_spy, "record", "--nonblocking", "-r", "97",
            "-d", str(DURATION), "-f", "raw", "-o", str(out), "-p", str(min(pids)),
        ]  # fmt: skip
        return start_child(command, self.workdir, f"py-spy-{scenario}")

    async def verify(
        self,
        run: RideRun,
        answered: int,
        in_flight: int,
        failed: int,
        failure: str | None,
        phase: str,
    ) -> None:
        """The usage is exact: every hold a rider's, HELD, of AMOUNT; no member beyond the
        limit; holds == successful answers (up to in_flight); no request failed."""
        holds = await self.settled_holds()
        total, held, amount_sum, strangers = await self.db.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE h.status = 'HELD'),"
            " coalesce(sum(h.amount_minor) FILTER (WHERE h.status = 'HELD'), 0),"
            " count(*) FILTER (WHERE m.id IS NULL)"
            " FROM family_holds h LEFT JOIN family_members m"
            " ON m.account_id = h.account_id AND m.user_id = h.user_id"
            " WHERE h.order_id NOT LIKE 'past-%'"
        )
        per_member = await self.db.fetch(
            "SELECT user_id::text AS user_id, count(*) AS n, sum(amount_minor) AS used"
            f" FROM family_holds WHERE {OURS} GROUP BY user_id"
        )
        beyond = [
            r["user_id"]
            for r in per_member
            if r["user_id"] in self.fixture.limited and r["used"] > LIMIT
        ]
        uneven = [r["user_id"] for r in per_member if r["used"] != r["n"] * AMOUNT]
        riders = {user for _, user in self.fixture.riders[run.scenario]}
        others = [r["user_id"] for r in per_member if r["user_id"] not in riders]
        notices = await self.db.fetchval("SELECT count(*) FROM family_notifications")
        problems = [
            f"{failed} failed requests (first: {failure})" if failed else "",
            f"{total - held} holds not HELD" if total != held else "",
            f"held sum {amount_sum} != {held} x {AMOUNT}" if amount_sum != held * AMOUNT else "",
            f"{strangers} holds of no member" if strangers else "",
            f"members beyond the limit: {beyond}" if beyond else "",
            f"members whose sum is not count x amount: {uneven}" if uneven else "",
            f"holds of users outside the scenario: {others}" if others else "",
            f"{notices} notifications (refusals?)" if notices else "",
            f"holds {holds} < successful answers {answered}" if holds < answered else "",
            f"holds {holds} exceed answers {answered} by more than {in_flight}"
            if holds > answered + in_flight
            else "",
        ]
        if any(problems):
            where = f"{run.path}/{run.scenario} ({phase})"
            raise AssertionError(f"{where}: " + "; ".join(filter(None, problems)))
        run.holds = holds
        run.max_member_holds = max((int(r["n"]) for r in per_member), default=0)

    async def settled_holds(self) -> int:
        """The hold count once the server finished what was in flight."""
        previous = -1
        while True:
            count = int(await self.db.fetchval(HELD_COUNT))
            if count == previous:
                return count
            previous = count
            await asyncio.sleep(0.5)


def warm_result(output: str) -> dict[str, Any]:
    """The baseline's WARM line (ok, failed) and its first failure, if any."""
    lines = output.splitlines()
    result: dict[str, Any] = json.loads(next(x for x in lines if x.startswith("WARM "))[5:])
    failures = [x[len("BENCH_FAILURE ") :] for x in lines if x.startswith("BENCH_FAILURE ")]
    return result | ({"failure": failures[0]} if failures else {})


# --- set-up -----------------------------------------------------------------------------------


async def seed(settings: Settings) -> Fixture:
    """The `one` family (an owner, one member), the 8 `spread` families, a SERVICE token."""
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    limit = month_limit(LIMIT, CURRENCY)
    try:
        async with factory() as session, session.begin():
            [one] = await create_families(session, 1, 1, limit=limit)
            spread = await create_families(
                session, SPREAD_FAMILIES, SPREAD_MEMBERS, limit=limit, first_phone=1000
            )
            _, token = await create_service_token(session, "bench-rides", [Role.SERVICE])
    finally:
        await engine.dispose()
    spread_riders = [
        (str(family.id), str(user))
        for family in spread
        for user in (family.owner_id, *family.member_ids)
    ]
    limited = {str(user) for family in (one, *spread) for user in family.member_ids}
    return Fixture(
        token,
        {ONE: [(str(one.id), str(one.member_ids[0]))], SPREAD: spread_riders},
        limited,
    )


def start_server(dsn: str, port: int, workdir: Path) -> Child:
    env = {
        **os.environ,
        "ENGAGE_ENV": "production",
        "DATABASE_URL": dsn,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": JWT_SECRET,
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
    settings = Settings(database_url=dsn, redis_url=REDIS_URL, jwt_secret=JWT_SECRET)
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-rides-"))
    server: Child | None = None
    db: asyncpg.Connection | None = None
    redis = Redis.from_url(REDIS_URL)
    try:
        await asyncio.to_thread(upgrade, settings, "head")
        fixture = await seed(settings)
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        db = await asyncpg.connect(plain)
        await add_history(db, {r for riders in fixture.riders.values() for r in riders})
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


# --- main -------------------------------------------------------------------------------------


async def amain() -> dict[str, float]:
    if (os.cpu_count() or 1) < 2:
        raise RuntimeError("needs two cores: the server on core 0, the load on core 1")
    async with open_bench() as bench:
        print(f"machine: {machine_notes()}")
        print(
            f"database {bench.database}, redis {REDIS_URL}; server: taskset -c {SERVER_CORE}"
            f" engage serve (production, LOG_LEVEL=WARNING); load: taskset -c {CLIENT_CORE}"
            f" wrk -c {CLIENTS} -t {WRK_THREADS} -d {DURATION}s --latency (warm-up"
            f" {WARMUP}s) vs an asyncpg pool of {CLIENTS}; {ROUNDS} runs per path and"
            f" scenario; fare {AMOUNT} of a {LIMIT} {CURRENCY} MONTH limit",
            flush=True,
        )
        runs: list[RideRun] = []
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
            waits.update(run.waits)
        print("backend states (mean backends, summed over runs):", dict(waits.most_common(8)))
        return report(runs, SCENARIOS)


def main() -> None:
    run_until_done(amain)


if __name__ == "__main__":
    main()
