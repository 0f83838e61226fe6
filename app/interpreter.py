"""Interpreter settings for the long-running processes: `engage serve` and `engage worker`.

A request allocates thousands of short-lived objects (GraphQL AST, SQLAlchemy rows, dicts);
with Python's default thresholds (700, 10, 10) the cyclic GC runs generation-0 collections
constantly and, more costly, full collections that traverse the whole start-up heap (every
module, the schema, the ORM mappers) again and again: measured at 26-27 % of server CPU on
the goals read path (docs/benchmarks.md). So, once a process is ready:

- `gc.freeze()` moves everything alive at that moment to the permanent generation, which no
  collection traverses (GC_FREEZE);
- `gc.set_threshold(*GC_THRESHOLDS)` makes young collections rarer, so fewer survivors of
  a request still in flight are promoted, and full collections rarer still.

Reference cycles are still collected, only less often. `engage_gc_pause_seconds` (by
generation) shows the pauses, so a threshold that makes them too long is seen in production.
Tests never call this: freezing a test process's heap would keep every app it builds alive.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import structlog

from app.metrics import GC_FROZEN_OBJECTS, GC_PAUSE
from app.settings import Settings

log = structlog.get_logger("engage.interpreter")

_started: list[float] = []


def _observe_pause(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
    elif _started:
        GC_PAUSE.labels(str(info.get("generation", "?"))).observe(
            time.perf_counter() - _started.pop()
        )


def tune(settings: Settings) -> None:
    """Set the thresholds and observe GC pauses; call early in a server process."""
    if settings.gc_thresholds:
        gc.set_threshold(*settings.gc_thresholds)
    if _observe_pause not in gc.callbacks:
        gc.callbacks.append(_observe_pause)


def freeze_startup_heap(settings: Settings) -> None:
    """Call once the process is ready to serve: what is alive now lives for the process."""
    if not settings.gc_freeze:
        return
    gc.collect()
    gc.freeze()
    GC_FROZEN_OBJECTS.set(gc.get_freeze_count())
    log.info("interpreter.gc_frozen", objects=gc.get_freeze_count(), thresholds=gc.get_threshold())
