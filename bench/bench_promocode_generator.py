"""Promocode generator (issue 5): generate and insert 100,000 codes in one transaction.

What is timed (PostgreSQL: a fresh database):
- baseline: `generate()` alone, in memory (the CSPRNG draws and the encoding);
- insert: `insert_generated()` of N codes (length 10, SAFE_CHARSET, prefix "BENCH-") plus the
  COMMIT, in one transaction, as an admin request would run it; once without eligible plans,
  once with one plan (a `promocode_plans` row per code);
- for reference, the same insert on the embedded SQLite mode (a file in a temporary directory).

Runs accumulate: run k inserts into a table that already holds the codes of the runs before it
(each insert is checked against them through the unique index). Each variant runs ROUNDS times
after a warm-up; the report gives the median seconds and codes/s, and the CPU split: this
process (Python: generation, SQLAlchemy, asyncpg) versus the PostgreSQL backend serving the
transaction (read from /proc, the server runs on this machine). The machine may be shared with
other work (test suites): before each run the bench waits (up to 2 minutes) for it to be
nearly idle, and reports the share of the run's busy CPU that was neither ours nor the
backend's ("others"); runs above 10 % are flagged.

    make bench                                            # every benchmark
    .venv/bin/python -m bench.bench_promocode_generator   # this one (~1 min when idle)

Knobs (environment): BENCH_PROMOCODES_CODES (100000), BENCH_PROMOCODES_ROUNDS (3),
BENCH_PG_URL (postgresql://postgres@127.0.0.1:5432/postgres). The bench creates and drops its
own database, engage_bench_<hex>.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import (
    SessionFactory,
    create_engine,
    create_session_factory,
    transaction,
)
from app.migrate import upgrade
from app.models.promocodes import Plan, Promocode, PromocodeKind, promocode_plans
from app.services.promocodes.generator import (
    CHUNK_ROWS,
    SAFE_CHARSET,
    capacity,
    generate,
    insert_generated,
)
from app.settings import Settings
from bench._proc import machine_busy, machine_notes, process_stat, wait_for_quiet

CODES = int(os.environ.get("BENCH_PROMOCODES_CODES", "100000"))
ROUNDS = int(os.environ.get("BENCH_PROMOCODES_ROUNDS", "3"))
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
LENGTH = 10
PREFIX = "BENCH-"
TARGET_SECONDS = 5.0  # "N up to 100,000 in seconds"
QUIET_BUSY_FRACTION = 0.10  # of all cores, sampled over one second before each run
QUIET_WAIT_SECONDS = 120.0
NOISY_SHARE = 0.10
SQLITE = "SQLite"
TEMPLATE: dict[str, Any] = {
    "kind": PromocodeKind.PERCENT,
    "value": 20,
    "max_uses": 1,
    "description": "bench",
    "created_by": "bench",
}


@dataclass
class Run:
    variant: str
    codes: int
    existing: int  # codes in the table before the run
    seconds: float
    client_cpu: float  # this process
    server_cpu: float | None  # the PostgreSQL backend of the transaction
    busy_before: float  # the machine's busy fraction just before the run
    machine_cpu: float  # busy CPU seconds of the whole machine during the run

    @property
    def rate(self) -> float:
        return self.codes / self.seconds

    @property
    def others_share(self) -> float:
        """The share of the machine's busy CPU that was neither this process nor the backend."""
        ours = self.client_cpu + (self.server_cpu or 0.0)
        return max(0.0, self.machine_cpu - ours) / self.machine_cpu if self.machine_cpu else 0.0


def _process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of a local process, or None when it can't be read."""
    stat = process_stat(pid)
    return stat[2] if stat is not None else None


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


async def time_generation(count: int) -> Run:
    """The in-memory baseline: no database at all."""
    busy_before = await wait_for_quiet(QUIET_WAIT_SECONDS, QUIET_BUSY_FRACTION)
    machine, cpu, start = machine_busy(), time.process_time(), time.perf_counter()
    codes = generate(count, length=LENGTH, prefix=PREFIX)
    seconds = time.perf_counter() - start
    assert len(set(codes)) == count
    cpu, machine = time.process_time() - cpu, machine_busy() - machine
    return Run("generate only", count, 0, seconds, cpu, None, busy_before, machine)


async def _count(factory: SessionFactory, table: Any) -> int:
    async with factory() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def _backend_pid(session: AsyncSession) -> int | None:
    """The PostgreSQL backend serving this session; None on SQLite (it runs in this process)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)


async def time_insert(factory: SessionFactory, variant: str, template: dict[str, Any]) -> Run:
    """One transaction: insert CODES generated codes, commit; checks what was stored."""
    existing = await _count(factory, Promocode)
    plans_before = await _count(factory, promocode_plans)
    batch_id = uuid.uuid4()
    busy_before = await wait_for_quiet(QUIET_WAIT_SECONDS, QUIET_BUSY_FRACTION)
    machine, cpu, start = machine_busy(), time.process_time(), time.perf_counter()
    async with transaction(factory) as session:
        backend_pid = await _backend_pid(session)
        server_before = _process_cpu(backend_pid) if backend_pid else None
        codes = await insert_generated(
            session, template=template, count=CODES, length=LENGTH, prefix=PREFIX, batch_id=batch_id
        )
        # Before COMMIT: its WAL flush is I/O wait, not CPU.
        server_after = _process_cpu(backend_pid) if backend_pid else None
    seconds = time.perf_counter() - start
    cpu, machine = time.process_time() - cpu, machine_busy() - machine
    server = _delta(server_before, server_after)
    run = Run(variant, CODES, existing, seconds, cpu, server, busy_before, machine)
    assert len(set(codes)) == CODES
    assert await _count(factory, Promocode) == existing + CODES
    plans = len(template.get("plan_ids", ()))
    assert await _count(factory, promocode_plans) == plans_before + CODES * plans
    return run


async def _create_plans(factory: SessionFactory, count: int) -> list[uuid.UUID]:
    async with transaction(factory) as session:
        plans = [
            Plan(
                slug=f"bench-{n}",
                name=f"Bench {n}",
                price_minor=999,
                currency="EUR",
                duration_days=30,
            )
            for n in range(count)
        ]
        session.add_all(plans)
        await session.flush()
        return [plan.id for plan in plans]


async def checkpoint(factory: SessionFactory) -> None:
    """Flush the previous run's dirty pages, so a run doesn't pay for the one before it."""
    async with factory() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("CHECKPOINT"))


def format_run(run: Run) -> str:
    server = "-" if run.server_cpu is None else f"{run.server_cpu:.2f}"
    return (
        f"| {run.variant} | {run.codes:,} | {run.existing:,} | {run.seconds:.2f} "
        f"| {run.rate:,.0f} | {run.client_cpu:.2f} | {server} | {run.machine_cpu:.2f} "
        f"| {run.busy_before:.0%} | {run.others_share:.0%} |"
    )


HEADER = (
    "| variant | codes | existing | seconds | codes/s | client CPU s | PostgreSQL CPU s "
    "| machine CPU s | busy0 | others |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def report(runs: list[Run]) -> dict[str, float]:
    medians: dict[str, float] = {}
    for variant in dict.fromkeys(run.variant for run in runs):
        timed = [run for run in runs if run.variant == variant and "warm-up" not in variant]
        if not timed:
            continue
        seconds = statistics.median(run.seconds for run in timed)
        medians[variant] = seconds
        verdict = "" if variant == "generate only" or SQLITE in variant else _verdict(seconds)
        print(
            f"median {variant}: {seconds:.2f} s, {CODES / seconds:,.0f} codes/s"
            f" ({len(timed)} runs){verdict}"
        )
    noisy = [run for run in runs if run.others_share > NOISY_SHARE]
    if noisy:
        print(
            f"WARNING: {len(noisy)} run(s) shared the machine with other work (more than"
            f" {NOISY_SHARE:.0%} of the busy CPU was not ours): their figures are pessimistic"
        )
    return medians


def _verdict(seconds: float) -> str:
    met = "met" if seconds <= TARGET_SECONDS else "MISSED"
    return f"; target {CODES:,} codes in <= {TARGET_SECONDS:.0f} s: {met}"


@contextlib.asynccontextmanager
async def open_database() -> AsyncIterator[tuple[str, SessionFactory]]:
    """A fresh, migrated database and a session factory on it; dropped at the end."""
    database = f"engage_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=database)
    settings = Settings(database_url=url.render_as_string(hide_password=False))
    engine = None
    try:
        await asyncio.to_thread(upgrade, settings, "head")
        engine = create_engine(settings)
        yield database, create_session_factory(engine)
    finally:
        if engine is not None:
            await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def open_sqlite() -> AsyncIterator[SessionFactory]:
    """The embedded mode: a migrated SQLite file in a temporary directory."""
    directory = Path(tempfile.mkdtemp(prefix="engage-bench-promocodes-"))
    settings = Settings(database_url=f"sqlite+aiosqlite:///{directory / 'engage.db'}")
    engine = None
    try:
        await asyncio.to_thread(upgrade, settings, "head")
        engine = create_engine(settings)
        yield create_session_factory(engine)
    finally:
        if engine is not None:
            await engine.dispose()
        shutil.rmtree(directory, ignore_errors=True)


async def _rounds(runs: list[Run], variant: str, measure: Callable[[str], Awaitable[Run]]) -> None:
    for round_ in range(ROUNDS + 1):  # the first run is a warm-up
        runs.append(await measure(variant if round_ else f"{variant} (warm-up)"))
        print(format_run(runs[-1]), flush=True)


async def amain() -> dict[str, float]:
    space = capacity(LENGTH, SAFE_CHARSET)
    print(machine_notes(f"SQLAlchemy {sqlalchemy.__version__}", f"asyncpg {asyncpg.__version__}"))
    print(
        f"{CODES:,} codes per run, length {LENGTH} over {len(SAFE_CHARSET)} symbols "
        f"({space:.2e} possible), prefix {PREFIX!r}, {CHUNK_ROWS:,} rows per INSERT"
    )
    runs: list[Run] = []
    print(HEADER, flush=True)
    for _ in range(ROUNDS):
        runs.append(await time_generation(CODES))
        print(format_run(runs[-1]), flush=True)
    async with open_database() as (_, factory):

        async def insert(template: dict[str, Any], variant: str) -> Run:
            await checkpoint(factory)
            return await time_insert(factory, variant, template)

        await _rounds(runs, "insert", lambda v: insert(TEMPLATE, v))
        with_plan = TEMPLATE | {"plan_ids": await _create_plans(factory, 1)}
        await _rounds(runs, "insert + 1 plan", lambda v: insert(with_plan, v))
    async with open_sqlite() as factory:
        await _rounds(runs, f"insert, {SQLITE}", lambda v: time_insert(factory, v, TEMPLATE))
    return report(runs)


def main() -> None:
    asyncio.run(amain())


if __name__ == "__main__":
    main()
