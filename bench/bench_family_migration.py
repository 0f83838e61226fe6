"""The migration of families to passport through the double (family, issue 15): families/s
and the share of time spent in passport calls.

Set-up: the passport double as a real process (`engage passport-double` on loopback, every
valid phone has an account), a fresh bench database (PostgreSQL by default, SQLite with
BENCH_MIGRATION_DB=sqlite), BENCH_MIGRATION_FAMILIES families of an owner and
BENCH_MIGRATION_MEMBERS members (users with phones inserted in bulk; the families, the
invitations and their acceptances through the domain's services: bench/_family_seed.py).

A run: every family scheduled (`migration.schedule`, trigger BULK: the row PENDING and its
outbox message), then `jobs.family.run_migration(units, passport, settings, account_id)` for
each, by C coroutines in this process pulling from one queue, with one `PassportClient`
(the app's defaults: 2 s timeout, 2 retries, the breaker) against the double and units of
work from `app.uow` on the app's engine, as the `family.migrate` actor runs it (without
Dramatiq: the figure is the job's). The process runs with the worker's interpreter settings
(app/interpreter.py). Measured: wall time from the first job to the last, families/s, each
job's time, and where the jobs' time goes:
- passport: the sums of the client's own histogram `engage_passport_request_seconds` (one
  observation per logical call, retries included), read before and after;
- database: the time inside the job's units of work (claim; finish with its commit);
- the rest: the job's Python between them.
With C > 1 the shares are of the jobs' summed time (C x wall), and a call's time includes
waiting for this process's event loop. Also: the statements the jobs sent (the engine's
`before_cursor_execute`; BEGIN and COMMIT not counted), and CPU per family from /proc: this
process, the double, PostgreSQL, the whole machine.

After each run: every family DONE with `passport_family_id` set (all distinct), every member
LINKED with the uid of their phone, 3 FAMILY_MOVED notices per family, and the double holds
exactly the families, each with the right admin and members; the passport calls per family
are the expected ones (3 find_account, 1 family_of, 1 create_family, 2 add_member), all ok.
Between runs: links, notices, migrations and outbox rows are cleared, the double's data
reset. Runs alternate the concurrencies (ABBA: 1, 8, 8, 1).

    make bench                                       # every benchmark
    .venv/bin/python -m bench.bench_family_migration  # this one (about 2 minutes)

Knobs (environment): BENCH_MIGRATION_FAMILIES (1000), BENCH_MIGRATION_MEMBERS (2, besides
the owner), BENCH_MIGRATION_CONCURRENCY ("1,8"), BENCH_MIGRATION_ROUNDS (2 runs per
concurrency), BENCH_MIGRATION_DB (postgresql | sqlite), BENCH_MIGRATION_PYSPY (a directory:
py-spy records this process during the first run of each concurrency), BENCH_PG_URL
(postgresql://postgres@127.0.0.1:5432/postgres). The bench creates and drops its own
database (engage_bench_<hex>, or a temporary SQLite file).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import create_engine, create_session_factory
from app.integrations.passport import PassportClient, uid_for
from app.integrations.passport.metrics import REQUEST_SECONDS
from app.interpreter import freeze_startup_heap, tune
from app.migrate import upgrade
from app.models.base import utcnow
from app.models.family import (
    FamilyAccount,
    FamilyMember,
    FamilyMigration,
    FamilyNotification,
    FamilyNotificationKind,
    MigrationState,
    PortalStatus,
)
from app.models.identity import User
from app.models.outbox import OutboxMessage
from app.services.family import migration
from app.settings import Settings
from app.uow import unit_of_work
from bench._family_seed import SeededFamily, create_families
from bench._proc import (
    all_stats,
    descendants,
    machine_busy,
    machine_notes,
    process_stat,
    run_until_done,
    wait_for_quiet,
)
from bench.bench_purchase_create import (
    Child,
    _engage,
    _free_port,
    _pythonpath,
    _ready,
    start_child,
)
from jobs.family import run_migration

FAMILIES = int(os.environ.get("BENCH_MIGRATION_FAMILIES", "1000"))
MEMBERS = int(os.environ.get("BENCH_MIGRATION_MEMBERS", "2"))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_MIGRATION_CONCURRENCY", "1,8").split(",")]
ROUNDS = int(os.environ.get("BENCH_MIGRATION_ROUNDS", "2"))
BACKEND = os.environ.get("BENCH_MIGRATION_DB", "postgresql")
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PYSPY_DIR = os.environ.get("BENCH_MIGRATION_PYSPY", "")

TOKEN = "bench-passport-token"
EXPECTED_CALLS = {
    "find_account": 1 + MEMBERS,
    "family_of": 1,
    "create_family": 1,
    "add_member": MEMBERS,
}
READY_TIMEOUT_SECONDS = 30.0
QUIET_BUSY_FRACTION, QUIET_WAIT_SECONDS = 0.15, 90.0
NOISY_SHARE = 0.10
BENCH, DOUBLE, POSTGRES, MACHINE = "bench", "double", "postgres", "machine"


@dataclass
class MigrationRun:
    concurrency: int
    seconds: float = 0.0
    job_ms: list[float] = field(default_factory=list)
    passport_seconds: float = 0.0
    db_seconds: float = 0.0
    calls: dict[str, tuple[int, float]] = field(default_factory=dict)  # op -> (count, seconds)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per component
    busy_before: float = 0.0
    schedule_seconds: float = 0.0
    statements: int = 0  # sent by the jobs (BEGIN and COMMIT not counted)

    @property
    def rate(self) -> float:
        return FAMILIES / self.seconds

    def share(self, seconds: float) -> float:
        return seconds / max(sum(self.job_ms) / 1000, 1e-9)

    def cpu_ms(self, component: str) -> float:
        return 1000 * self.cpu.get(component, 0.0) / FAMILIES

    @property
    def others_share(self) -> float:
        ours = sum(v for k, v in self.cpu.items() if k != MACHINE)
        return max(0.0, self.cpu.get(MACHINE, 0.0) - ours) / max(self.cpu.get(MACHINE, 0.0), 1e-9)


def passport_histogram() -> dict[tuple[str, str], tuple[float, float]]:
    """(operation, outcome) -> (count, seconds) of `engage_passport_request_seconds`."""
    found: dict[tuple[str, str], list[float]] = {}
    for metric in REQUEST_SECONDS.collect():
        for sample in metric.samples:
            key = (sample.labels["operation"], sample.labels["outcome"])
            if sample.name.endswith("_count"):
                found.setdefault(key, [0.0, 0.0])[0] = sample.value
            elif sample.name.endswith("_sum"):
                found.setdefault(key, [0.0, 0.0])[1] = sample.value
    return {key: (count, seconds) for key, (count, seconds) in found.items()}


def cpu_seconds(double: Child) -> dict[str, float]:
    """CPU seconds so far: this process, the double's tree, every PostgreSQL process."""
    stats = all_stats()
    tree = descendants(double.guard.pid, stats)
    own = process_stat(os.getpid())
    used = {BENCH: own[2] if own else 0.0, DOUBLE: 0.0, POSTGRES: 0.0, MACHINE: machine_busy()}
    for pid, (comm, _, seconds) in stats.items():
        if pid in tree:
            used[DOUBLE] += seconds
        elif comm == "postgres":
            used[POSTGRES] += seconds
    return used


@dataclass
class Bench:
    engine: AsyncEngine
    factory: async_sessionmaker[AsyncSession]
    settings: Settings
    families: list[SeededFamily]
    double: Child
    double_url: str

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.double_url + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return json.loads(raw) if raw else None

    async def reset(self) -> float:
        """Nothing migrated, the double empty; then every family scheduled (timed)."""
        async with self.engine.begin() as conn:
            await conn.execute(update(FamilyAccount).values(passport_family_id=None))
            await conn.execute(
                update(FamilyMember).values(portal_status=PortalStatus.LOCAL, portal_uid=None)
            )
            for model in (FamilyNotification, FamilyMigration, OutboxMessage):
                await conn.execute(delete(model))
        await asyncio.to_thread(self.control, "/_double/reset", {"data": True, "calls": True})
        started = time.perf_counter()
        async with unit_of_work(self.factory) as session:
            now = utcnow()
            for family in self.families:
                scheduled = await migration.schedule(
                    session, family.id, trigger="BULK", cooldown=timedelta(0), now=now
                )
                assert scheduled, family.id
        elapsed = time.perf_counter() - started
        if BACKEND == "postgresql":
            async with self.engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("VACUUM ANALYZE"))
                await autocommit.execute(text("CHECKPOINT"))
        return elapsed

    async def run(self, concurrency: int, *, profile: bool = False) -> MigrationRun:
        run = MigrationRun(concurrency, schedule_seconds=await self.reset())
        run.busy_before = await wait_for_quiet(QUIET_WAIT_SECONDS, QUIET_BUSY_FRACTION)
        queue = deque(str(family.id) for family in self.families)
        outcomes: Counter[str] = Counter()
        db_seconds = 0.0

        @contextlib.asynccontextmanager
        async def units() -> AsyncIterator[AsyncSession]:
            nonlocal db_seconds
            started = time.perf_counter()
            try:
                async with unit_of_work(self.factory) as session:
                    yield session
            finally:
                db_seconds += time.perf_counter() - started

        async with PassportClient.from_settings(self.settings) as passport:

            async def worker() -> None:
                while queue:
                    account_id = queue.popleft()
                    started = time.perf_counter()
                    outcome = await run_migration(units, passport, self.settings, account_id)
                    run.job_ms.append(1000 * (time.perf_counter() - started))
                    outcomes[str(getattr(outcome, "value", outcome))] += 1

            histogram = passport_histogram()
            statements = [0]

            def counted(*_: Any) -> None:
                statements[0] += 1

            event.listen(self.engine.sync_engine, "before_cursor_execute", counted)
            profiler = start_profiler(concurrency) if profile else None
            cpu = cpu_seconds(self.double)
            started = time.perf_counter()
            try:
                await asyncio.gather(*(worker() for _ in range(concurrency)))
            finally:
                run.seconds = time.perf_counter() - started
                after = cpu_seconds(self.double)
                event.remove(self.engine.sync_engine, "before_cursor_execute", counted)
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)
                    await asyncio.to_thread(profiler.wait, 60)
            run.statements = statements[0]
        run.cpu = {name: after[name] - cpu[name] for name in after}
        run.db_seconds = db_seconds
        calls: Counter[str] = Counter()
        for (operation, outcome), (count, seconds) in passport_histogram().items():
            before = histogram.get((operation, outcome), (0.0, 0.0))
            if count - before[0]:
                calls[f"{operation}:{outcome}"] += int(count - before[0])
                previous = run.calls.get(operation, (0, 0.0))
                run.calls[operation] = (
                    previous[0] + int(count - before[0]),
                    previous[1] + seconds - before[1],
                )
        run.passport_seconds = sum(seconds for _, seconds in run.calls.values())
        await self.verify(outcomes, calls)
        return run

    async def verify(self, outcomes: Counter[str], calls: Counter[str]) -> None:
        problems: list[str] = []
        if outcomes != Counter({MigrationState.DONE.value: FAMILIES}):
            problems.append(f"job outcomes {dict(outcomes)}")
        expected = Counter({f"{op}:ok": n * FAMILIES for op, n in EXPECTED_CALLS.items()})
        if calls != expected:
            problems.append(f"passport calls {dict(calls)}, expected {dict(expected)}")
        async with self.factory() as session:
            states = await migration.counts_by_state(session)
            linked = await session.scalar(
                select(func.count(func.distinct(FamilyAccount.passport_family_id)))
            )
            rows = (
                await session.execute(
                    select(
                        FamilyAccount.id,
                        FamilyAccount.passport_family_id,
                        FamilyMember.portal_status,
                        FamilyMember.portal_uid,
                        User.phone,
                    )
                    .join(FamilyMember, FamilyMember.account_id == FamilyAccount.id)
                    .join(User, User.id == FamilyMember.user_id)
                )
            ).all()
            moved = await session.scalar(
                select(func.count())
                .select_from(FamilyNotification)
                .where(FamilyNotification.kind == FamilyNotificationKind.FAMILY_MOVED)
            )
        if states != {MigrationState.DONE: FAMILIES}:
            problems.append(f"migration states {states}")
        if linked != FAMILIES:
            problems.append(f"{linked} distinct passport families linked locally")
        local: dict[str, set[str]] = {}
        for row in rows:
            if row.portal_status is not PortalStatus.LINKED or row.portal_uid != uid_for(row.phone):
                problems.append(f"member {row.phone} is {row.portal_status} as {row.portal_uid}")
                break
            local.setdefault(row.passport_family_id, set()).add(row.portal_uid)
        if moved != FAMILIES * (1 + MEMBERS):
            problems.append(f"{moved} FAMILY_MOVED notices")
        state = await asyncio.to_thread(self.control, "/_double/state")
        remote = {f["family_id"]: f for f in state["families"]}
        if set(remote) != set(local):
            problems.append(f"the double holds {len(remote)} families, {len(local)} linked here")
        admins = {uid_for(family.owner_phone) for family in self.families}
        for family_id, uids in local.items():
            found = remote.get(family_id)
            if found is None or {m["uid"] for m in found["members"]} != uids:
                problems.append(f"passport family {family_id} has other members")
                break
            if found["admin_uid"] not in admins or found["admin_uid"] not in uids:
                problems.append(f"passport family {family_id}'s admin is not its owner")
                break
        if problems:
            raise AssertionError("; ".join(problems))


def start_profiler(concurrency: int) -> subprocess.Popen[bytes] | None:
    """py-spy recording this process (BENCH_MIGRATION_PYSPY), stopped with SIGINT."""
    if not PYSPY_DIR:
        return None
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    out = Path(PYSPY_DIR) / f"migration-c{concurrency}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [py_spy, "record", "--nonblocking", "-r", "97", "-f", "raw", "-o", str(out),
               "-p", str(os.getpid())]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --- set-up -----------------------------------------------------------------------------------


async def wait_double(double: Child, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        if not double.alive():
            raise RuntimeError(f"the double exited:\n{double.output()[-3000:]}")
        if await asyncio.to_thread(_ready, url + "/healthz"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the double is not ready:\n{double.output()[-3000:]}")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def open_bench() -> AsyncIterator[Bench]:
    """A fresh database with the families, the double's process; then cleanup."""
    workdir = Path(tempfile.mkdtemp(prefix="engage-bench-migration-"))
    database = f"engage_bench_{uuid.uuid4().hex[:12]}"
    admin: asyncpg.Connection | None = None
    if BACKEND == "postgresql":
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute(f'CREATE DATABASE "{database}"')
        url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=database)
        dsn = url.render_as_string(hide_password=False)
    elif BACKEND == "sqlite":
        dsn = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    else:
        raise RuntimeError(f"BENCH_MIGRATION_DB is postgresql or sqlite, not {BACKEND!r}")
    port = _free_port()
    double_url = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=dsn,
        passport_url=double_url,
        passport_token=TOKEN,
        family_migration_percent=100,
    )
    engine: AsyncEngine | None = None
    double: Child | None = None
    try:
        await asyncio.to_thread(upgrade, settings, "head")
        engine = create_engine(settings)
        factory = create_session_factory(engine)
        started = time.perf_counter()
        async with factory() as session, session.begin():
            families = await create_families(session, FAMILIES, MEMBERS, limit=None)
        print(f"seeded {FAMILIES} families in {time.perf_counter() - started:.1f}s", flush=True)
        command = [*_engage(), "passport-double", "--host", "127.0.0.1", "--port", str(port),
                   "--token", TOKEN]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": _pythonpath(), "LOG_LEVEL": "WARNING"}
        double = start_child(command, workdir, "double", env)
        await wait_double(double, double_url)
        yield Bench(engine, factory, settings, families, double, double_url)
    finally:
        if double is not None:
            double.stop()
        if engine is not None:
            await engine.dispose()
        if admin is not None:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
        shutil.rmtree(workdir, ignore_errors=True)


# --- report -----------------------------------------------------------------------------------

HEADER = (
    f"{'C':>2} {'fam/s':>6} {'wall s':>6} {'job p50':>7} {'job p99':>7} {'passport':>8}"
    f" {'db':>5} {'rest':>5} {'ms/call':>7} {'stmts':>5} {'sched s':>7} {'busy0':>5}"
    f" {'other':>5}"
    f"  ms CPU/family: {'bench':>5} {'double':>6} {'pg':>5} {'all':>5}"
)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def format_run(run: MigrationRun) -> str:
    rest = 1 - run.share(run.passport_seconds) - run.share(run.db_seconds)
    per_call = 1000 * run.passport_seconds / max(sum(n for n, _ in run.calls.values()), 1)
    return (
        f"{run.concurrency:2d} {run.rate:6.1f} {run.seconds:6.1f}"
        f" {_percentile(run.job_ms, 0.5):7.1f} {_percentile(run.job_ms, 0.99):7.1f}"
        f" {run.share(run.passport_seconds):8.1%} {run.share(run.db_seconds):5.1%} {rest:5.1%}"
        f" {per_call:7.2f} {run.statements / FAMILIES:5.1f} {run.schedule_seconds:7.1f}"
        f" {run.busy_before:5.0%}"
        f" {run.others_share:5.0%}                 {run.cpu_ms(BENCH):5.2f}"
        f" {run.cpu_ms(DOUBLE):6.2f} {run.cpu_ms(POSTGRES):5.2f} {run.cpu_ms(MACHINE):5.2f}"
    )


def report(runs: list[MigrationRun]) -> dict[str, float]:
    figures: dict[str, float] = {}
    print()
    for concurrency in CONCURRENCY:
        chosen = [run for run in runs if run.concurrency == concurrency]
        rate = statistics.median(run.rate for run in chosen)
        passport = statistics.median(run.share(run.passport_seconds) for run in chosen)
        db = statistics.median(run.share(run.db_seconds) for run in chosen)
        calls = {
            op: 1000 * statistics.median(r.calls[op][1] / r.calls[op][0] for r in chosen)
            for op in EXPECTED_CALLS
        }
        print(
            f"concurrency {concurrency}: {rate:.1f} families/s; of the jobs' time passport"
            f" {passport:.1%}, database {db:.1%}, the rest {1 - passport - db:.1%}; ms per"
            " call: " + ", ".join(f"{op} {ms:.2f}" for op, ms in calls.items())
        )
        figures |= {f"c{concurrency}_families_per_s": rate, f"c{concurrency}_passport": passport}
    if any(run.others_share > NOISY_SHARE for run in runs):
        print(f"WARNING: run(s) shared the machine (more than {NOISY_SHARE:.0%} not ours)")
    return figures


# --- main -------------------------------------------------------------------------------------


async def amain() -> dict[str, float]:
    async with open_bench() as bench:
        tune(bench.settings)  # as `engage worker` does (app/interpreter.py)
        freeze_startup_heap(bench.settings)
        print(f"machine: {machine_notes()}")
        print(
            f"{BACKEND}; {FAMILIES} families of 1 + {MEMBERS}; the double: engage"
            f" passport-double at {bench.double_url}; concurrency {CONCURRENCY}, {ROUNDS}"
            " runs each, ABBA; unpinned",
            flush=True,
        )
        print(HEADER, flush=True)
        runs: list[MigrationRun] = []
        for round_ in range(ROUNDS):
            for concurrency in CONCURRENCY if round_ % 2 == 0 else CONCURRENCY[::-1]:
                first = not any(run.concurrency == concurrency for run in runs)
                runs.append(await bench.run(concurrency, profile=first))
                print(format_run(runs[-1]), flush=True)
        return report(runs)


def main() -> None:
    run_until_done(amain)


if __name__ == "__main__":
    main()
