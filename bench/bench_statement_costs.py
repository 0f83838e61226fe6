"""Client CPU per statement, side by side on the same rows: the ways engage can send one
SELECT of a user by id (the principal's lookup) inside a unit of work.

- `orm get`: `session.get(User, id)` with the identity map emptied (the whole row, ORM);
- `core`: `session.execute(<prebuilt Core select>)` (four columns);
- `lean`: `app.lean.HotStatement` of the same select (prebuilt, raw asyncpg, the session's
  connection and transaction);
- `asyncpg`: `fetchrow` straight on the asyncpg connection (the floor).

    .venv/bin/python -m bench.bench_statement_costs   (about 30 s)

A fresh database engage_bench_<hex> (dropped at the end); BENCH_PG_URL
(postgresql://postgres@127.0.0.1:5432/postgres), BENCH_STATEMENTS (3000 per round), rounds
alternate the subjects. CPU is the process's (time.process_time), so PostgreSQL's own work
is apart; wall time is shown for reference.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import create_engine, create_session_factory
from app.lean import HotStatement
from app.migrate import upgrade
from app.models.base import utcnow
from app.models.identity import User
from app.settings import Settings

PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STATEMENTS = int(os.environ.get("BENCH_STATEMENTS", "3000"))
ROUNDS = 3
USERS = 50
COLUMNS = (User.id, User.status, User.roles, User.locale)
CORE = select(*COLUMNS).where(User.id == bindparam("user_id"))
LEAN = HotStatement(CORE)
RAW = "SELECT id, status, roles, locale FROM users WHERE id = $1"

Subject = Callable[[AsyncSession, uuid.UUID], Awaitable[Any]]


async def _orm_get(session: AsyncSession, user_id: uuid.UUID) -> Any:
    session.expunge_all()
    return await session.get(User, user_id)


async def _core(session: AsyncSession, user_id: uuid.UUID) -> Any:
    return (await session.execute(CORE, {"user_id": user_id})).one()


async def _lean(session: AsyncSession, user_id: uuid.UUID) -> Any:
    return await LEAN.one_or_none(session, user_id=user_id)


async def _asyncpg(session: AsyncSession, user_id: uuid.UUID) -> Any:
    connection = await (await session.connection()).get_raw_connection()
    return await connection.driver_connection.fetchrow(RAW, user_id)  # type: ignore[union-attr]


SUBJECTS: dict[str, Subject] = {
    "orm get": _orm_get,
    "core": _core,
    "lean": _lean,
    "asyncpg": _asyncpg,
}


async def _measure(factory: Any, subject: Subject, ids: list[uuid.UUID]) -> tuple[float, float]:
    async with factory() as session:
        for n in range(200):  # warm-up: prepared statements, caches
            await subject(session, ids[n % len(ids)])
        cpu, wall = time.process_time(), time.perf_counter()
        for n in range(STATEMENTS):
            await subject(session, ids[n % len(ids)])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await session.rollback()
    return cpu / STATEMENTS * 1e6, wall / STATEMENTS * 1e6


async def _run() -> None:
    database = f"engage_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=database)
    settings = Settings(database_url=url.render_as_string(hide_password=False))
    try:
        await asyncio.to_thread(upgrade, settings, "head")
        engine = create_engine(settings)
        factory = create_session_factory(engine)
        ids = [uuid.uuid4() for _ in range(USERS)]
        async with engine.begin() as connection:
            await connection.execute(
                insert(User),
                [
                    {"id": i, "email": f"{i.hex}@bench.test", "roles": ["USER"],
                     "created_at": utcnow(), "updated_at": utcnow()}
                    for i in ids
                ],
            )  # fmt: skip
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in SUBJECTS}
        order = list(SUBJECTS)
        for round_ in range(ROUNDS):
            for name in order if round_ % 2 == 0 else reversed(order):
                results[name].append(await _measure(factory, SUBJECTS[name], ids))
        await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    print(f"{STATEMENTS} statements x {ROUNDS} rounds, one session, medians (client process):")
    floor = statistics.median(cpu for cpu, _ in results["asyncpg"])
    for name, runs in results.items():
        cpu = statistics.median(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        print(f"  {name:8s} cpu {cpu:6.1f} µs  wall {wall:6.1f} µs  ({cpu / floor:4.1f}x asyncpg)")


def main() -> None:
    asyncio.run(_run())


if __name__ == "__main__":
    main()
