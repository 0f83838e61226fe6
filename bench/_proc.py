"""Shared by the benchmarks: CPU accounting from /proc, machine notes, running a bench."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")

ProcessStats = dict[int, tuple[str, int, float]]


def process_stat(pid: int) -> tuple[str, int, float] | None:
    """(comm, ppid, cpu seconds) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    return comm, int(rest[1]), (int(rest[11]) + int(rest[12])) / CLK_TCK


def all_stats() -> ProcessStats:
    stats: ProcessStats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := process_stat(int(entry))) is not None:
            stats[int(entry)] = stat
    return stats


def descendants(root: int, stats: ProcessStats) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found.add(pid)
        pending.extend(children.get(pid, []))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (user nice system irq softirq steal)."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    return (sum(fields[:3]) + sum(fields[5:8])) / CLK_TCK


async def wait_for_quiet(limit_seconds: float, quiet_fraction: float) -> float:
    """Wait until the machine is nearly idle (other suites may share it); returns the busy
    fraction of the last second sampled. Gives up waiting after `limit_seconds`."""
    deadline = time.monotonic() + limit_seconds
    cores = os.cpu_count() or 1
    while True:
        start = machine_busy()
        await asyncio.sleep(1.0)
        busy = (machine_busy() - start) / cores
        if busy <= quiet_fraction or time.monotonic() > deadline:
            return busy


def machine_notes(*extra: str) -> str:
    """When and where a figure was measured, for the report."""
    cpu_model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    parts = [
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({cpu_model})",
        f"Python {platform.python_version()}",
        *(extra or (f"{platform.system()} {platform.release()}",)),
    ]
    return ", ".join(parts)


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_until_done(main: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Run a bench; `kill <bench>` still cleans up (children, database): SIGTERM exits."""
    previous = signal.signal(signal.SIGTERM, _raise_exit)
    try:
        asyncio.run(main())
    finally:
        signal.signal(signal.SIGTERM, previous)
