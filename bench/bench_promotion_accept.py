"""`promotionRewardAccept` (issue 13): first accepts per second of a real `engage serve`
against one plain SQL statement through asyncpg, in the same run.

- subject: `engage serve` (ENGAGE_ENV=production, LOG_LEVEL=WARNING) pinned to core 0. A
  driver process pinned to core 1 (asyncio + uvloop, raw HTTP/1.1 on CLIENTS keep-alive
  connections, closed loop) sends each seeded user's `promotionRewardAccept` once, with
  that user's access token: every request is a first accept doing the six steps (nine
  statements, pinned by tests/promotions/test_statement_count.py). Each answer must be
  HTTP 200 with an application and no errors.
- baseline: a process pinned to core 1, CLIENTS asyncio tasks over an asyncpg pool of CLIENTS
  connections, one statement per user: the guarded `UPDATE promotion_users SET status =
  'REWARDED' … WHERE status = 'COMPLETED' RETURNING id` — the floor for "a user's reward is
  taken once", without the other five effects, auth or GraphQL. Its run is short (USERS
  statements take a fraction of a second), so its figure is the noisier one.

Seed (SQL, fast): USERS users with a COMPLETED run, its pre-offer and split. Every run resets
the runs to COMPLETED, deletes what accepting created, CHECKPOINTs and waits for an idle
machine; runs alternate subject and baseline (ROUNDS each). After a subject run every user
must have exactly one application, one active pre-offer, one origination session (sequence
8) and a used split; after a baseline run every run is REWARDED. CPU per request from /proc
(the server or the baseline process, the driver, PostgreSQL).

    .venv/bin/python -m bench.bench_promotion_accept   # about 2 minutes

Knobs: BENCH_ACCEPT_USERS (3000), BENCH_ACCEPT_CLIENTS (32), BENCH_ACCEPT_ROUNDS (2),
BENCH_PG_URL (postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from strawberry.relay import to_base64

from app.auth import AccessTokenCodec
from app.migrate import upgrade
from app.settings import Settings
from bench._proc import all_stats, descendants, machine_notes, run_until_done, wait_for_quiet
from bench.bench_purchase_create import (
    Child,
    _engage,
    _free_port,
    _pythonpath,
    start_child,
    wait_ready,
)

USERS = int(os.environ.get("BENCH_ACCEPT_USERS", "3000"))
CLIENTS = int(os.environ.get("BENCH_ACCEPT_CLIENTS", "32"))
ROUNDS = int(os.environ.get("BENCH_ACCEPT_ROUNDS", "2"))
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
JWT_SECRET = "bench-promotion-accept-secret-0123456789abcdef"
SERVER_CORE, CLIENT_CORE = "0", "1"
ACCEPT = (
    "mutation A($id: ID!) { promotionRewardAccept(input: {promotionId: $id}) "
    "{ application { id } errors { code } } }"
)
BASELINE_SQL = (
    "UPDATE promotion_users SET status = 'REWARDED', rewarded_at = now(), updated_at = now()"
    " WHERE user_id = $1 AND promotion_id = $2 AND status = 'COMPLETED' AND claim_ends_at > now()"
    " RETURNING id"
)
CREATED_TABLES = (
    "promotion_origination_sessions, promotion_loan_applications, promotion_active_pre_offers"
)


@dataclass
class Fixture:
    promotion_id: uuid.UUID
    user_ids: list[uuid.UUID]
    tokens: list[str]


SEED_SQL = """
WITH promotion AS (
  INSERT INTO promotions (id, key, title, target_rides, min_ride_amount_minor, currency,
    challenge_days, claim_days, conditions, reward_product_id, reward_amount_minor,
    reward_repayment_rate, active, updated_by, created_at, updated_at)
  VALUES ($1, 'bench', 'Bench', 3, 100, 'MXN', 14, 7, '{}', 80, 100000, '15', true, 'bench',
    now(), now())
  RETURNING id
), users AS (
  INSERT INTO users (id, email, roles, status, locale, timezone, created_at, updated_at)
  SELECT u, 'accept-' || u || '@example.com', '["USER"]', 'ACTIVE', 'en', 'UTC', now(), now()
  FROM unnest($2::uuid[]) AS u
  RETURNING id
), offers AS (
  INSERT INTO promotion_pre_offers (id, user_id, promotion_key, promotion_id, region,
    imported_by, created_at, updated_at)
  SELECT gen_random_uuid(), id, 'bench', $1, 'MX', 'bench', now(), now() FROM users
  RETURNING id, user_id
), splits AS (
  INSERT INTO promotion_splits (id, user_id, promotion_id, pre_offer_id, region,
    created_on_accept, created_at, updated_at)
  SELECT gen_random_uuid(), user_id, $1, id, 'MX', false, now(), now() FROM offers
)
INSERT INTO promotion_users (id, user_id, promotion_id, pre_offer_id, status, region,
  target_rides, min_ride_amount_minor, currency, claim_days, progress, reward, started_at,
  challenge_ends_at, completed_at, claim_ends_at, created_at, updated_at)
SELECT gen_random_uuid(), user_id, $1, id, 'COMPLETED', 'MX', 3, 100, 'MXN', 7, 3,
  '{"product_id": 80, "amount_minor": 100000, "currency": "MXN", "repayment_rate": "15"}',
  now() - interval '1 day', now() + interval '13 days', now(), now() + interval '7 days',
  now(), now()
FROM offers
"""


async def seed(db: asyncpg.Connection, settings: Settings) -> Fixture:
    promotion_id = uuid.uuid4()
    user_ids = [uuid.uuid4() for _ in range(USERS)]
    await db.execute(SEED_SQL, promotion_id, user_ids)
    codec = AccessTokenCodec(settings)
    return Fixture(promotion_id, user_ids, [codec.issue(u, ["USER"]) for u in user_ids])


async def reset(db: asyncpg.Connection) -> None:
    await db.execute(f"TRUNCATE {CREATED_TABLES}")
    await db.execute(
        "UPDATE promotion_users SET status = 'COMPLETED', rewarded_at = NULL;"
        " UPDATE promotion_splits SET used_at = NULL"
    )
    await db.execute("VACUUM ANALYZE promotion_users, promotion_splits")
    await db.execute("CHECKPOINT")


# --- the two clients (each in its own process, pinned to the client core) --------------------


async def subject_client(config: dict[str, Any]) -> dict[str, Any]:
    """Raw HTTP/1.1 on keep-alive connections (an httpx client cost as much CPU per request
    as the server, and shared the client core with nothing else to measure)."""
    variables = {"id": to_base64("Promotion", config["promotion_id"])}
    body = json.dumps({"query": ACCEPT, "variables": variables}).encode()
    host, port = config["host"], config["port"]
    requests = [
        (
            f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for token in config["tokens"]
    ]
    failures: list[str] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while requests:
                writer.write(requests.pop())
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                answer = await reader.readexactly(length)
                ok = head.startswith(b"HTTP/1.1 200") and b'"errors":[]' in answer
                if not ok or b'"application":{"id"' not in answer:
                    failures.append(answer[:300].decode(errors="replace"))
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    elapsed = time.monotonic() - started
    return {"elapsed": elapsed, "failures": len(failures), "failure": failures[:1]}


async def baseline_client(config: dict[str, Any]) -> dict[str, Any]:
    pool = await asyncpg.create_pool(config["dsn"], min_size=CLIENTS, max_size=CLIENTS)
    user_ids = [uuid.UUID(u) for u in config["user_ids"]]
    promotion_id = uuid.UUID(config["promotion_id"])
    statement = BASELINE_SQL
    misses = 0
    try:

        async def worker() -> None:
            nonlocal misses
            async with pool.acquire() as connection:
                prepared = await connection.prepare(statement)
                while user_ids:
                    user_id = user_ids.pop()
                    if await prepared.fetchval(user_id, promotion_id) is None:
                        misses += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        elapsed = time.monotonic() - started
    finally:
        await pool.close()
    return {"elapsed": elapsed, "failures": misses, "failure": []}


def client_main(kind: str, config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    main = subject_client if kind == "subject" else baseline_client
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    result = asyncio.run(main(config))
    print("BENCH " + json.dumps(result), flush=True)


# --- runs -------------------------------------------------------------------------------------


def _cpu_seconds(pids: set[int]) -> float:
    stats = all_stats()
    return sum(stats[pid][2] for pid in pids if pid in stats)


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process now (backends come and go with the pools)."""
    stats = all_stats()
    return {pid: cpu for pid, (name, _, cpu) in stats.items() if name.startswith("postgres")}


def _postgres_used(before: dict[int, float], after: dict[int, float]) -> float:
    """What the processes alive at the end used since the start (a new one: all of it)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


@dataclass
class Run:
    kind: str
    requests: int
    elapsed: float
    cpu_server: float
    cpu_client: float
    cpu_postgres: float

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed

    def line(self) -> str:
        per = 1000 / self.requests
        return (
            f"{self.kind:<9} {self.rate:8.0f}/s  CPU ms/request:"
            f" server {self.cpu_server * per:6.2f}  client {self.cpu_client * per:6.2f}"
            f"  postgres {self.cpu_postgres * per:6.2f}"
        )


async def run_once(
    kind: str, fixture: Fixture, server: Child, port: int, dsn: str, workdir: Path
) -> Run:
    config = {
        "host": "127.0.0.1",
        "port": port,
        "dsn": dsn,
        "promotion_id": str(fixture.promotion_id),
        "tokens": fixture.tokens,
        "user_ids": [str(u) for u in fixture.user_ids],
    }
    path = workdir / f"{kind}.json"
    path.write_text(json.dumps(config))
    command = [
        "taskset", "-c", CLIENT_CORE, sys.executable, "-m", "bench.bench_promotion_accept",
        "client", kind, str(path),
    ]  # fmt: skip
    server_pids = {server.guard.pid, *descendants(server.guard.pid, all_stats())}
    server_before, pg_before = _cpu_seconds(server_pids), _postgres_cpu()
    client = start_child(
        command, workdir, f"client-{kind}", {**os.environ, "PYTHONPATH": _pythonpath()}
    )
    client_pids: set[int] = set()
    client_cpu = 0.0  # sampled while it runs (an exited process has no /proc entry)
    pg_after = pg_before
    while client.alive():
        client_pids |= descendants(client.guard.pid, all_stats())
        client_cpu = _cpu_seconds(client_pids)
        pg_after = _postgres_cpu()  # before the client's pool closes its backends
        await asyncio.sleep(0.2)
    output = await client.finished(600)
    result = json.loads(output.split("BENCH ", 1)[1].splitlines()[0])
    if result["failures"]:
        raise AssertionError(f"{kind}: {result['failures']} failed, e.g. {result['failure']}")
    return Run(
        kind,
        len(fixture.user_ids),
        result["elapsed"],
        _cpu_seconds(server_pids) - server_before if kind == "subject" else 0.0,
        client_cpu,
        _postgres_used(pg_before, pg_after),
    )


async def verify(db: asyncpg.Connection, kind: str, users: int) -> None:
    rewarded = await db.fetchval("SELECT count(*) FROM promotion_users WHERE status = 'REWARDED'")
    if rewarded != users:
        raise AssertionError(f"{kind}: {rewarded} of {users} runs REWARDED")
    if kind != "subject":
        return
    counts = await db.fetchrow(
        "SELECT (SELECT count(*) FROM promotion_loan_applications),"
        " (SELECT count(*) FROM promotion_active_pre_offers),"
        " (SELECT count(*) FROM promotion_origination_sessions WHERE sequence_id = 8),"
        " (SELECT count(*) FROM promotion_splits WHERE used_at IS NOT NULL)"
    )
    if tuple(counts) != (users,) * 4:
        raise AssertionError(f"subject: effects {tuple(counts)} for {users} users")


@contextlib.asynccontextmanager
async def open_bench() -> AsyncIterator[tuple[asyncpg.Connection, Fixture, Child, int, str, Path]]:
    database = f"engage_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = make_url(PG_ADMIN_URL).set(database=database)
    dsn = url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=url.set(drivername="postgresql+asyncpg").render_as_string(False),
        jwt_secret=JWT_SECRET,
    )
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-accept-"))
    server: Child | None = None
    db: asyncpg.Connection | None = None
    try:
        await asyncio.to_thread(upgrade, settings, "head")
        db = await asyncpg.connect(dsn)
        fixture = await seed(db, settings)
        port = _free_port()
        env = {
            **os.environ,
            "ENGAGE_ENV": "production",
            "DATABASE_URL": settings.database_url,
            "JWT_SECRET": JWT_SECRET,
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": _pythonpath(),
        }
        for name in ("REDIS_URL", "JOBS_IN_PROCESS", "SCHEDULER_IN_PROCESS", "JWT_JWKS_URL"):
            env.pop(name, None)
        command = [
            "taskset", "-c", SERVER_CORE, *_engage(), "serve", "--host", "127.0.0.1",
            "--port", str(port),
        ]  # fmt: skip
        server = start_child(command, workdir, "server", env)
        await wait_ready(server, port)
        yield db, fixture, server, port, dsn, workdir
    finally:
        if server is not None:
            server.stop()
        if db is not None:
            await db.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(workdir, ignore_errors=True)


async def amain() -> dict[str, float]:
    async with open_bench() as (db, fixture, server, port, dsn, workdir):
        print(f"machine: {machine_notes()}")
        print(
            f"{USERS} users with a COMPLETED run; {CLIENTS} clients; subject: engage serve on"
            f" core {SERVER_CORE}, driver (raw HTTP) on core {CLIENT_CORE}; baseline: asyncpg,"
            f" one guarded UPDATE per user, on core {CLIENT_CORE}",
            flush=True,
        )
        runs: dict[str, list[Run]] = {"subject": [], "baseline": []}
        for _ in range(ROUNDS):
            for kind in ("subject", "baseline"):
                await reset(db)
                await wait_for_quiet(60, 0.15)
                run = await run_once(kind, fixture, server, port, dsn, workdir)
                await verify(db, kind, len(fixture.user_ids))
                runs[kind].append(run)
                print(run.line(), flush=True)
        subject = statistics.median(r.rate for r in runs["subject"])
        baseline = statistics.median(r.rate for r in runs["baseline"])
        print(
            f"\npromotionRewardAccept {subject:.0f}/s vs one SQL statement {baseline:.0f}/s:"
            f" {subject / baseline:.1%} (9 statements per accept, pinned)"
        )
        return {"subject": subject, "baseline": baseline, "ratio": subject / baseline}


def main() -> None:
    run_until_done(amain)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "client":
        client_main(sys.argv[2], sys.argv[3])
    else:
        main()
