"""Interpreter settings (app/interpreter.py), applied in a fresh interpreter each time: a
frozen heap would outlive the test otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from app.settings import Settings

PROBE = """
import gc, json
from app import interpreter
from app.metrics import GC_PAUSE
from app.settings import Settings
settings = Settings()
interpreter.tune(settings)
interpreter.freeze_startup_heap(settings)
gc.collect()
pauses = sum(
    sample.value
    for metric in GC_PAUSE.collect()
    for sample in metric.samples
    if sample.name.endswith("_count")
)
print(json.dumps({"thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                  "pauses": pauses}))
"""


def _probe(**env: str) -> dict[str, object]:
    environment = {**os.environ, **env}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_defaults_freeze_the_heap_set_thresholds_and_observe_pauses() -> None:
    result = _probe()
    assert result["thresholds"] == [50_000, 20, 100]
    assert isinstance(result["frozen"], int) and result["frozen"] > 1_000
    assert isinstance(result["pauses"], float) and result["pauses"] >= 1  # the gc.collect()


def test_settings_override_and_turn_both_off() -> None:
    assert _probe(GC_THRESHOLDS="1000,5,5")["thresholds"] == [1000, 5, 5]
    kept = _probe(GC_THRESHOLDS="", GC_FREEZE="false")
    assert kept["frozen"] == 0
    assert kept["thresholds"] == [700, 10, 10]  # Python's own


@pytest.mark.parametrize("value", ["1,2", "0,10,10", "1,-1,1", "a,b,c"])
def test_malformed_thresholds_are_refused_at_start_up(value: str) -> None:
    with pytest.raises(ValidationError, match="gc_thresholds"):
        Settings(gc_thresholds=value)  # type: ignore[arg-type]
