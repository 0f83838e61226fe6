"""The periodic scheduler: enqueues actors on cron schedules through the outbox.

Cron expressions are parsed by APScheduler's `CronTrigger`. Each tick is enqueued with the
dedupe key `schedule:<actor>:<fire time>`, so a tick is enqueued at most once however many
schedulers are running; a leader lock in Redis additionally keeps all but one of them idle.
Ticks missed while no scheduler ran are coalesced into one.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from apscheduler.triggers.cron import CronTrigger
from redis.asyncio import Redis

from app import outbox
from app.db import SessionFactory
from app.metrics import SCHEDULER_TICKS
from app.models.base import utcnow
from app.outbox import OutboxRelay
from app.settings import Settings
from app.uow import unit_of_work

log = structlog.get_logger("engage.scheduler")

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class Schedule:
    actor: str
    cron: str
    trigger: CronTrigger

    def next_fire_after(self, moment: datetime) -> datetime:
        fire = self.trigger.get_next_fire_time(None, moment + timedelta(microseconds=1))
        if fire is None:  # a cron trigger without an end date always has a next time
            raise ValueError(f"schedule {self.actor!r} never fires again")
        return fire.astimezone(UTC)


def cron_trigger(expression: str) -> CronTrigger:
    """Five crontab fields, or six with seconds first (e.g. `*/10 * * * * *`)."""
    fields = expression.split()
    if len(fields) == 5:
        return CronTrigger.from_crontab(expression, timezone=UTC)
    if len(fields) == 6:
        second, minute, hour, day, month, day_of_week = fields
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone=UTC,
        )
    raise ValueError(f"cron expression {expression!r} needs 5 or 6 fields")


def parse_schedules(mapping: Mapping[str, str]) -> list[Schedule]:
    schedules = []
    for actor_name, expression in mapping.items():
        if actor_name not in outbox.KNOWN_ACTORS:
            raise ValueError(f"schedule names unknown actor {actor_name!r}")
        schedules.append(Schedule(actor_name, expression, cron_trigger(expression)))
    return schedules


class RedisLeaderLock:
    """One holder at a time; the holder renews before the TTL runs out."""

    def __init__(self, redis: Redis, ttl_seconds: int, key: str = "engage:scheduler:leader"):
        self.redis = redis
        self.key = key
        self.ttl_ms = ttl_seconds * 1000
        self.token = secrets.token_hex(16)

    async def hold(self) -> bool:
        if await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return True
        renewed = await self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms)
        return bool(renewed)

    async def release(self) -> None:
        await self.redis.eval(_RELEASE, 1, self.key, self.token)


class Scheduler:
    def __init__(
        self,
        schedules: list[Schedule],
        session_factory: SessionFactory,
        relay: OutboxRelay,
        *,
        lock: RedisLeaderLock | None = None,
        lock_renew_seconds: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.schedules = schedules
        self.session_factory = session_factory
        self.relay = relay
        self.lock = lock
        self.lock_renew_seconds = lock_renew_seconds
        self.clock = clock
        started = clock()
        self.next_fire = {s.actor: s.next_fire_after(started) for s in schedules}

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        session_factory: SessionFactory,
        relay: OutboxRelay,
        redis: Redis | None,
    ) -> Scheduler:
        """The configured schedules; with Redis, a leader lock so one scheduler is active."""
        ttl = settings.scheduler_lock_ttl_seconds
        return cls(
            parse_schedules(settings.schedules),
            session_factory,
            relay,
            lock=RedisLeaderLock(redis, ttl) if redis is not None else None,
            lock_renew_seconds=ttl / 3,
        )

    async def tick(self, now: datetime, *, leader: bool = True) -> list[str]:
        """Enqueue every schedule due at `now`; returns the dedupe keys this call enqueued."""
        enqueued: list[str] = []
        for schedule in self.schedules:
            fire = self.next_fire[schedule.actor]
            if fire > now:
                continue
            self.next_fire[schedule.actor] = schedule.next_fire_after(now)
            if leader and await self._enqueue_tick(schedule, fire):
                enqueued.append(f"schedule:{schedule.actor}:{fire.isoformat()}")
        return enqueued

    async def _enqueue_tick(self, schedule: Schedule, fire: datetime) -> bool:
        key = f"schedule:{schedule.actor}:{fire.isoformat()}"
        async with unit_of_work(self.session_factory, self.relay) as session:
            message_id = await outbox.enqueue_unique(session, schedule.actor, dedupe_key=key)
        if message_id is None:
            return False
        SCHEDULER_TICKS.labels(schedule.actor).inc()
        log.info("scheduler.tick", actor=schedule.actor, fire_time=fire.isoformat())
        return True

    async def run(self, stop: asyncio.Event) -> None:
        log.info("scheduler.start", schedules={s.actor: s.cron for s in self.schedules})
        try:
            while not stop.is_set():
                try:
                    leader = self.lock is None or await self.lock.hold()
                    await self.tick(self.clock(), leader=leader)
                except Exception:
                    log.exception("scheduler.tick_failed")
                await self._sleep(stop)
        finally:
            if self.lock is not None:
                try:
                    await self.lock.release()
                except Exception:  # noqa: BLE001 - the lock expires on its own
                    log.warning("scheduler.lock_release_failed")
            log.info("scheduler.stop")

    async def _sleep(self, stop: asyncio.Event) -> None:
        if not self.next_fire:
            delay = self.lock_renew_seconds
        else:
            until_next = (min(self.next_fire.values()) - self.clock()).total_seconds()
            delay = max(0.0, min(until_next, self.lock_renew_seconds))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
