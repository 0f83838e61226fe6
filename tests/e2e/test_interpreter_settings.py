"""`engage serve` runs with the server's interpreter settings (app/interpreter.py): the
start-up heap frozen out of the cyclic GC, and its thresholds, visible in /metrics."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.conftest import LiveServerFactory

pytestmark = pytest.mark.e2e


def _metric(body: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", body, re.MULTILINE)
    assert found is not None, f"{name} missing from /metrics"
    return float(found.group(1))


def test_the_server_freezes_its_start_up_heap(live_server_factory: LiveServerFactory) -> None:
    body = httpx.get(f"{live_server_factory(None)}/metrics", timeout=10).text
    assert _metric(body, "engage_gc_frozen_objects") > 10_000  # modules, schema, mappers


def test_gc_freeze_can_be_turned_off(live_server_factory: LiveServerFactory) -> None:
    body = httpx.get(f"{live_server_factory({'GC_FREEZE': 'false'})}/metrics", timeout=10).text
    assert _metric(body, "engage_gc_frozen_objects") == 0
