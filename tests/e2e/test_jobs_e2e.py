"""Jobs on real processes: the embedded default, and `engage worker` + `engage scheduler`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import _create_pg_database, _drop_pg_database
from tests.e2e.conftest import LiveServerFactory, _engage_command, _server_env, e2e_redis_url
from tests.e2e.test_first_run import LOGIN, _engage, _post

pytestmark = pytest.mark.e2e

# Its own Redis database on the test Redis server, so no other test's worker or queue
# interferes.
E2E_REDIS_URL = e2e_redis_url()
ADMIN = {"login": "ops@example.com", "password": "ops-passphrase-1"}
PING = """mutation P($note: String) {
  jobPing(input: {note: $note}) { ping { id } errors { code } } }"""
PING_STATUS = "query S($id: ID!) { jobPing(id: $id) { processedAt deliveries } }"
EVERY_SECOND = json.dumps({"outbox.sweep": "* * * * * *"})


def _admin_token(workdir: Path, env: dict[str, str], base_url: str) -> str:
    _engage(
        workdir, env, "admin", "create", "--email", ADMIN["login"], "--password", ADMIN["password"]
    )
    login = _post(base_url, LOGIN, {"input": ADMIN})
    token: str = login["data"]["login"]["tokens"]["accessToken"]
    return token


def _ping_and_wait(base_url: str, token: str) -> dict[str, Any]:
    created = _post(base_url, PING, {"note": "e2e"}, token=token)["data"]["jobPing"]
    assert created["errors"] == []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = _post(base_url, PING_STATUS, {"id": created["ping"]["id"]}, token=token)
        ping: dict[str, Any] = status["data"]["jobPing"]
        if ping["processedAt"] is not None:
            return ping
        time.sleep(0.1)
    pytest.fail("the ping was not processed within 20 s")


def _metric(base_url: str, line_prefix: str) -> float:
    for line in httpx.get(f"{base_url}/metrics", timeout=5).text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_embedded_default_runs_outbox_jobs_and_the_scheduler_in_process(
    tmp_path: Path, live_server_factory: LiveServerFactory
) -> None:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'engage.db'}",
        "SCHEDULES": EVERY_SECOND,
    }
    _engage(tmp_path, env, "migrate")
    base_url = live_server_factory(env)
    token = _admin_token(tmp_path, env, base_url)

    assert _ping_and_wait(base_url, token)["deliveries"] == 1
    assert _metric(base_url, 'engage_jobs_processed_total{actor="system.ping"}') >= 1
    deadline = time.monotonic() + 10
    while _metric(base_url, 'engage_scheduler_ticks_total{schedule="outbox.sweep"}') < 2:
        assert time.monotonic() < deadline, "the in-process scheduler never ticked"
        time.sleep(0.2)
    assert _metric(base_url, "engage_outbox_backlog") == 0


class _Processes:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [*_engage_command(), *args],
            cwd=self.workdir,
            env=_server_env(self.workdir, self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def pg_database() -> Iterator[str]:
    url = asyncio.run(_create_pg_database())
    yield url
    asyncio.run(_drop_pg_database(url))


async def _scheduled_ticks(database_url: str) -> list[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT dedupe_key FROM outbox_messages WHERE dedupe_key IS NOT NULL")
            )
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


def test_worker_and_two_schedulers_as_separate_processes(
    tmp_path: Path, live_server_factory: LiveServerFactory, pg_database: str
) -> None:
    Redis.from_url(E2E_REDIS_URL).flushdb()
    env = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": E2E_REDIS_URL,
        "SCHEDULES": EVERY_SECOND,
        "WORKER_SHUTDOWN_TIMEOUT_SECONDS": "5",
    }
    _engage(tmp_path, env, "migrate")
    base_url = live_server_factory(env)
    token = _admin_token(tmp_path, env, base_url)
    processes = _Processes(tmp_path, env)
    try:
        worker = processes.start("worker", "worker", "--processes", "1", "--threads", "2")
        schedulers = [processes.start(f"scheduler-{n}", "scheduler") for n in range(2)]
        assert _ping_and_wait(base_url, token)["deliveries"] == 1
        time.sleep(3)
        assert worker.poll() is None and all(s.poll() is None for s in schedulers)
        ticks = asyncio.run(_scheduled_ticks(pg_database))
        assert len(ticks) >= 2
        assert len(ticks) == len(set(ticks))
    finally:
        processes.stop_all()
    # With Redis the API runs no worker of its own: the ping went through `engage worker`.
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
