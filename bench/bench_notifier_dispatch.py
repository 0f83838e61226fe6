"""The notifier's dispatcher (issue 14): emails delivered per second to a local SMTP sink,
against the same messages sent straight with aiosmtplib over one connection, in the same run.

- sink: aiosmtpd's own Sink handler (`python -m aiosmtpd -n -c aiosmtpd.handlers.Sink`) in
  its own process, pinned to core 1; it accepts and drops every message.
- subject: this process, pinned to core 0, runs `jobs.notifier.dispatch_all` (what the
  `notifier.dispatch_due` actor runs) over EMAILS due rows on PostgreSQL: per batch the claim
  (`FOR UPDATE SKIP LOCKED`), the send-time checks, rendering with the current template,
  one SMTP connection for the batch, and the recorded outcomes and attempts.
- baseline: the same process sends the same EMAILS messages (rendered and built into
  `EmailMessage`s before the clock starts) with `aiosmtplib.SMTP.send_message` over one
  connection: the floor for "deliver these emails", with no queue, no checks, no rendering.

Seed: CLIENTS clients and EMAILS rows of ActivateClientNotice scheduled by the shipped
`activate-client` rule, due now. Before each subject run every row goes back to SCHEDULED
and its attempts are deleted; runs alternate (ROUNDS each) after the machine is quiet. Each
subject run must end with EMAILS rows SENT and EMAILS messages at the sink. CPU per email
from /proc: this process, the sink, PostgreSQL.

    .venv/bin/python -m bench.bench_notifier_dispatch   # about a minute

Knobs: BENCH_NOTIFIER_EMAILS (10000), BENCH_NOTIFIER_BATCH (100), BENCH_NOTIFIER_ROUNDS (2),
BENCH_PG_URL (postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import aiosmtplib
import asyncpg
from sqlalchemy.engine import make_url

from app.db import SessionFactory, create_engine, create_session_factory
from app.integrations.mail import SmtpBackend, build_message
from app.migrate import upgrade
from app.models.base import utcnow
from app.services.notifier import dispatch
from app.services.notifier.catalog import load_catalog
from app.settings import Settings
from app.uow import unit_of_work
from bench._proc import all_stats, machine_notes, run_until_done, wait_for_quiet
from jobs.notifier import dispatch_all

EMAILS = int(os.environ.get("BENCH_NOTIFIER_EMAILS", "10000"))
BATCH = int(os.environ.get("BENCH_NOTIFIER_BATCH", "100"))
ROUNDS = int(os.environ.get("BENCH_NOTIFIER_ROUNDS", "2"))
CLIENTS = 200
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SUBJECT_CORE, SINK_CORE = 0, "1"
TARGET_RATIO = 0.7

SEED_SQL = """
WITH clients AS (
  INSERT INTO corp_clients (id, external_id, name, emails, contract_type, balance_minor,
    currency, low_balance_threshold_minor, locale, timezone, created_at, updated_at)
  SELECT gen_random_uuid(), 'bench-' || n, 'Bench client ' || n,
    jsonb_build_array('finance-' || n || '@bench.example.com'), 'PREPAID', 1000000, 'RUB',
    500000, CASE WHEN n % 2 = 0 THEN 'ru' ELSE 'en' END, 'Europe/Moscow', now(), now()
  FROM generate_series(1, $1) AS n
  RETURNING id
), numbered AS (
  SELECT id, row_number() OVER () AS n FROM clients
)
INSERT INTO email_queue (id, event_id, client_id, notice, rule_version_id, rule_key, origin,
  recipients, locale, send_at, due_at, status, attempts, reason, created_at, updated_at)
SELECT gen_random_uuid(), NULL, c.id, 'ActivateClientNotice', $3, 'activate-client', 'EVENT',
  jsonb_build_array('finance-' || c.n || '@bench.example.com'),
  CASE WHEN c.n % 2 = 0 THEN 'ru' ELSE 'en' END,
  now() - make_interval(secs => g), now() - make_interval(secs => g), 'SCHEDULED', 0, '',
  now(), now()
FROM generate_series(1, $2) AS g JOIN numbered c ON c.n = 1 + (g % $1)
"""
RESET_SQL = (
    "TRUNCATE email_delivery_attempts",
    "UPDATE email_queue SET status = 'SCHEDULED', attempts = 0, sent_at = NULL,"
    " claim_token = NULL, lease_until = NULL, subject = NULL, template_version = NULL,"
    " last_error = NULL",
    "VACUUM ANALYZE email_queue",
    "CHECKPOINT",
)


@dataclass
class Bench:
    settings: Settings
    factory: SessionFactory
    db: asyncpg.Connection
    sink_port: int
    sink: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_listening(port: int) -> None:
    for _ in range(100):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the SMTP sink did not start")


@contextlib.asynccontextmanager
async def open_bench() -> AsyncIterator[Bench]:
    database = f"engage_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=database)
    settings = Settings(database_url=url.render_as_string(hide_password=False))
    port = _free_port()
    sink = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is timed
        ["taskset", "-c", SINK_CORE, sys.executable, "-m", "aiosmtpd", "-n",
         "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    engine = create_engine(settings)
    db: asyncpg.Connection | None = None
    try:
        await asyncio.to_thread(upgrade, settings)
        plain = make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)
        db = await asyncpg.connect(plain)
        await _wait_listening(port)
        yield Bench(settings, create_session_factory(engine), db, port, sink)
    finally:
        sink.terminate()
        sink.wait()
        if db is not None:
            await db.close()
        await engine.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


async def seed(bench: Bench) -> None:
    async with unit_of_work(bench.factory) as session:
        await load_catalog(session)
    version = await bench.db.fetchval(
        "SELECT v.id FROM notifier_rule_versions v JOIN notifier_rules r ON r.id = v.rule_id"
        " WHERE r.key = 'activate-client' AND v.version = r.current_version"
    )
    await bench.db.execute(SEED_SQL, CLIENTS, EMAILS, version)


async def reset(bench: Bench) -> None:
    for statement in RESET_SQL:
        await bench.db.execute(statement)


def _config(bench: Bench) -> dispatch.DispatchConfig:
    return dispatch.DispatchConfig(
        batch_size=BATCH,
        max_attempts=5,
        retry_base=timedelta(seconds=60),
        retry_max=timedelta(seconds=3600),
        lease=timedelta(seconds=300),
        sender=bench.settings.mail_from,
        cabinet_url=bench.settings.notifier_cabinet_url,
    )


async def _messages(bench: Bench) -> list[Any]:
    """The EMAILS messages the dispatcher would send, rendered and built beforehand."""
    async with unit_of_work(bench.factory) as session:
        batch = await dispatch.claim(
            session,
            replace(_config(bench), batch_size=EMAILS),
            now=utcnow(),
        )
    await reset(bench)
    return [build_message(item.message) for item in batch.ready]


def _cpu(pids: dict[str, set[int]]) -> dict[str, float]:
    stats = all_stats()
    totals = dict.fromkeys(pids, 0.0)
    for pid, (comm, _ppid, seconds) in stats.items():
        for name, members in pids.items():
            if pid in members or (name == "postgres" and comm == "postgres"):
                totals[name] += seconds
    return totals


async def run_subject(bench: Bench) -> dict[str, float]:
    await reset(bench)
    await wait_for_quiet(60, 0.1)
    backend = SmtpBackend("127.0.0.1", bench.sink_port, timeout=30)
    pids = {"engage": {os.getpid()}, "sink": {bench.sink.pid}, "postgres": set()}
    before = _cpu(pids)
    started = time.monotonic()
    totals = await dispatch_all(
        lambda: unit_of_work(bench.factory), backend, _config(bench), budget_seconds=3600
    )
    elapsed = time.monotonic() - started
    after = _cpu(pids)
    sent = await bench.db.fetchval("SELECT count(*) FROM email_queue WHERE status = 'SENT'")
    assert totals.sent == EMAILS and sent == EMAILS, (totals, sent)
    cpu = {k: (after[k] - before[k]) / EMAILS * 1e6 for k in pids}
    return {"rate": EMAILS / elapsed, **cpu}


async def run_baseline(bench: Bench, messages: list[Any]) -> dict[str, float]:
    await wait_for_quiet(60, 0.1)
    pids = {"engage": {os.getpid()}, "sink": {bench.sink.pid}, "postgres": set()}
    before = _cpu(pids)
    started = time.monotonic()
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=bench.sink_port, timeout=30)
    await smtp.connect()
    for message in messages:
        await smtp.send_message(message)
    await smtp.quit()
    elapsed = time.monotonic() - started
    after = _cpu(pids)
    cpu = {k: (after[k] - before[k]) / EMAILS * 1e6 for k in pids}
    return {"rate": len(messages) / elapsed, **cpu}


def _line(name: str, runs: list[dict[str, float]]) -> str:
    rate = statistics.median(r["rate"] for r in runs)
    cpu = {k: statistics.median(r[k] for r in runs) for k in ("engage", "sink", "postgres")}
    rates = ", ".join(f"{r['rate']:.0f}" for r in runs)
    return (
        f"{name:9} {rate:8.0f} emails/s (runs: {rates}); CPU µs/email: this process "
        f"{cpu['engage']:.0f}, sink {cpu['sink']:.0f}, postgres {cpu['postgres']:.0f}"
    )


async def amain() -> None:
    os.sched_setaffinity(0, {SUBJECT_CORE})
    async with open_bench() as bench:
        print(f"machine: {machine_notes()}")
        print(f"{EMAILS} due emails over {CLIENTS} clients, batches of {BATCH}, {ROUNDS} rounds")
        await seed(bench)
        messages = await _messages(bench)
        assert len(messages) == EMAILS
        subject: list[dict[str, float]] = []
        baseline: list[dict[str, float]] = []
        for _ in range(ROUNDS):
            subject.append(await run_subject(bench))
            baseline.append(await run_baseline(bench, messages))
        print(_line("dispatch", subject))
        print(_line("aiosmtplib", baseline))
        ratio = statistics.median(s["rate"] for s in subject) / statistics.median(
            b["rate"] for b in baseline
        )
        verdict = "met" if ratio >= TARGET_RATIO else "missed"
        print(f"ratio dispatch / aiosmtplib: {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")


def main() -> None:
    run_until_done(amain)


if __name__ == "__main__":
    main()
