"""Corporate events through the notifier (issue 14): `corpEventPublish`'s service → the
outbox → `notifier.handle_event` in a real worker → the rules → the email queue, against
the outbox bench's direct baseline (a row, commit, `actor.send` of `system.ping`), on the
same worker, database and Redis, in the same run.

- events: PRODUCERS asyncio tasks in this process each publish CLIENT_CREATED_BY_OFFER events
  (`app.services.notifier.publishing.publish` in a transaction — the insert that finds the
  client, the client's state, the outbox row — then the relay), for CLIENTS prepaid clients;
  the worker claims each event and schedules the three onboarding reminders (days 1 / 3 / 7
  at 10:00 local) with the shipped catalog. Done when every event has `handled_at`.
- direct: `bench.bench_outbox`'s direct path (the floor of "a job a commit implies").

Each events run must end with every event handled once, 3 emails per event, every outbox
row sent and no job failure. Rates are end to end (first commit → last handled); CPU per
event from /proc as in bench_outbox. Runs alternate after a warm-up of each path.

    .venv/bin/python -m bench.bench_notifier_events   # about 2 minutes

Knobs: BENCH_EVENTS_MESSAGES (3000 per run), BENCH_EVENTS_ROUNDS (2), and bench_outbox's
(BENCH_OUTBOX_PRODUCERS, BENCH_OUTBOX_THREADS, BENCH_PG_URL, BENCH_OUTBOX_REDIS_URL).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from itertools import count

from app.services.notifier import publishing
from app.services.notifier.catalog import load_catalog
from app.uow import unit_of_work
from bench._proc import machine_notes, run_until_done, wait_for_quiet
from bench.bench_outbox import (
    DIRECT,
    MACHINE,
    PRODUCERS,
    QUIET_BUSY_FRACTION,
    QUIET_WAIT_SECONDS,
    WORKER,
    Bench,
    Run,
    cpu_snapshot,
    cpu_used,
    open_bench,
    wait_until_ready,
)

MESSAGES = int(os.environ.get("BENCH_EVENTS_MESSAGES", "3000"))
ROUNDS = int(os.environ.get("BENCH_EVENTS_ROUNDS", "2"))
CLIENTS = 500
EVENTS = "events"
SEED_CLIENTS = """
INSERT INTO corp_clients (id, external_id, name, emails, contract_type, balance_minor,
  currency, low_balance_threshold_minor, locale, timezone, created_at, updated_at)
SELECT gen_random_uuid(), 'bench-' || n, 'Bench client ' || n,
  jsonb_build_array('finance-' || n || '@bench.example.com'), 'PREPAID', 1000000, 'RUB',
  500000, 'ru', 'Europe/Moscow', now(), now()
FROM generate_series(0, $1 - 1) AS n
ON CONFLICT DO NOTHING
"""
_keys = count()


async def reset(bench: Bench) -> None:
    await bench.db.execute("TRUNCATE corp_events CASCADE")
    await bench.reset()


async def produce(bench: Bench, messages: int) -> tuple[float, float]:
    indexes = iter(range(messages))
    first_commit: list[float] = []

    async def producer() -> None:
        for index in indexes:
            async with bench.factory() as session:
                async with session.begin():
                    await publishing.publish(
                        session,
                        type_name="CLIENT_CREATED_BY_OFFER",
                        client_id=f"bench-{index % CLIENTS}",
                        payload={"contractType": "PREPAID"},
                        idempotency_key=f"bench-{next(_keys)}",
                        publisher="bench",
                    )
                if not first_commit:
                    first_commit.append(time.time())
            await bench.relay.relay_committed(session)

    await asyncio.gather(*(producer() for _ in range(PRODUCERS)))
    return first_commit[0], time.time()


async def wait_handled(bench: Bench, messages: int, limit_seconds: float) -> None:
    deadline = time.monotonic() + limit_seconds
    while True:
        done = await bench.db.fetchval(
            "SELECT count(*) FROM corp_events WHERE handled_at IS NOT NULL"
        )
        if done >= messages:
            return
        if not bench.worker.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{done}/{messages} events handled:\n{bench.worker.tail()}")
        await asyncio.sleep(0.05)


async def verify(bench: Bench, messages: int) -> None:
    await bench.relay.flush()
    events, handled = await bench.db.fetchrow("SELECT count(*), count(handled_at) FROM corp_events")
    emails = await bench.db.fetchval("SELECT count(*) FROM email_queue")
    failed = await bench.db.fetchval("SELECT count(*) FROM job_failures")
    rows, sent = await bench.db.fetchrow("SELECT count(*), count(sent_at) FROM outbox_messages")
    problems = [
        f"{events} events, {handled} handled, expected {messages}"
        if (events, handled) != (messages, messages)
        else "",
        f"{emails} emails, expected {3 * messages}" if emails != 3 * messages else "",
        f"{failed} job failures" if failed else "",
        f"{rows - sent} outbox rows not sent" if rows != sent or rows != messages else "",
    ]
    if any(problems):
        raise AssertionError("events: " + "; ".join(filter(None, problems)))


async def run_events(bench: Bench, messages: int, kind: str = "") -> Run:
    await reset(bench)
    result = Run(
        EVENTS,
        messages,
        kind,
        busy_before=await wait_for_quiet(QUIET_WAIT_SECONDS, QUIET_BUSY_FRACTION),
    )
    before = cpu_snapshot(bench.worker.guard.pid, bench.database)
    waiter = asyncio.create_task(wait_handled(bench, messages, 60 + messages / 20))
    try:
        first_commit, produced = await produce(bench, messages)
        await waiter
    finally:
        waiter.cancel()
    after = cpu_snapshot(bench.worker.guard.pid, bench.database)
    await verify(bench, messages)
    last, p50, p99 = await bench.db.fetchrow(
        "SELECT extract(epoch FROM max(handled_at))::float8,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY handled_at - created_at),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY handled_at - created_at)"
        " FROM corp_events"
    )
    result.produce_seconds = produced - first_commit
    result.total_seconds = last - first_commit
    result.latency_p50_ms = p50.total_seconds() * 1000
    result.latency_p99_ms = p99.total_seconds() * 1000
    result.cpu = cpu_used(before, after)
    return result


def _line(run: Run) -> str:
    return (
        f"{run.path:<7}{run.kind:>8} {run.messages:6d} {run.produce_rate:9.0f} {run.rate:7.0f}"
        f" {run.latency_p50_ms:7.0f} {run.latency_p99_ms:7.0f}"
        f"  CPU ms/msg: producer {run.cpu_ms_per_message('producer'):.2f},"
        f" worker {run.cpu_ms_per_message(WORKER):.2f},"
        f" postgres {run.cpu_ms_per_message('postgres'):.2f},"
        f" machine {run.cpu_ms_per_message(MACHINE):.2f}"
    )


async def amain() -> None:
    async with open_bench() as bench:
        print(f"machine: {machine_notes()}")
        async with unit_of_work(bench.factory) as session:
            await load_catalog(session)
        await bench.db.execute(SEED_CLIENTS, CLIENTS)
        print(f"worker ready after {await wait_until_ready(bench):.1f}s")
        columns = ("msgs", "commit/s", "e2e/s", "p50 ms", "p99 ms")
        print(f"{'path':<15} " + " ".join(f"{c:>7}" for c in columns))
        runs: list[Run] = []

        async def run(path: str, messages: int, kind: str = "") -> None:
            if path == EVENTS:
                runs.append(await run_events(bench, messages, kind))
            else:
                await bench.db.execute("TRUNCATE corp_events CASCADE")
                runs.append(await bench.run(path, messages, kind))
            print(_line(runs[-1]), flush=True)

        for path in (DIRECT, EVENTS):
            await run(path, max(500, MESSAGES // 3), "warm-up")
        for round_ in range(ROUNDS):
            for path in (DIRECT, EVENTS) if round_ % 2 == 0 else (EVENTS, DIRECT):
                await run(path, MESSAGES)
        measured = [r for r in runs if r.kind == ""]
        direct = statistics.median(r.rate for r in measured if r.path == DIRECT)
        events = statistics.median(r.rate for r in measured if r.path == EVENTS)
        print(
            f"\nmedian end to end: direct {direct:.0f}/s, events {events:.0f}/s "
            f"(3 emails queued per event), ratio {events / direct:.2f}"
        )


def main() -> None:
    run_until_done(amain)


if __name__ == "__main__":
    main()
