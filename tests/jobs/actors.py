"""Actors that exist only for the job-system tests; their effect is an audit_log row."""

from __future__ import annotations

import threading
import time

import structlog

from app.models.identity import AuditLog
from jobs.broker import actor
from jobs.runtime import claim, unit_of_work

EFFECT_ACTION = "test.effect"

_lock = threading.Lock()
attempts: dict[str, list[float]] = {}
healed: set[str] = set()


def _attempt(key: str) -> int:
    with _lock:
        attempts.setdefault(key, []).append(time.monotonic())
        return len(attempts[key])


async def _apply_effect(key: str) -> None:
    async with unit_of_work() as session:
        if not await claim(session):
            return
        session.add(AuditLog(actor="test", action=EFFECT_ACTION, target=key))


@actor("test.flaky", max_retries=5)
async def flaky(key: str, failures: int) -> None:
    """Fails its first `failures` runs, then applies the effect."""
    if _attempt(key) <= failures:
        raise RuntimeError(f"planned failure of {key}")
    await _apply_effect(key)


@actor("test.broken", max_retries=1)
async def broken(key: str) -> None:
    """Fails until the test heals it."""
    _attempt(key)
    if key not in healed:
        raise ValueError(f"{key} is broken on purpose")
    await _apply_effect(key)


contexts: dict[str, dict[str, object]] = {}


@actor("test.context", max_retries=0)
async def log_context(key: str) -> None:
    """Records what every log line written now would carry (structlog's contextvars)."""
    contexts[key] = dict(structlog.contextvars.get_contextvars())
