"""Fault injection on real processes: orders keep flowing while the system is broken.

`engage serve` (HTTP, a SERVICE token) records ENGAGE_CHAOS_ORDERS orders (`make chaos`:
10,000) for users whose active personal goal grants a WALLET credit or a PROMOCODE; one
`engage worker` processes them through Redis and `engage scheduler` runs the outbox sweeper
every second. Meanwhile the test kills -9 the worker and restarts it, kills -9 the API and
restarts it (requests that got no answer are sent again, as the order system does; a repeat
must be DUPLICATE), and restarts Redis without persistence (its queues are lost). Every
message is delivered twice (`DuplicateDelivery`, tests/e2e/chaos_support.py).

Afterwards every count must be exact, read from PostgreSQL: each order stored once, one
ledger row per order, goals DONE exactly when they reached their target, each bonus granted
once, no outbox row unsent, no dead letter.

This test restarts the machine's shared Redis (127.0.0.1:6379): run it alone (CI does).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from redis import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e import chaos_support
from tests.e2e.chaos_support import Proc, wait_healthy
from tests.e2e.conftest import _engage_command, _server_env, free_port
from tests.e2e.test_first_run import LOGIN, REGISTER, _engage, _post
from tests.e2e.test_goals_e2e import ASSIGN, TEMPLATE
from tests.e2e.test_jobs_e2e import ADMIN, PING, PING_STATUS, _admin_token, pg_database

pytestmark = pytest.mark.e2e
__all__ = ["pg_database"]  # the fixture, imported so this module can use it

ORDERS = int(os.environ.get("ENGAGE_CHAOS_ORDERS", "1000"))
CONCURRENCY = 16
DRAIN_TIMEOUT_SECONDS = 120.0
ORDER = """mutation O($input: OrderRecordInput!) {
  orderRecord(input: $input) { outcome errors { code field message } } }"""


def _chaos_redis_url() -> str:
    """The test's own Redis database (11), on the server ENGAGE_TEST_REDIS_URL names."""
    base = urlsplit(os.environ.get("ENGAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    return urlunsplit(base._replace(path="/11"))


@dataclass
class Plan:
    """Who gets which orders, and what each goal must end as."""

    users: list[str]  # user ids
    targets: dict[str, int]  # user id -> goal target
    bonus: dict[str, str]  # user id -> WALLET | PROMOCODE
    orders: list[dict[str, Any]] = field(default_factory=list)

    def comfort_orders(self, user_id: str) -> int:
        return sum(
            1 for o in self.orders if o["userId"] == _gid(user_id) and o["rideClass"] == "comfort"
        )


@dataclass
class Sent:
    answers: dict[str, list[str]] = field(default_factory=dict)  # order id -> outcomes
    failures: dict[str, int] = field(default_factory=dict)  # order id -> unanswered tries


def _order(index: int, user_id: str) -> dict[str, Any]:
    done = datetime.now(UTC)
    return {
        "orderId": f"chaos-{index}",
        "userId": user_id,
        "createdAt": (done - timedelta(minutes=20)).isoformat(),
        "completedAt": done.isoformat(),
        "status": "COMPLETE",
        "rideClass": "econom" if index % 5 == 4 else "comfort",
        "paymentMethod": "card",
        "price": {"amountMinor": 45_000, "currency": "RUB"},
        "cityTimezone": "Europe/Moscow",
    }


def _set_up(base_url: str, admin: str, database_url: str) -> Plan:
    users = max(8, ORDERS // 1000)
    per_user_comfort = ORDERS // users * 4 // 5
    reach, miss = max(1, per_user_comfort // 2), min(1000, per_user_comfort + 5)
    bonuses = {
        "WALLET": {"type": "WALLET", "amountMinor": 30_000, "currency": "RUB"},
        "PROMOCODE": {"type": "PROMOCODE", "kind": "PERCENT", "value": 15, "validityDays": 30},
    }
    templates: list[tuple[str, str, int]] = []
    for kind, bonus in bonuses.items():
        for target in (reach, miss):
            template_id = f"chaos-{kind.lower()}-{target}"
            conditions = {"target": target, "periodDays": 5, "rideClasses": ["comfort"]}
            payload = {
                "id": template_id,
                "title": {"en": f"{target} comfort rides"},
                "conditions": conditions,
                "bonus": bonus,
            }
            created = _post(base_url, TEMPLATE, {"input": payload}, token=admin)
            assert created["data"]["goalTemplateCreate"]["errors"] == [], created
            templates.append((template_id, kind, target))
    emails = [f"chaos-{n}@example.com" for n in range(users)]
    for email in emails:
        registered = _post(
            base_url, REGISTER, {"input": {"email": email, "password": "chaos-passphrase-1"}}
        )
        assert registered["data"]["register"]["errors"] == [], registered
    ids = asyncio.run(_user_ids(database_url, emails))
    plan = Plan(users=ids, targets={}, bonus={})
    for n, user_id in enumerate(ids):
        template_id, kind, target = templates[n % len(templates)]
        assigned = _post(
            base_url,
            ASSIGN,
            {"input": {"userId": _gid(user_id), "goalId": template_id}},
            token=admin,
        )["data"]["goalAssign"]
        assert assigned["errors"] == [] and assigned["userGoal"]["status"] == "ACTIVE", assigned
        plan.targets[user_id], plan.bonus[user_id] = target, kind
    plan.orders = [_order(i, _gid(ids[i % len(ids)])) for i in range(ORDERS)]
    return plan


async def _user_ids(database_url: str, emails: list[str]) -> list[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT email, id FROM users WHERE email = ANY(:emails)"), {"emails": emails}
            )
            by_email = {email: str(user_id) for email, user_id in rows}
    finally:
        await engine.dispose()
    return [by_email[email] for email in emails]


def _gid(user_id: str) -> str:
    """The user's global id, which the API takes."""
    return base64.b64encode(f"User:{user_id}".encode()).decode()


class Chaos:
    """The processes, and the faults injected into them."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.env = _server_env(workdir, env)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        command = _engage_command()
        serve = [*command, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        worker = [*command, "worker", "--processes", "1", "--threads", "8"]
        self.api = Proc("api", serve, self.env, workdir)
        self.worker = Proc("worker", worker, self.env, workdir)
        self.scheduler = Proc("scheduler", [*command, "scheduler"], self.env, workdir)
        self.database_url = env["DATABASE_URL"]
        self.redis_url = env["REDIS_URL"]
        self.events: list[tuple[str, float, str]] = []
        self.lost_in_redis = 0  # messages queued in Redis when it restarted

    def start_api(self) -> None:
        self.api.start()
        wait_healthy(self.api, self.base_url)

    def note(self, event: str, began: float) -> None:
        self.events.append((event, round(time.monotonic() - began, 2), f"{datetime.now(UTC):%T}"))

    def kill_and_restart_worker(self) -> None:
        began = time.monotonic()
        self.worker.kill9()
        self.worker.start()
        self.note("worker kill -9 + restart", began)

    def kill_and_restart_api(self) -> None:
        began = time.monotonic()
        self.api.kill9()
        time.sleep(0.5)  # the order system sees the API down for a moment
        self.start_api()
        self.note("api kill -9 + restart", began)

    def _worker_events(self, event: str) -> list[list[dict[str, Any]]]:
        """The JSON log lines of `event`, per start of the worker."""
        found = []
        for start in range(1, self.worker.starts + 1):
            log = self.worker.workdir / f"{self.worker.name}.{start}.log"
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            found.append([json.loads(line) for line in lines if f'"{event}"' in line])
        return found

    def swept(self) -> int:
        """Outbox rows the sweeper had to publish."""
        return sum(e["count"] for run in self._worker_events("outbox.swept") for e in run)

    def redelivered(self) -> int:
        """Outbox rows sent but never finished that the sweeper published again."""
        return sum(e["count"] for run in self._worker_events("outbox.redelivered") for e in run)

    def duplicates(self) -> int:
        """Duplicate deliveries processed."""
        runs = self._worker_events(chaos_support.DUPLICATES_EVENT)
        return sum(run[-1]["processed"] for run in runs if run)

    def stop_all(self) -> None:
        for proc in (self.api, self.worker, self.scheduler):
            proc.stop()


async def _send_all(chaos: Chaos, plan: Plan, service: str) -> Sent:
    """Send every order once, resending those without an answer; fire the faults meanwhile."""
    sent = Sent()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for order in plan.orders:
        queue.put_nowait(order)
    answered = 0
    in_flight = 0
    faults: list[tuple[float, Any]] = [
        (0.2, chaos.kill_and_restart_worker),
        (0.4, chaos.kill_and_restart_api),
        (0.6, None),  # the Redis restart, below
        (0.75, chaos.kill_and_restart_worker),
    ]
    fault_task: asyncio.Task[None] | None = None
    headers = {"authorization": f"Bearer {service}"}

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal answered, in_flight
        while True:
            try:
                order = queue.get_nowait()
            except asyncio.QueueEmpty:
                if fault_task is None or fault_task.done():
                    return
                await asyncio.sleep(0.05)
                continue
            in_flight += 1
            try:
                response = await client.post(
                    f"{chaos.base_url}/graphql",
                    json={"query": ORDER, "variables": {"input": order}},
                    headers=headers,
                )
                body = response.json() if response.status_code == 200 else None
            except (httpx.TransportError, ValueError):
                body = None
            finally:
                in_flight -= 1
            if body is None or body.get("data") is None:
                sent.failures[order["orderId"]] = sent.failures.get(order["orderId"], 0) + 1
                queue.put_nowait(order)  # the order system retries
                await asyncio.sleep(0.1)
                continue
            payload = body["data"]["orderRecord"]
            assert payload["errors"] == [], (order, payload)
            sent.answers.setdefault(order["orderId"], []).append(payload["outcome"])
            answered += 1

    async def restart_redis() -> None:
        """Restart Redis mid-stream, losing what it holds, with orders arriving while it's down.

        Its queues are not persisted: the messages waiting in them were marked sent, and no
        worker finished them, so the sweeper must publish them again (`redeliver`); orders
        recorded while Redis is down leave unsent outbox rows, which it must publish once
        Redis is back.
        """
        began = time.monotonic()
        # The test's own duplicate copies don't count: their originals were finished already.
        queued = await asyncio.to_thread(_queued_originals, chaos.redis_url)
        await asyncio.to_thread(chaos_support.shutdown_redis)
        await asyncio.sleep(2)  # orders keep coming while Redis is down
        await asyncio.to_thread(chaos_support.ensure_redis)
        chaos.lost_in_redis += queued
        chaos.note(f"redis restart (nosave), {queued} messages queued in it lost", began)

    async def injector() -> None:
        for fraction, fault in faults:
            while answered < fraction * len(plan.orders):  # noqa: ASYNC110 - a counter
                await asyncio.sleep(0.02)
            await (restart_redis() if fault is None else asyncio.to_thread(fault))

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        fault_task = asyncio.create_task(injector())
        await asyncio.gather(*(sender(client) for _ in range(CONCURRENCY)))
        await fault_task
        # The order system reports some orders again: every repeat is a DUPLICATE.
        for order in random.Random(7).sample(plan.orders, min(50, len(plan.orders))):
            again = await client.post(
                f"{chaos.base_url}/graphql",
                json={"query": ORDER, "variables": {"input": order}},
                headers=headers,
            )
            assert again.json()["data"]["orderRecord"]["outcome"] == "DUPLICATE"
    return sent


async def _wait_settled(database_url: str, orders: int, redis_url: str) -> dict[str, Any]:
    """Wait until `orders` orders are in the ledger and nothing is left to do; the snapshot."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while True:
        snapshot = await _snapshot(database_url)
        if _settled(snapshot, orders) and _queues_empty(redis_url):
            await asyncio.sleep(2)  # the duplicates of the last messages, and their effects
            snapshot = await _snapshot(database_url)
            if _settled(snapshot, orders) and _queues_empty(redis_url):
                return snapshot
        if time.monotonic() > deadline:
            return snapshot
        await asyncio.sleep(0.3)


async def _snapshot(database_url: str) -> dict[str, Any]:
    engine = create_async_engine(database_url)
    queries = {
        "orders": "SELECT count(*), count(DISTINCT order_id) FROM goal_orders",
        "ledger": "SELECT count(*), count(DISTINCT order_id) FROM goal_progress",
        "unsent": "SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL",
        "messages": "SELECT count(*) FROM outbox_messages",
        # The scheduler enqueues a sweep every second: the youngest rows may be in flight.
        "unfinished": "SELECT count(*) FROM outbox_messages WHERE finished_at IS NULL"
        " AND created_at < now() - interval '2 seconds'",
        "dead": "SELECT actor, error FROM job_failures",
        "goals": "SELECT user_id, status, progress, target, bonus_granted_at IS NOT NULL,"
        " bonus_ref FROM user_goals",
        "counted": "SELECT user_goal_id, count(*) FROM goal_progress WHERE counted"
        " GROUP BY user_goal_id",
        "wallet": "SELECT user_id, source_key, amount_minor FROM wallet_entries",
        "codes": "SELECT created_by, count(*) FROM promocodes GROUP BY created_by",
        "ledger_by_user": "SELECT user_id, count(*) FROM goal_progress GROUP BY user_id",
        "goal_ids": "SELECT user_id, id FROM user_goals",
        # Diagnostics: orders without a ledger row, and their jobs.
        "missing": "SELECT o.order_id, m.id, m.created_at, m.sent_at, m.publish_attempts"
        " FROM goal_orders o LEFT JOIN goal_progress p ON p.order_id = o.order_id"
        " LEFT JOIN outbox_messages m ON m.kwargs::jsonb ->> 'order_id' = o.order_id"
        " WHERE p.order_id IS NULL ORDER BY o.order_id LIMIT 20",
    }
    try:
        async with engine.connect() as connection:
            result: dict[str, Any] = {}
            for name, query in queries.items():
                result[name] = [tuple(row) for row in await connection.execute(text(query))]
            return result
    finally:
        await engine.dispose()


def _settled(snapshot: dict[str, Any], orders: int) -> bool:
    """Nothing left to do: outbox sent, every order in the ledger, every DONE goal granted."""
    return (
        snapshot["unsent"] == [(0,)]
        and snapshot["unfinished"] == [(0,)]
        and snapshot["ledger"][0][0] >= orders
        and all(granted for _, status, *_x, granted, _ref in snapshot["goals"] if status == "DONE")
    )


def _queues_empty(redis_url: str) -> bool:
    return _queued_messages(redis_url) == 0


def _queued_messages(redis_url: str) -> int:
    redis = Redis.from_url(redis_url)
    try:
        keys = [k for k in redis.keys("dramatiq:*") if not k.endswith((b".msgs", b"__"))]
        return sum(int(redis.llen(k)) for k in keys if redis.type(k) == b"list")
    finally:
        redis.close()


def _queued_originals(redis_url: str) -> int:
    """Messages waiting in the queues that are not a copy sent by `DuplicateDelivery`."""
    redis = Redis.from_url(redis_url)
    try:
        keys = [k for k in redis.keys("dramatiq:*") if not k.endswith((b".msgs", b"__"))]
        originals = 0
        for key in (k for k in keys if redis.type(k) == b"list"):
            for message_id in redis.lrange(key, 0, -1):
                body = redis.hget(key + b".msgs", message_id)
                options = json.loads(body).get("options", {}) if body else {}
                originals += not options.get(chaos_support.DUPLICATE_OPTION)
        return originals
    finally:
        redis.close()


def _fresh_redis() -> str:
    redis_url = _chaos_redis_url()
    chaos_support.ensure_redis()  # a previous run's failure may have left it down
    try:
        Redis.from_url(redis_url, socket_timeout=5).flushdb()
    except Exception as exc:  # noqa: BLE001 - must fail, not skip
        pytest.fail(f"Redis is not reachable at {redis_url}: {exc}")
    return redis_url


def _chaos_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WORKER_SHUTDOWN_TIMEOUT_SECONDS": "5",
        # The sweeper every second, for rows unsent for 3 s and sent but unfinished for 5 s
        # (the defaults: 1 min, 30 s and 15 min).
        "SCHEDULES": json.dumps({"outbox.sweep": "* * * * * *"}),
        "OUTBOX_SWEEP_GRACE_SECONDS": "3",
        "OUTBOX_REDELIVER_AFTER_SECONDS": "5",
        "JOB_MIN_BACKOFF_MS": "200",
        "JOB_MAX_BACKOFF_MS": "2000",
        "ENGAGE_TEST_WORKER_MIDDLEWARE": chaos_support.MIDDLEWARE_SPEC,
        # The test counts sweeps and duplicates from the workers' log lines: a worker killed
        # with -9 must not take lines still in its stdout buffer with it.
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
    }


def test_a_job_queued_in_redis_survives_a_redis_restart(tmp_path: Path, pg_database: str) -> None:
    """A job published to Redis but not yet processed must survive Redis losing its data."""
    redis_url = _fresh_redis()
    env = _chaos_env(pg_database, redis_url)
    _engage(tmp_path, env, "migrate")
    chaos = Chaos(tmp_path, env)
    try:
        chaos.start_api()
        token = _admin_token(tmp_path, env, chaos.base_url)
        created = _post(chaos.base_url, PING, {"note": "lost?"}, token=token)["data"]["jobPing"]
        assert created["errors"] == []
        # No worker yet: the message waits in Redis, its outbox row marked sent.
        chaos_support.shutdown_redis()
        chaos_support.ensure_redis()
        chaos.worker.start()
        chaos.scheduler.start()
        # The sweeper runs every second and publishes again what was sent 5 s ago.
        deadline = time.monotonic() + 30
        ping: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = _post(chaos.base_url, PING_STATUS, {"id": created["ping"]["id"]}, token=token)
            ping = status["data"]["jobPing"]
            if ping["processedAt"] is not None:
                break
            time.sleep(0.3)
    finally:
        chaos.stop_all()
        chaos_support.ensure_redis()
    assert ping["processedAt"] is not None, "the job published before the restart was lost"
    assert ping["deliveries"] == 1


def test_orders_survive_killed_processes_a_redis_restart_and_double_delivery(
    tmp_path: Path, pg_database: str
) -> None:
    redis_url = _fresh_redis()
    env = _chaos_env(pg_database, redis_url)
    _engage(tmp_path, env, "migrate")
    chaos = Chaos(tmp_path, env)
    timings: dict[str, float] = {}
    try:
        began = time.monotonic()
        chaos.start_api()
        _engage(
            tmp_path,
            env,
            "admin",
            "create",
            "--email",
            ADMIN["login"],
            "--password",
            ADMIN["password"],
        )
        admin = _post(chaos.base_url, LOGIN, {"input": ADMIN})["data"]["login"]["tokens"][
            "accessToken"
        ]
        service = _engage(tmp_path, env, "token", "create", "--name", "chaos").strip()
        service = service.splitlines()[-1]
        plan = _set_up(chaos.base_url, admin, pg_database)
        chaos.worker.start()
        chaos.scheduler.start()
        timings["setup"] = time.monotonic() - began

        began = time.monotonic()
        sent = asyncio.run(_send_all(chaos, plan, service))
        timings["send"] = time.monotonic() - began

        began = time.monotonic()
        snapshot = asyncio.run(_wait_settled(pg_database, len(plan.orders), redis_url))
        timings["drain"] = time.monotonic() - began
    finally:
        chaos.stop_all()
        chaos_support.ensure_redis()
    print(f"\nchaos: {len(plan.orders)} orders, timings {timings}, faults {chaos.events}")
    swept, duplicates = chaos.swept(), chaos.duplicates()
    resent = sum(sent.failures.values())
    redelivered = chaos.redelivered()
    print(f"chaos: unanswered requests resent: {resent}, swept outbox rows: {swept}")
    print(f"chaos: outbox rows published again after the broker lost them: {redelivered}")
    print(f"chaos: duplicate deliveries processed: ~{duplicates}")

    n = len(plan.orders)
    # Each order answered; only an order whose earlier request went unanswered may be a repeat.
    assert set(sent.answers) == {o["orderId"] for o in plan.orders}
    for order_id, outcomes in sent.answers.items():
        allowed = {"NEW", "DUPLICATE"} if order_id in sent.failures else {"NEW"}
        assert outcomes[0] in allowed, (order_id, outcomes, sent.failures.get(order_id))
    # An unanswered request that was stored anyway comes back DUPLICATE when resent.
    repeats = sum(1 for outcomes in sent.answers.values() if outcomes[0] == "DUPLICATE")
    print(f"chaos: resent orders answered DUPLICATE (stored before the API died): {repeats}")
    # Stored once, and one ledger row each.
    assert snapshot["orders"] == [(n, n)]
    assert snapshot["ledger"] == [(n, n)], (
        f"orders lost (faults {chaos.events}): {snapshot['missing']}"
    )
    assert snapshot["unsent"] == [(0,)]
    assert snapshot["unfinished"] == [(0,)], "a message the broker lost was never redelivered"
    assert swept > 0, "orders recorded while Redis was down must have been swept"
    # Whether the restart lost anything can't be told from outside: a message counted in the
    # queue just before the restart may be consumed (prefetched) before Redis goes down. So
    # `redelivered` is reported, not asserted; `unfinished` above is the check that nothing
    # was lost, and test_a_job_queued_in_redis_survives_a_redis_restart proves the
    # redelivery path itself with no worker running.
    # Orders are processed in batches (one job per up to 100 users with pending orders), so
    # the duplicates follow the jobs (a few hundred), not the orders; a worker killed -9 loses
    # its buffered log lines, so the count seen is a lower bound: it must not be zero.
    assert duplicates > 0, ("the duplicate delivery did not run", snapshot["messages"])
    assert snapshot["dead"] == []
    ledger_by_user = dict(snapshot["ledger_by_user"])
    counted = {str(goal_id): c for goal_id, c in snapshot["counted"]}
    goal_ids = {str(user_id): str(goal_id) for user_id, goal_id in snapshot["goal_ids"]}
    goals = {str(row[0]): row[1:] for row in snapshot["goals"]}
    wallet = [(str(user_id), key, amount) for user_id, key, amount in snapshot["wallet"]]
    codes = dict(snapshot["codes"])
    assert len(goals) == len(plan.users)  # one goal each, nothing assigned twice
    for user_id in plan.users:
        status, progress, target, granted, _ref = goals[user_id]
        comfort, goal_id = plan.comfort_orders(user_id), goal_ids[user_id]
        assert sum(c for u, c in ledger_by_user.items() if str(u) == user_id) == sum(
            1 for o in plan.orders if o["userId"] == _gid(user_id)
        )
        assert progress == counted.get(goal_id, 0) == min(comfort, target), user_id
        assert status == ("DONE" if comfort >= target else "ACTIVE"), user_id
        assert granted == (status == "DONE")
        entries = [e for e in wallet if e[1] == f"goal:{goal_id}"]
        issued = sum(count for by, count in codes.items() if by.endswith(f":{goal_id}"))
        if status == "DONE" and plan.bonus[user_id] == "WALLET":
            assert entries == [(user_id, f"goal:{goal_id}", 30_000)] and issued == 0
        elif status == "DONE":
            assert entries == [] and issued == 1
        else:
            assert entries == [] and issued == 0
    assert len(wallet) == sum(
        1 for u in plan.users if goals[u][0] == "DONE" and plan.bonus[u] == "WALLET"
    )
