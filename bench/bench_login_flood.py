"""`/healthz` latency under a login flood: is the event loop free while passwords hash?

A real `engage serve` process on the embedded default (a fresh, migrated SQLite file, no
Redis, in-process jobs) with one user. The bench process sends BENCH_LOGIN_FLOOD_LOGINS
(200) concurrent `login` mutations with the right password, and meanwhile probes `GET
/healthz` one request after another; it reports the probes' p50 and max latency while the
flood was in flight, the flood's duration and its outcomes (every login must succeed).
Three rounds; the report takes the median of each figure.

    .venv/bin/python -m bench.bench_login_flood       # about 1 minute

Knobs: BENCH_LOGIN_FLOOD_LOGINS (200), BENCH_LOGIN_FLOOD_ROUNDS (3),
BENCH_LOGIN_FLOOD_SOURCE (a source tree to run the server from instead of this one: how the
"before" figure was taken), PASSWORD_HASH_CONCURRENCY (passed on to the server).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._proc import machine_notes

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path(os.environ.get("BENCH_LOGIN_FLOOD_SOURCE", REPO_ROOT))
LOGINS = int(os.environ.get("BENCH_LOGIN_FLOOD_LOGINS", "200"))
ROUNDS = int(os.environ.get("BENCH_LOGIN_FLOOD_ROUNDS", "3"))
EMAIL = "flood@example.com"
PASSWORD = "correct-horse-battery"
JWT_SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
LOGIN = """mutation L($input: LoginInput!) {
  login(input: $input) { tokens { accessToken } errors { code } } }"""
SETUP = f"""
import asyncio
from app.db import create_engine, create_session_factory
from app.migrate import upgrade
from app.services.identity.users import create_admin
from app.settings import get_settings
upgrade(get_settings())
async def main():
    engine = create_engine(get_settings())
    async with create_session_factory(engine)() as session, session.begin():
        await create_admin(session, {EMAIL!r}, {PASSWORD!r}, get_settings())
    await engine.dispose()
asyncio.run(main())
"""


@dataclass(frozen=True)
class Round:
    probes: list[float]  # seconds, /healthz probes sent while the flood was in flight
    flood_seconds: float
    outcomes: Counter[str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _environment(database: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "WARNING",
        "LOGIN_MAX_ATTEMPTS": str(10 * LOGINS),
        "LOGIN_IP_MAX_ATTEMPTS": str(10 * LOGINS),
        "PYTHONPATH": str(SOURCE),
    }
    env.pop("REDIS_URL", None)
    return env


@contextmanager
def server(workdir: Path) -> Iterator[str]:
    """A migrated database with the user, and `engage serve` on it; its base URL."""
    env = _environment(workdir / "engage.db")
    subprocess.run([sys.executable, "-c", SETUP], cwd=SOURCE, env=env, check=True)
    port = _free_port()
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    child = subprocess.Popen(command, cwd=SOURCE, env=env, start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=30)


async def _wait_ready(client: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not become ready")


async def _login(client: httpx.AsyncClient) -> str:
    variables = {"input": {"login": EMAIL, "password": PASSWORD}}
    response = await client.post("/graphql", json={"query": LOGIN, "variables": variables})
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    body = response.json()
    if body.get("errors"):  # an unexpected error ("database is locked", say)
        return f"error: {body['errors'][0]['message'][:60]}"
    payload = body["data"]["login"]
    return payload["errors"][0]["code"] if payload["errors"] else "ok"


async def _probe(client: httpx.AsyncClient, flood: asyncio.Future[list[str]]) -> list[float]:
    latencies = []
    while not flood.done():
        started = time.perf_counter()
        response = await client.get("/healthz")
        if not flood.done():  # only probes that ran entirely inside the flood count
            latencies.append(time.perf_counter() - started)
        assert response.status_code == 200
        await asyncio.sleep(0.02)
    return latencies


async def one_round(base_url: str) -> Round:
    limits = httpx.Limits(max_connections=LOGINS + 10, max_keepalive_connections=LOGINS + 10)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=300, limits=limits) as flooder,
        httpx.AsyncClient(base_url=base_url, timeout=300) as prober,
    ):
        await _wait_ready(prober)
        started = time.perf_counter()
        flood = asyncio.gather(*(_login(flooder) for _ in range(LOGINS)))
        probes = await _probe(prober, flood)
        outcomes = Counter(await flood)
        return Round(probes, time.perf_counter() - started, outcomes)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def report(rounds: list[Round]) -> None:
    p50 = statistics.median(statistics.median(r.probes) for r in rounds if r.probes)
    worst = statistics.median(max(r.probes) for r in rounds if r.probes)
    flood = statistics.median(r.flood_seconds for r in rounds)
    for number, r in enumerate(rounds, 1):
        probe = f"p50 {_ms(statistics.median(r.probes))}, max {_ms(max(r.probes))}"
        print(f"round {number}: {len(r.probes)} probes {probe}; flood {r.flood_seconds:.1f} s")
        print(f"  logins: {dict(r.outcomes)}")
    print(f"median: /healthz p50 {_ms(p50)}, max {_ms(worst)}; {LOGINS} logins in {flood:.1f} s")
    print(machine_notes(f"server from {SOURCE}"))


async def run() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="engage-bench-login-") as workdir,
        server(Path(workdir)) as base_url,
    ):
        rounds = [await one_round(base_url) for _ in range(ROUNDS)]
    failed = [r.outcomes for r in rounds if set(r.outcomes) != {"ok"}]
    report(rounds)
    if failed:
        raise SystemExit(f"some logins failed: {failed}")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
