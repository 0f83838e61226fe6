"""Personal goals on real processes: `engage serve` + `engage worker` on PostgreSQL + Redis.

An admin creates a template and assigns it; the order system records rides over HTTP; the
worker process matches them, closes the goal and grants the bonus; the user sees it over
HTTP and is pushed every step over the graphql-transport-ws subscription (through Redis,
since the events come from the worker process).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.e2e.conftest import LiveServerFactory
from tests.e2e.test_first_run import LOGIN, REGISTER, _engage, _post
from tests.e2e.test_jobs_e2e import E2E_REDIS_URL, _admin_token, _Processes, pg_database

pytestmark = pytest.mark.e2e
__all__ = ["pg_database"]  # the fixture, imported so this module can use it

TEMPLATE = """mutation T($input: GoalTemplateCreateInput!) {
  goalTemplateCreate(input: $input) { errors { code field message } } }"""
ASSIGN = """mutation A($input: GoalAssignInput!) {
  goalAssign(input: $input) { userGoal { id status } errors { code field } } }"""
ORDER = """mutation O($input: OrderRecordInput!) {
  orderRecord(input: $input) { outcome errors { code field message } } }"""
VIEW = """query { viewer {
  user { id }
  goals { active { id } recent { id status progress { current total } bonus { granted } } }
  wallet { balances { amountMinor currency } }
  goalProgressLog(first: 10) { edges { node { orderId reason } } } } }"""
SUBSCRIBE = "subscription { goalProgress { kind status current total } }"
USER = {"email": "rider@example.com", "password": "rider-passphrase-1"}


def _service_token(workdir: Path, env: dict[str, str]) -> str:
    return _engage(workdir, env, "token", "create", "--name", "e2e-orders").strip().splitlines()[-1]


def _order(order_id: str, user_id: str, ride_class: str) -> dict[str, Any]:
    done = datetime.now(UTC)
    return {
        "orderId": order_id,
        "userId": user_id,
        "createdAt": (done - timedelta(minutes=20)).isoformat(),
        "completedAt": done.isoformat(),
        "status": "COMPLETE",
        "rideClass": ride_class,
        "paymentMethod": "card",
        "price": {"amountMinor": 45_000, "currency": "RUB"},
        "cityTimezone": "Europe/Moscow",
    }


async def _events(ws_url: str, token: str, count: int, ready: asyncio.Event) -> list[Any]:
    async with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
        # The server subscribes to Redis before we publish: events before it are lost (at most
        # once). A fixed wait, generous for a loaded machine (see docs/testing.md).
        await asyncio.sleep(2.0)
        ready.set()
        events = []
        while len(events) < count:
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert message["type"] == "next", message
            events.append(message["payload"]["data"]["goalProgress"])
        return events


def _wait_for(fetch: Any, done: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fetch()
        if done(value):
            return value
        time.sleep(0.2)
    pytest.fail(f"not reached within {timeout:.0f} s: {value}")


def test_orders_close_a_goal_and_grant_its_bonus_across_processes(
    tmp_path: Path, live_server_factory: LiveServerFactory, pg_database: str
) -> None:
    Redis.from_url(E2E_REDIS_URL).flushdb()
    env = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": E2E_REDIS_URL,
        "WORKER_SHUTDOWN_TIMEOUT_SECONDS": "5",
    }
    _engage(tmp_path, env, "migrate")
    base_url = live_server_factory(env)
    admin = _admin_token(tmp_path, env, base_url)
    service = _service_token(tmp_path, env)
    _post(base_url, REGISTER, {"input": USER})
    user = _post(base_url, LOGIN, {"input": {"login": USER["email"], "password": USER["password"]}})
    user_token = user["data"]["login"]["tokens"]["accessToken"]
    user_id = _post(base_url, VIEW, token=user_token)["data"]["viewer"]["user"]["id"]
    template = {
        "id": "comfort-2",
        "title": {"en": "Two comfort rides"},
        "conditions": {"target": 2, "periodDays": 5, "rideClasses": ["comfort"]},
        "bonus": {"type": "WALLET", "amountMinor": 30_000, "currency": "RUB"},
    }
    assert (
        _post(base_url, TEMPLATE, {"input": template}, token=admin)["data"]["goalTemplateCreate"][
            "errors"
        ]
        == []
    )
    assigned = _post(
        base_url, ASSIGN, {"input": {"userId": user_id, "goalId": "comfort-2"}}, token=admin
    )["data"]["goalAssign"]
    assert assigned["errors"] == [] and assigned["userGoal"]["status"] == "ACTIVE"

    processes = _Processes(tmp_path, env)
    try:
        processes.start("worker", "worker", "--processes", "1", "--threads", "2")

        async def scenario() -> list[Any]:
            ready = asyncio.Event()
            ws_url = base_url.replace("http://", "ws://") + "/graphql"
            listener = asyncio.create_task(_events(ws_url, user_token, 3, ready))
            await ready.wait()
            first = _order("r-1", user_id, "comfort")
            econom = _order("r-2", user_id, "econom")
            # The first ride is reported twice (a retry): one event.
            rides = [first, econom, first, _order("r-3", user_id, "comfort")]
            for ride in rides:
                variables = {"input": ride}
                body = await asyncio.to_thread(_post, base_url, ORDER, variables, service)
                assert body["data"]["orderRecord"]["errors"] == [], body
                await asyncio.sleep(0.3)  # keep the events in order for the assertion
            return await listener

        events = asyncio.run(scenario())
        view = _wait_for(
            lambda: _post(base_url, VIEW, token=user_token)["data"]["viewer"],
            lambda v: v["wallet"]["balances"] != [],
        )
    finally:
        processes.stop_all()

    # The econom ride and the duplicate report push nothing: only counted progress does.
    assert [(e["kind"], e["current"], e["total"]) for e in events] == [
        ("PROGRESS", 1, 2),
        ("DONE", 2, 2),
        ("ACHIEVEMENT", 2, 2),
    ]
    assert view["goals"]["active"] is None
    [done] = view["goals"]["recent"]
    assert done["status"] == "DONE" and done["progress"] == {"current": 2, "total": 2}
    assert done["bonus"]["granted"]["amountMinor"] == 30_000
    assert view["wallet"]["balances"] == [{"amountMinor": 30_000, "currency": "RUB"}]
    reasons = {e["node"]["orderId"]: e["node"]["reason"] for e in view["goalProgressLog"]["edges"]}
    assert reasons == {"r-1": "COUNTED", "r-2": "WRONG_RIDE_CLASS", "r-3": "COUNTED"}
